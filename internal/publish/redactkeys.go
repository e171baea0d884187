package publish

import (
	"bytes"
	"maps"
	"slices"
)

// JSON member names
//
// A JSON member whose name is one of the redacted keys is redacted wherever
// it is, at any depth. Names match case-insensitively and without regard
// to "_" and "-": the key "access_token" hides "access_token", "accessToken"
// and "Access-Token".

// normalKey is a key as names are matched: lower case, no "_" or "-".
func normalKey(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '_' && c != '-' {
			b = append(b, lowerASCII(c))
		}
	}
	return string(b)
}

// isRedactedKey reports whether the member name is a redacted key.
func (e *Encoder) isRedactedKey(name string) bool {
	for _, k := range e.keys {
		if keyMatches(name, k) {
			return true
		}
	}
	return false
}

// keyMatches reports whether name, without "_" and "-" and in lower case,
// is the normalised key k.
func keyMatches(name, k string) bool {
	j := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || c == '-' {
			continue
		}
		if j >= len(k) || lowerASCII(c) != k[j] {
			return false
		}
		j++
	}
	return j == len(k)
}

// mayHoldKey reports whether body may have a member named by a redacted
// key: a quote followed by a key's letters (any case, "_" and "-" skipped)
// and a quote, or an escape sequence that could spell one. False means it
// surely has none, and the body needs no decoding for the keys.
func (e *Encoder) mayHoldKey(body []byte) bool {
	if len(e.keys) == 0 {
		return false
	}
	if bytes.IndexByte(body, '\\') >= 0 {
		return true
	}
	for i := bytes.IndexByte(body, '"'); i >= 0 && i+1 < len(body); {
		rest := body[i+1:]
		for _, k := range e.keys {
			if quotedKeyAt(rest, k) {
				return true
			}
		}
		next := bytes.IndexByte(rest, '"')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// quotedKeyAt reports whether b starts with the key k's letters, then '"'.
func quotedKeyAt(b []byte, k string) bool {
	j := 0
	for _, c := range b {
		switch {
		case c == '"':
			return j == len(k)
		case c == '_' || c == '-':
		case j < len(k) && lowerASCII(c) == k[j]:
			j++
		default:
			return false
		}
	}
	return false
}

// redactKeys returns v with the values of redacted members replaced by
// "[REDACTED]", at any depth, and whether anything was. v is not
// modified: containers on the way to a change are copied.
func (e *Encoder) redactKeys(v any) (any, bool) {
	switch c := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, child := range c {
			nv, changed := any(redacted), true
			if !e.isRedactedKey(k) {
				nv, changed = e.redactKeys(child)
			}
			if !changed {
				continue
			}
			if out == nil {
				out = maps.Clone(c)
			}
			out[k] = nv
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, child := range c {
			nv, changed := e.redactKeys(child)
			if !changed {
				continue
			}
			if out == nil {
				out = slices.Clone(c)
			}
			out[i] = nv
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}
