package publish

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendBody appends a body object:
//
//	null                                    empty body
//	{"type":"json","value":<JSON>}          JSON content type, and it parses
//	{"type":"bytes","value":"<base64>"}     anything else
//	{"type":"bytes","value":"<base64 of the first MaxBodyBytes>","truncated":true,"size":<len>}
//	                                        longer than MaxBodyBytes, or cut by the proxy
func (e *Encoder) appendBody(b, body []byte, contentType string, truncated bool) []byte {
	if len(body) == 0 {
		return append(b, "null"...)
	}
	if truncated || len(body) > e.maxBody {
		b = append(b, `{"type":"bytes","value":"`...)
		b = base64.StdEncoding.AppendEncode(b, body[:min(len(body), e.maxBody)])
		b = append(b, `","truncated":true,"size":`...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		return append(b, '}')
	}
	if isJSONType(contentType) {
		if out, ok := e.appendJSONBody(b, body); ok {
			return out
		}
	}
	b = append(b, `{"type":"bytes","value":"`...)
	b = base64.StdEncoding.AppendEncode(b, body)
	return append(b, `"}`...)
}

// appendJSONBody appends {"type":"json","value":...} if body is one valid
// JSON value, redacted; ok is false (and b unchanged) if it is not JSON.
func (e *Encoder) appendJSONBody(b, body []byte) ([]byte, bool) {
	start := len(b)
	b = append(b, `{"type":"json","value":`...)
	if len(e.paths) == 0 && utf8.Valid(body) && !e.mayHoldKey(body) {
		// The fast path: validate and strip white space in one pass,
		// numbers and member order kept byte for byte.
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, body); err != nil {
			return b[:start], false
		}
		return append(buf.Bytes(), '}'), true
	}
	// Redaction (or invalid UTF-8 to replace) needs the decoded value.
	// UseNumber keeps numbers exactly as written.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return b[:start], false
	}
	if _, err := dec.Token(); err != io.EOF {
		return b[:start], false // trailing data: not one JSON value
	}
	for _, p := range e.paths {
		v = redactValue(v, p)
	}
	v, _ = e.redactKeys(v)
	out, err := json.Marshal(v)
	if err != nil {
		return b[:start], false
	}
	b = append(b, out...)
	return append(b, '}'), true
}

// RedactBody returns body for a log line: a JSON body (by its content
// type) that parses comes back compact with the redacted JSON paths
// replaced by "[REDACTED]"; any other body is returned as it is.
func (e *Encoder) RedactBody(body []byte, contentType string) []byte {
	if len(body) == 0 || !isJSONType(contentType) {
		return body
	}
	b, ok := e.appendJSONBody(nil, body)
	if !ok {
		return body
	}
	const prefix = `{"type":"json","value":`
	return b[len(prefix) : len(b)-1]
}

// bodyType is the content type a response body is read as: its own, or
// application/json when the request's Accept header asks for JSON (and
// the body's own type does not say JSON already), as miffy 1.0 did. A body
// that does not parse stays bytes.
func bodyType(contentType string, accept []string) string {
	if isJSONType(contentType) {
		return contentType
	}
	for _, a := range accept {
		for r := range strings.SplitSeq(a, ",") {
			typ, params, _ := strings.Cut(r, ";")
			if isJSONType(typ) && !refused(params) {
				return "application/json"
			}
		}
	}
	return contentType
}

// refused reports whether the parameters of an Accept media range carry
// q=0, which refuses the type.
func refused(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "" || v == "0." || v == "0"
		}
	}
	return false
}

// isJSONType reports whether a Content-Type is JSON: application/json or
// any type with a +json suffix, parameters allowed.
func isJSONType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if strings.EqualFold(ct, "application/json") {
		return true
	}
	const suffix = "+json"
	return len(ct) > len(suffix) && strings.EqualFold(ct[len(ct)-len(suffix):], suffix) && strings.IndexByte(ct, '/') > 0
}
