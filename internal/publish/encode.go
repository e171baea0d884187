package publish

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/jsonpath"
)

// EncoderConfig says what the Encoder hides and caps.
type EncoderConfig struct {
	// MaxBodyBytes caps each body in a record; a longer body is cut and
	// marked truncated, with its size. Zero keeps no body bytes at all.
	MaxBodyBytes int
	// RedactHeaders are headers (case-insensitive) whose values become
	// "[REDACTED]", on requests and responses. They add to Authorization,
	// Cookie, Set-Cookie and Proxy-Authorization, which are always redacted.
	RedactHeaders []string
	// RedactJSONPaths are JSON paths ("$.password", "$.users[*].email")
	// whose values become "[REDACTED]" in request and response JSON bodies
	// and in differences.
	RedactJSONPaths []string
	// RedactJSONKeys are JSON member names whose values become
	// "[REDACTED]" at any depth, in request and response JSON bodies and in
	// differences; names match case-insensitively and without regard to
	// "_" and "-" ("access_token" hides "accessToken"). If empty, none.
	RedactJSONKeys []string
	// RedactQueryParams are query parameter names (case-insensitive) whose
	// values become "[REDACTED]" in the request URI and the upstream URLs of
	// records, and wherever RedactURI is used (the access log). If empty,
	// none.
	RedactQueryParams []string
}

// Encoder renders Records as JSON (schema_version 1). It is safe for
// concurrent use.
type Encoder struct {
	maxBody       int
	redactHeaders []string
	redactQuery   []string
	paths         []jsonPath
	keys          []string // normalised, see normalKey
}

// NewEncoder checks cfg and returns an Encoder. Errors name the offending key
// of the [publish] section: "redact_json_paths[0]: ...".
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	e := &Encoder{
		maxBody:       max(cfg.MaxBodyBytes, 0), // a negative, which config refuses, as zero
		redactHeaders: append(defaultRedactedHeaders(), cfg.RedactHeaders...),
		redactQuery:   slices.Clone(cfg.RedactQueryParams),
	}
	for i, h := range cfg.RedactHeaders {
		if h == "" || strings.ContainsAny(h, " \t\r\n:") {
			return nil, fmt.Errorf("redact_headers[%d]: %q is not a header name", i, h)
		}
	}
	for i, q := range cfg.RedactQueryParams {
		if strings.TrimSpace(q) == "" || strings.ContainsAny(q, "&;=#?") {
			return nil, fmt.Errorf("redact_query_params[%d]: %q is not a query parameter name", i, q)
		}
	}
	for i, k := range cfg.RedactJSONKeys {
		n := normalKey(k)
		if n == "" || strings.ContainsAny(n, "\"\\") {
			return nil, fmt.Errorf("redact_json_keys[%d]: %q is not a member name", i, k)
		}
		e.keys = append(e.keys, n)
	}
	for i, p := range cfg.RedactJSONPaths {
		jp, err := jsonpath.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("redact_json_paths[%d]: %w", i, err)
		}
		e.paths = append(e.paths, jp)
	}
	return e, nil
}

// Encode appends the JSON form of r to dst: the full form when r.Equal is
// false, the compact form (no headers, bodies or differences) when it is
// true. On error dst is returned unchanged.
func (e *Encoder) Encode(dst []byte, r *Record) ([]byte, error) {
	b := append(dst, `{"schema_version":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"key":`...)
	b = appendString(b, r.Key)
	b = append(b, `,"endpoint":`...)
	b = appendString(b, r.Endpoint)
	if r.Equal {
		return e.appendCompact(b, r), nil
	}
	b, err := e.appendFull(b, r)
	if err != nil {
		return dst, err
	}
	return b, nil
}

// appendCompact appends the rest of the compact form, for equal pairs.
func (e *Encoder) appendCompact(b []byte, r *Record) []byte {
	b = append(b, `,"equal":true,"request":{"method":`...)
	b = appendString(b, r.Request.Method)
	b = append(b, `,"uri":`...)
	b = appendString(b, e.RedactURI(r.Request.URI))
	b = append(b, `,"route":`...)
	b = appendString(b, r.Request.Pattern)
	b = append(b, `},"reference":`...)
	b = appendCompactSide(b, &r.Reference)
	b = append(b, `,"candidate":`...)
	b = appendCompactSide(b, &r.Candidate)
	if r.Secondary != nil {
		b = append(b, `,"secondary":`...)
		b = appendCompactSide(b, r.Secondary)
	}
	return append(b, '}')
}

