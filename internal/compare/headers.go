package compare

import (
	"net/http"
	"net/textproto"
	"sort"
	"strings"
)

// headerNames returns the canonical, sorted, de-duplicated header names to
// compare: only Content-Type when names is nil, none when it is empty.
func headerNames(names []string) []string {
	if names == nil {
		return []string{"Content-Type"}
	}
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		c := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(n))
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerDiffs compares the named headers of both sides, in names' order.
// Several lines of one header are joined with ", ". Content-Type is
// compared case-insensitively and ignoring white space around parameters.
// A header present on one side only is Added or Removed.
func headerDiffs(names []string, ref, cand http.Header) []Diff {
	var diffs []Diff
	for _, name := range names {
		rv, rok := headerValue(ref, name)
		cv, cok := headerValue(cand, name)
		switch {
		case !rok && !cok:
			continue
		case !rok:
			diffs = append(diffs, Diff{Path: "header:" + name, Kind: Added, Candidate: capString(cv)})
			continue
		case !cok:
			diffs = append(diffs, Diff{Path: "header:" + name, Kind: Removed, Reference: capString(rv)})
			continue
		}
		equal := rv == cv
		if !equal && name == "Content-Type" {
			equal = normalizeContentType(rv) == normalizeContentType(cv)
		}
		if !equal {
			diffs = append(diffs, Diff{Path: "header:" + name, Kind: Changed, Reference: capString(rv), Candidate: capString(cv)})
		}
	}
	return diffs
}

// headerValue returns the lines of header name joined by ", ", and whether
// it is present.
func headerValue(h http.Header, name string) (string, bool) {
	vs, ok := h[name]
	if !ok {
		// Also accept a map built without canonical keys.
		for k, v := range h {
			if strings.EqualFold(k, name) {
				vs, ok = v, true
				break
			}
		}
	}
	if !ok {
		return "", false
	}
	return strings.Join(vs, ", "), true
}

// normalizeContentType lower-cases a Content-Type and drops white space
// around its type and parameters: "Application/JSON ; charset=UTF-8" and
// "application/json;charset=utf-8" are the same. JSON is UTF-8 by
// definition (RFC 8259), so on JSON types a charset of utf-8 says nothing
// and is dropped: "application/json" equals "application/json; charset=utf-8".
func normalizeContentType(ct string) string {
	parts := strings.Split(ct, ";")
	json := IsJSON(ct)
	out := parts[:0]
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if ok {
			p = strings.TrimSpace(k) + "=" + strings.Trim(strings.TrimSpace(v), `"`)
		}
		p = strings.ToLower(strings.TrimSpace(p))
		if i > 0 && json && (p == "charset=utf-8" || p == "charset=utf8") {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ";")
}
