package publish

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/jsonpath"
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

// jsonPath is a parsed JSON path (package jsonpath's grammar, the one of
// the comparison rules and of the differences compare reports): its steps
// after "$".
type jsonPath = []jsonpath.Step

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
		switch s.Kind {
		case jsonpath.Key:
			child, ok := c[s.Key]
			if !ok {
				return v
			}
			out := maps.Clone(c)
			out[s.Key] = redactValue(child, rest)
			return out
		case jsonpath.Any:
			out := make(map[string]any, len(c))
			for k, child := range c {
				out[k] = redactValue(child, rest)
			}
			return out
		}
	case []any:
		switch s.Kind {
		case jsonpath.Index:
			if s.Index >= len(c) {
				return v
			}
			out := slices.Clone(c)
			out[s.Index] = redactValue(c[s.Index], rest)
			return out
		case jsonpath.Any:
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
	at, err := jsonpath.Parse(d.Path)
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
		if s.Kind == jsonpath.Key && e.isRedactedKey(s.Key) {
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
		if !pattern[i].Matches(concrete[i]) {
			return false
		}
	}
	return true
}
