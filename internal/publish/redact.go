package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// redacted replaces the value of a redacted header or JSON member.
const redacted = "[REDACTED]"

// defaultRedactedHeaders are redacted whatever the configuration says: the
// standard credential headers and the common custom ones.
func defaultRedactedHeaders() []string {
	return []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
		"X-Api-Key", "Api-Key", "X-Auth-Token", "X-Access-Token", "X-Refresh-Token",
		"X-Csrf-Token", "X-Xsrf-Token", "X-Amz-Security-Token",
	}
}

// RedactURI returns uri (a request URI, "/path?query", or a full URL) with
// the values of redacted query parameters replaced by "[REDACTED]":
// "/a?api_key=s&x=1" becomes "/a?api_key=[REDACTED]&x=1". Names match
// case-insensitively, after percent-decoding; "&" and ";" both separate
// parameters. A URI without a redacted parameter is returned as it is.
func (e *Encoder) RedactURI(uri string) string {
	q := strings.IndexByte(uri, '?')
	if q < 0 || len(e.redactQuery) == 0 {
		return uri
	}
	end := len(uri)
	if h := strings.IndexByte(uri[q:], '#'); h >= 0 {
		end = q + h
	}
	var b []byte // nil until a parameter is redacted
	from := 0    // uri[from:i] is copied as it is
	for i := q + 1; i < end; {
		j := end
		if k := strings.IndexAny(uri[i:end], "&;"); k >= 0 {
			j = i + k
		}
		param := uri[i:j]
		if eq := strings.IndexByte(param, '='); eq >= 0 && e.isRedactedParam(param[:eq]) {
			if b == nil {
				b = make([]byte, 0, len(uri)+len(redacted))
			}
			b = append(b, uri[from:i+eq+1]...)
			b = append(b, redacted...)
			from = j
		}
		i = j + 1
	}
	if b == nil {
		return uri
	}
	return string(append(b, uri[from:]...))
}

// headerValue is a header's value as records show it: the query of a URL
// in Referer, Location or Content-Location is redacted like a request URI.
func (e *Encoder) headerValue(name, v string) string {
	if strings.EqualFold(name, "Referer") || strings.EqualFold(name, "Location") || strings.EqualFold(name, "Content-Location") {
		return e.RedactURI(v)
	}
	return v
}

// isRedactedParam reports whether a raw (escaped) query parameter name is
// redacted. "key[]" counts as "key".
func (e *Encoder) isRedactedParam(raw string) bool {
	name, err := url.QueryUnescape(raw)
	if err != nil {
		name = raw
	}
	name = strings.TrimSuffix(strings.TrimSpace(name), "[]")
	for _, p := range e.redactQuery {
		if strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}

// isRedactedHeader reports whether the header name (any case) is redacted.
// The list is short, so a case-insensitive scan beats hashing a lower-cased
// copy of the name.
func (e *Encoder) isRedactedHeader(name string) bool {
	for _, h := range e.redactHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// RedactHeader returns a copy of h in which the values of redacted headers
// are replaced by "[REDACTED]", for logs. h itself is not modified.
func (e *Encoder) RedactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		if e.isRedactedHeader(k) {
			out[k] = []string{redacted}
			continue
		}
		out[k] = slices.Clone(vs)
	}
	return out
}

// JSON paths
//
// Redaction paths use the syntax of the comparison rules (package compare):
//
//	path = "$" { "." name | "." "*" | "[" digits "]" | "[" "*" "]" | "[" json-string "]" }
//
// "*" matches one level, any member or element. Diff paths ("$.a[2].b",
// "$[\"a.b\"]") are concrete paths in the same syntax.

type stepKind uint8

const (
	stepKey   stepKind = iota // an object member, by name
	stepIndex                 // an array element, by index
	stepAny                   // any member or element
)

type pathStep struct {
	kind  stepKind
	key   string
	index int
}

// jsonPath is a parsed path: its steps after "$".
type jsonPath []pathStep

var errBadPath = errors.New("invalid JSON path")

// parseJSONPath parses p (see "JSON paths").
func parseJSONPath(p string) (jsonPath, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("%w %q: must start with $", errBadPath, p)
	}
	var steps jsonPath
	for i := 1; i < len(p); {
		switch p[i] {
		case '.':
			i++
			j := i
			for j < len(p) && !endsName(p[j]) {
				j++
			}
			switch name := p[i:j]; name {
			case "":
				return nil, fmt.Errorf("%w %q: empty member name at offset %d", errBadPath, p, i)
			case "*":
				steps = append(steps, pathStep{kind: stepAny})
			default:
				steps = append(steps, pathStep{kind: stepKey, key: name})
			}
			i = j
		case '[':
			st, n, err := parseBracketStep(p[i:])
			if err != nil {
				return nil, fmt.Errorf("%w %q: at offset %d: %w", errBadPath, p, i, err)
			}
			steps = append(steps, st)
			i += n
		default:
			return nil, fmt.Errorf("%w %q: unexpected %q at offset %d", errBadPath, p, p[i], i)
		}
	}
	return steps, nil
}

// endsName reports whether c ends an unquoted member name.
func endsName(c byte) bool {
	return strings.IndexByte(".[]\"' \t\r\n", c) >= 0
}