// appendCompactSide appends {"status":200,"duration_ms":1.2}; a side that
// failed has "error_kind" (and "status" only if one was received).
func appendCompactSide(b []byte, s *Side) []byte {
	b = append(b, '{')
	if s.Err == nil || s.Status != 0 {
		b = append(b, `"status":`...)
		b = strconv.AppendInt(b, int64(s.Status), 10)
		b = append(b, ',')
	}
	b = append(b, `"duration_ms":`...)
	b = appendMillis(b, s.Duration)
	if s.Err != nil {
		b = append(b, `,"error_kind":"`...)
		b = append(b, ErrorKind(s.Err)...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendFull appends the rest of the full form, for differing pairs.
func (e *Encoder) appendFull(b []byte, r *Record) ([]byte, error) {
	q := &r.Request
	b = append(b, `,"equal":false,"request":{"method":`...)
	b = appendString(b, q.Method)
	b = append(b, `,"uri":`...)
	b = appendString(b, e.RedactURI(q.URI))
	b = append(b, `,"route":`...)
	b = appendString(b, q.Pattern)
	b = append(b, `,"params":`...)
	b = appendParams(b, q.Params)
	b = append(b, `,"headers":`...)
	b = e.appendHeaders(b, q.Header)
	b = append(b, `,"body":`...)
	b = e.appendBody(b, q.Body, q.BodyContentType, false)
	accept := q.Header.Values("Accept")
	b = append(b, `},"reference":`...)
	b = e.appendSide(b, &r.Reference, accept)
	b = append(b, `,"candidate":`...)
	b = e.appendSide(b, &r.Candidate, accept)
	if r.Secondary != nil {
		b = append(b, `,"secondary":`...)
		b = e.appendSide(b, r.Secondary, accept)
	}
	b = append(b, `,"differences":[`...)
	for i := range r.Diffs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = e.appendDiff(b, r.Diffs[i]); err != nil {
			return b, fmt.Errorf("encoding difference at %q: %w", r.Diffs[i].Path, err)
		}
	}
	return append(b, "]}"...), nil
}

// appendSide appends one upstream's answer, or its error. accept is the
// request's Accept header: a body is typed as JSON when its Content-Type
// or, as miffy 1.0 did, the Accept header says JSON.
func (e *Encoder) appendSide(b []byte, s *Side, accept []string) []byte {
	b = append(b, `{"url":`...)
	b = appendString(b, e.RedactURI(s.URL))
	b = append(b, `,"response":{`...)
	if s.Err != nil {
		// miffy 1.0's values: "request" when no response came, "body"
		// when the status line came and the body broke off ("uri", a URL
		// that cannot be built, does not happen here). The text is in
		// error_detail.
		b = append(b, `"error":`...)
		if s.Status != 0 {
			b = append(b, `"body","status":`...)
			b = strconv.AppendInt(b, int64(s.Status), 10)
		} else {
			b = append(b, `"request"`...)
		}
		b = append(b, `,"error_detail":`...)
		detail := s.Err.Error()
		if s.URL != "" {
			detail = strings.ReplaceAll(detail, s.URL, e.RedactURI(s.URL))
		}
		b = appendString(b, detail)
	} else {
		b = append(b, `"status":`...)
		b = strconv.AppendInt(b, int64(s.Status), 10)
		b = append(b, `,"headers":`...)
		b = e.appendHeaders(b, s.Header)
		b = append(b, `,"body":`...)
		b = e.appendBody(b, s.Body, bodyType(s.Header.Get("Content-Type"), accept), s.Truncated)
	}
	b = append(b, `},"duration_ms":`...)
	b = appendMillis(b, s.Duration)
	if s.Err != nil {
		b = append(b, `,"error_kind":"`...)
		b = append(b, ErrorKind(s.Err)...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendDiff appends one difference, its values redacted where they would
// reveal a redacted header or JSON value.
func (e *Encoder) appendDiff(b []byte, d compare.Diff) ([]byte, error) {
	d = e.redactDiff(d)
	b = append(b, `{"path":`...)
	b = appendString(b, d.Path)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(d.Kind))
	var err error
	if d.Reference != nil {
		b = append(b, `,"reference":`...)
		if b, err = appendAny(b, d.Reference); err != nil {
			return b, err
		}
	}
	if d.Candidate != nil {
		b = append(b, `,"candidate":`...)
		if b, err = appendAny(b, d.Candidate); err != nil {
			return b, err
		}
	}
	if d.Class != "" {
		b = append(b, `,"class":`...)
		b = appendString(b, string(d.Class))
	}
	return append(b, '}'), nil
}

// appendParams appends the route parameters as an object, {} when none.
func appendParams(b []byte, params map[string]string) []byte {
	b = append(b, '{')
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, params[k])
	}
	return append(b, '}')
}

// appendHeaders appends h as an object of lower-case name to value: a
// string for a header sent once, an array of strings for one sent several
// times (as miffy 1.0 writes them), "[REDACTED]" for a redacted one. Names
// are sorted; names that differ only in case are merged.
func (e *Encoder) appendHeaders(b []byte, h http.Header) []byte {
	var stack [32]string
	keys := stack[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareFold)
	b = append(b, '{')
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && strings.EqualFold(keys[i], keys[j]) {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = appendStringContents(b, keys[i], true)
		b = append(b, `":`...)
		n := 0
		for _, k := range keys[i:j] {
			n += len(h[k])
		}
		switch {
		case e.isRedactedHeader(keys[i]):
			b = append(b, `"`+redacted+`"`...)
		case n == 1:
			for _, k := range keys[i:j] {
				for _, v := range h[k] {
					b = appendString(b, e.headerValue(keys[i], v))
				}
			}
		default:
			b = append(b, '[')
			sep := false
			for _, k := range keys[i:j] {
				for _, v := range h[k] {
					if sep {
						b = append(b, ',')
					}
					b = appendString(b, e.headerValue(keys[i], v))
					sep = true
				}
			}
			b = append(b, ']')
		}
		i = j
	}
	return append(b, '}')
}

// compareFold orders strings by their ASCII lower-case form, then exactly.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lowerASCII(a[i]), lowerASCII(b[i])
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
