// Package httpsyntax holds the pieces of HTTP/1.1's grammar (RFC 9110,
// RFC 9112) that miffy's request guard (internal/server) and its upstream
// client (internal/upstream) both read heads with.
package httpsyntax

import "strings"

// HasLineBreak reports whether s holds a CR or an LF (two vectorised
// scans: quicker than strings.ContainsAny on short values).
func HasLineBreak(s string) bool {
	return strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0
}

// IsToken reports whether c is a tchar: a byte of a field name or method.
func IsToken(c byte) bool { return tchar[c] }

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ValidToken reports whether s is a non-empty token.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// ValidValue reports whether a field value (trimmed) holds no control
// byte but HTAB.
func ValidValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ChunkSize parses the hex digits of a chunk size (RFC 9112 section 7.1),
// at most 15 of them (no overflow).
func ChunkSize(hex []byte) (int64, bool) {
	if len(hex) == 0 || len(hex) > 15 {
		return 0, false
	}
	var n int64
	for _, b := range hex {
		switch {
		case b >= '0' && b <= '9':
			n = n<<4 | int64(b-'0')
		case b >= 'a' && b <= 'f':
			n = n<<4 | int64(b-'a'+10)
		case b >= 'A' && b <= 'F':
			n = n<<4 | int64(b-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// TrimOWS trims the optional white space (spaces, tabs) around a field
// value or a list element.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// HasToken reports whether the comma-separated list v holds tok, in any
// case.
func HasToken(v, tok string) bool {
	for len(v) > 0 {
		el := v
		if i := indexByte(v, ','); i >= 0 {
			el, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		if EqualFold(TrimOWS(el), tok) {
			return true
		}
	}
	return false
}

// EqualFold reports whether a and b are equal in ASCII, ignoring case.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
