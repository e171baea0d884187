package front

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// head is one parsed request head: what the fast path serves. Strings
// point into one copy of the head's bytes.
type head struct {
	method, target string
	url            *url.URL
	header         http.Header
	host           string
	contentLength  int64
	close          bool
}

// Hand-off reasons: why a request went to net/http. They are the label
// values of miffy_proxy_handoffs_total.
const (
	reasonFraming = "framing" // Transfer-Encoding, repeated or bad Content-Length, bare LF, leading blank line
	reasonVersion = "version" // anything but HTTP/1.1
	reasonTarget  = "target"  // not origin-form (absolute-form, "*", CONNECT), or unparsable
	reasonHeader  = "header"  // a field name or value net/http may judge otherwise, obs-fold, Host missing or odd
	reasonExpect  = "expect"  // Expect (100-continue)
	reasonUpgrade = "upgrade" // Upgrade, Connection: upgrade, HTTP2-Settings
	reasonSize    = "size"    // a head larger than the fast path's buffer
)

// Reasons lists the hand-off reasons.
var Reasons = []string{reasonFraming, reasonVersion, reasonTarget, reasonHeader, reasonExpect, reasonUpgrade, reasonSize}

// headEnd returns the length of the head at the start of b (through its
// blank line) or 0 if b holds no whole head yet; reason is set when the
// bytes seen are not for the fast path (a LF without CR before it, a
// blank line first). from is where the previous call stopped looking.
func headEnd(b []byte, from int) (n, next int, reason string) {
	if len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		return 0, 0, reasonFraming
	}
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, len(b), ""
		}
		j += i
		if j == 0 || b[j-1] != '\r' {
			return 0, 0, reasonFraming
		}
		// A blank line: "\r\n\r\n".
		if j >= 3 && b[j-2] == '\n' && b[j-3] == '\r' {
			return j + 1, 0, ""
		}
		i = j + 1
	}
}

// parseHead parses a whole head (as found by headEnd) for the fast path:
// an origin-form HTTP/1.1 request that net/http would read the same way,
// framed by Content-Length or without a body, with no Expect and no
// upgrade. Anything else gets a non-empty reason, and net/http serves it.
// The fields' value slices share one allocation.
func parseHead(raw []byte, h *head) (reason string) {
	s := string(raw) // the one copy; every string below points into it
	// Request line.
	sp1 := indexByte(s, ' ')
	if sp1 <= 0 {
		return reasonTarget
	}
	h.method = s[:sp1]
	for i := 0; i < sp1; i++ {
		if !httpsyntax.IsToken(h.method[i]) {
			return reasonTarget
		}
	}
	if h.method == "CONNECT" || h.method == "PRI" {
		return reasonTarget
	}
	lineEnd := indexByte(s, '\r')
	if s[lineEnd+1] != '\n' {
		return reasonFraming // a CR on its own
	}
	sp2 := sp1 + 1 + indexByte(s[sp1+1:lineEnd], ' ')
	if sp2 <= sp1 {
		return reasonVersion
	}
	if s[sp2+1:lineEnd] != "HTTP/1.1" {
		return reasonVersion
	}
	h.target = s[sp1+1 : sp2]
	if len(h.target) == 0 || h.target[0] != '/' {
		return reasonTarget
	}
	for i := 0; i < len(h.target); i++ {
		if c := h.target[i]; c <= ' ' || c == 0x7f {
			return reasonTarget
		}
	}
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return reasonTarget
	}
	h.url = u

	// Fields. Count them first: one backing array for every value slice.
	rest := s[lineEnd+2 : len(s)-2]
	n := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			n++
		}
	}
	vals := make([]string, n)
	h.header = make(http.Header, n)
	h.contentLength = -1
	hosts := 0
	for len(rest) > 0 {
		e := indexByte(rest, '\r')
		if rest[e+1] != '\n' {
			return reasonFraming
		}
		line := rest[:e]
		rest = rest[e+2:]
		colon := indexByte(line, ':')
		if colon <= 0 {
			return reasonHeader // also obs-fold and a line without a colon
		}
		name := line[:colon]
		for i := 0; i < len(name); i++ {
			if !httpsyntax.IsToken(name[i]) {
				return reasonHeader
			}
		}
		value := httpsyntax.TrimOWS(line[colon+1:])
		if !httpsyntax.ValidValue(value) {
			return reasonHeader
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			hosts++
			if hosts > 1 || !validHost(value) {
				return reasonHeader
			}
			h.host = value
			continue // net/http keeps Host out of Request.Header
		case "Content-Length":
			if h.contentLength >= 0 {
				return reasonFraming
			}
			cl, ok := parseContentLength(value)
			if !ok {
				return reasonFraming
			}
			h.contentLength = cl
		case "Transfer-Encoding":
			return reasonFraming
		case "Expect":
			return reasonExpect
		case "Upgrade", "Http2-Settings":
			return reasonUpgrade
		case "Connection":
			if httpsyntax.HasToken(value, "upgrade") {
				return reasonUpgrade
			}
			if httpsyntax.HasToken(value, "close") {
				h.close = true
			}
		}
		if prior, ok := h.header[key]; ok {
			h.header[key] = append(prior, value)
			continue
		}
		vals[0] = value
		h.header[key] = vals[:1:1]
		vals = vals[1:]
	}
	if hosts == 0 {
		return reasonHeader // net/http answers 400 itself
	}
	// As net/http: "Pragma: no-cache" without Cache-Control means
	// "Cache-Control: no-cache" (RFC 7234 section 5.4).
	if p, ok := h.header["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h.header["Cache-Control"]; !ok {
			h.header["Cache-Control"] = []string{"no-cache"}
		}
	}
	return ""
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// parseContentLength accepts digits only, as net/http does, up to
// int64's range.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey for a valid token,
// without allocating for the common field names.
func canonicalKey(name string) string {
	var buf [32]byte
	if len(name) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	b := buf[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	if string(b) == name {
		return name // already canonical: a substring of the head
	}
	return string(b)
}

var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie", "Date",
		"Expect", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "Origin",
		"Pragma", "Referer", "Transfer-Encoding", "Upgrade", "User-Agent", "Via",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id",
		"Http2-Settings", "Keep-Alive", "Te", "Trailer", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-Dest", "Traceparent", "Tracestate",
	} {
		m[k] = k
	}
	return m
}()

// validHost accepts a reg-name, IPv4 or bracketed IPv6 address with an
// optional port: a subset of what net/http accepts, so that whatever
// passes here passes there.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~' || c == '%':
		default:
			return false
		}
	}
	return true
}
