package httpsyntax

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are the fields meaningful for one connection only (RFC 9110
// section 7.6.1, plus the de-facto Proxy-Connection and Keep-Alive): a
// proxy forwards none of them, in either direction. The one list miffy
// has: the proxy (requests and answers), the decision service's requests
// and the upstream client all read it.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// IsHopHeader reports whether the canonical field name is hop-by-hop.
func IsHopHeader(name string) bool {
	for _, h := range hopHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// HasHopHeaders reports whether h holds a hop-by-hop field (Connection
// among them, which alone names any others): one pass over h, no deletes,
// for the common header that has none.
func HasHopHeaders(h http.Header) bool {
	for name := range h {
		if IsHopHeader(name) {
			return true
		}
	}
	return false
}

// RemoveHopHeaders deletes the hop-by-hop fields from h, and the fields
// that Connection names.
func RemoveHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}
