package shadow

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// RoleHeader tells each upstream the part it plays: reference, candidate,
// secondary (a second reference) or upstream (not under test).
const RoleHeader = "X-Shadow-Test-Role"

// hopHeaders are meaningful for one connection only and are not forwarded
// (RFC 9110 section 7.6.1, plus the de-facto ones).
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

// removeHopHeaders deletes the hop-by-hop headers and the headers named by
// Connection from h.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// hasHopHeaders reports whether h holds a field that removeHopHeaders
// removes: one of hopHeaders (Connection among them, which alone names
// any others). One pass over h, no deletes, for the common answer that has
// none.
func hasHopHeaders(h http.Header) bool {
	for name := range h {
		if slices.Contains(hopHeaders[:], name) {
			return true
		}
	}
	return false
}