// parseBracketStep parses "[...]" at the start of s and returns the step and
// its length in bytes.
func parseBracketStep(s string) (pathStep, int, error) {
	if len(s) > 1 && s[1] == '"' {
		dec := json.NewDecoder(strings.NewReader(s[1:]))
		var name string
		if err := dec.Decode(&name); err != nil {
			return pathStep{}, 0, fmt.Errorf("reading quoted name: %w", err)
		}
		end := 1 + int(dec.InputOffset())
		if end >= len(s) || s[end] != ']' {
			return pathStep{}, 0, errors.New("missing ] after quoted name")
		}
		return pathStep{kind: stepKey, key: name}, end + 1, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return pathStep{}, 0, errors.New("missing ]")
	}
	inner := s[1:end]
	if inner == "*" {
		return pathStep{kind: stepAny}, end + 1, nil
	}
	if inner == "" || strings.Trim(inner, "0123456789") != "" {
		return pathStep{}, 0, fmt.Errorf("%q is not *, an index or a quoted name", inner)
	}
	n, err := strconv.Atoi(inner)
	if err != nil {
		return pathStep{}, 0, fmt.Errorf("parsing index %q: %w", inner, err)
	}
	return pathStep{kind: stepIndex, index: n}, end + 1, nil
}

// matches reports whether the pattern step s matches the concrete step c.
func (s pathStep) matches(c pathStep) bool {
	switch s.kind {
	case stepAny:
		return true
	case stepKey:
		return c.kind == stepKey && c.key == s.key
	default:
		return c.kind == stepIndex && c.index == s.index
	}
}

// redactValue returns v with every value the steps reach replaced by
// "[REDACTED]". v is a decoded JSON value (map[string]any, []any, scalars);
// it is not modified: containers on the way to a match are copied.
func redactValue(v any, steps jsonPath) any {
	if len(steps) == 0 {
		return redacted
	}
	s, rest := steps[0], steps[1:]
	switch c := v.(type) {
	case map[string]any:
		switch s.kind {
		case stepKey:
			child, ok := c[s.key]
			if !ok {
				return v
			}
			out := maps.Clone(c)
			out[s.key] = redactValue(child, rest)
			return out
		case stepAny:
			out := make(map[string]any, len(c))
			for k, child := range c {
				out[k] = redactValue(child, rest)
			}
			return out
		}
	case []any:
		switch s.kind {
		case stepIndex:
			if s.index >= len(c) {
				return v
			}
			out := slices.Clone(c)
			out[s.index] = redactValue(c[s.index], rest)
			return out
		case stepAny:
			out := make([]any, len(c))
			for i, child := range c {
				out[i] = redactValue(child, rest)
			}
			return out
		}
	}
	return v
}

// redactDiff returns d with its values redacted when its path is, or leads
// to, a redacted header or JSON path, so that a difference cannot leak what
// the bodies hide.
func (e *Encoder) redactDiff(d compare.Diff) compare.Diff {
	if name, ok := strings.CutPrefix(d.Path, "header:"); ok {
		if e.isRedactedHeader(name) {
			d.Reference, d.Candidate = redactedOrNil(d.Reference), redactedOrNil(d.Candidate)
		}
		for _, v := range []*any{&d.Reference, &d.Candidate} {
			if s, ok := (*v).(string); ok {
				*v = e.headerValue(name, s)
			}
		}
		return d
	}
	if len(e.paths) == 0 && len(e.keys) == 0 || !strings.HasPrefix(d.Path, "$") {
		return d
	}
	at, err := parseJSONPath(d.Path)
	if err != nil {
		return d
	}
	d = e.redactDiffKeys(d, at)
	for _, p := range e.paths {
		n := min(len(p), len(at))
		if !prefixMatches(p[:n], at[:n]) {
			continue
		}
		// The diff is at or under a redacted value: hide it whole; or it is
		// a container holding one: redact inside it.
		rest := p[n:]
		d.Reference = redactDiffValue(d.Reference, rest)
		d.Candidate = redactDiffValue(d.Candidate, rest)
	}
	return d
}

// redactDiffKeys hides a difference's values when its path goes through a
// redacted member name, and redacted members inside them otherwise.
func (e *Encoder) redactDiffKeys(d compare.Diff, at jsonPath) compare.Diff {
	if len(e.keys) == 0 {
		return d
	}
	for _, s := range at {
		if s.kind == stepKey && e.isRedactedKey(s.key) {
			d.Reference, d.Candidate = redactedOrNil(d.Reference), redactedOrNil(d.Candidate)
			return d
		}
	}
	for _, v := range []*any{&d.Reference, &d.Candidate} {
		switch (*v).(type) {
		case string:
			// A container's rendering cut to size by package compare may
			// hold a redacted member; it cannot be redacted inside.
			if s := (*v).(string); e.mayHoldKey([]byte(s)) && (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) {
				*v = redacted
			}
		default:
			*v, _ = e.redactKeys(*v)
		}
	}
	return d
}

// redactDiffValue redacts v along steps, keeping an absent (nil) value absent.
// A string where a container was expected is a container's rendering cut to
// size by package compare (or a value whose type changed): it may hold the
// secret and cannot be redacted inside, so it is hidden whole.
func redactDiffValue(v any, steps jsonPath) any {
	switch v.(type) {
	case nil:
		return nil
	case string:
		return redacted
	}
	return redactValue(v, steps)
}

func redactedOrNil(v any) any {
	if v == nil {
		return nil
	}
	return redacted
}

// prefixMatches reports whether the pattern steps match the concrete steps
// one for one (both have the same length).
func prefixMatches(pattern, concrete jsonPath) bool {
	for i := range pattern {
		if !pattern[i].matches(concrete[i]) {
			return false
		}
	}
	return true
}
