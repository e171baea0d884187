package front

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// FuzzParseHead checks that whatever head the fast path accepts,
// net/http reads the same way and its server would serve (so that the
// fast path never answers a request net/http would refuse or read
// otherwise), and that headEnd finds the same end however the bytes
// arrive. Seeds are the requests of the other tests.
func FuzzParseHead(f *testing.F) {
	for _, tc := range diffCases() {
		f.Add([]byte(tc.raw[:min(len(tc.raw), 8<<10)]))
	}
	for _, tc := range seenCases() {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, next, reason := headEnd(b, 0)
		if n < 0 || n > len(b) || (n > 0 && reason != "") {
			t.Fatalf("headEnd(%q) = %d, %d, %q", b, n, next, reason)
		}
		checkIncremental(t, b, n, reason)
		if n == 0 || reason != "" {
			return
		}
		raw := b[:n]
		var h head
		reason = parseHead(raw, &h)
		if reason != "" {
			if !slices.Contains(Reasons, reason) {
				t.Fatalf("parseHead(%q) = unknown reason %q", raw, reason)
			}
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("the fast path accepts %q; http.ReadRequest: %v", raw, err)
		}
		// ReadRequest drops Host; net/http's server checks it first.
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
		tp.ReadLine()
		fields, err := tp.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("the fast path accepts %q; textproto: %v", raw, err)
		}
		if why := serverRefuses(req, fields["Host"]); why != "" {
			t.Fatalf("the fast path accepts %q; net/http's server would not serve it: %s", raw, why)
		}
		// What the fast path hands the handler, against what net/http's
		// server would (it removes Host from Header; ReadRequest applies
		// the Pragma rule).
		wantHeader := req.Header.Clone()
		delete(wantHeader, "Host")
		cl := h.contentLength // -1: none, which net/http reports as 0
		if cl < 0 {
			cl = 0
		}
		type seenFields struct {
			Method, RequestURI, URL, Path, RawPath, RawQuery, Host string
			ContentLength                                          int64
			Close                                                  bool
			Header                                                 http.Header
		}
		want := seenFields{req.Method, req.RequestURI, req.URL.String(), req.URL.Path, req.URL.RawPath, req.URL.RawQuery,
			req.Host, req.ContentLength, req.Close, wantHeader}
		got := seenFields{h.method, h.target, h.url.String(), h.url.Path, h.url.RawPath, h.url.RawQuery,
			h.host, cl, h.close, h.header}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q: the fast path reads it otherwise (-net/http +front):\n%s", raw, diff)
		}
	})
}

// checkIncremental feeds b to headEnd in pieces, as readHead does while
// the bytes arrive: the first result must be what the whole gave.
func checkIncremental(t *testing.T, b []byte, wantN int, wantReason string) {
	t.Helper()
	step := 1 + len(b)%7
	from := 0
	for end := min(step, len(b)); ; end = min(end+step, len(b)) {
		n, next, reason := headEnd(b[:end], from)
		if n > 0 || reason != "" || end == len(b) {
			if n != wantN || reason != wantReason {
				t.Fatalf("headEnd(%q) in pieces of %d: %d, %q; at once: %d, %q", b, step, n, reason, wantN, wantReason)
			}
			return
		}
		if next < from || next > end {
			t.Fatalf("headEnd(%q, %d): next %d", b[:end], from, next)
		}
		from = next
	}
}

// serverRefuses says why net/http's server would answer a request itself
// (400, 505) instead of serving it, or why the fast path must not serve
// it (framing or features it leaves to net/http), or "".
func serverRefuses(req *http.Request, hosts []string) string {
	switch {
	case req.ProtoMajor != 1 || req.ProtoMinor != 1:
		return "not HTTP/1.1"
	case len(hosts) != 1:
		return "not exactly one Host"
	case !netHTTPHost(hosts[0]):
		return "malformed Host"
	case req.Host != hosts[0]:
		return "Host not from the field"
	case req.Method == "CONNECT" || req.Method == "PRI":
		return "method " + req.Method
	case req.URL.Host != "" || !strings.HasPrefix(req.RequestURI, "/"):
		return "not origin-form"
	case req.TransferEncoding != nil || req.Header["Transfer-Encoding"] != nil:
		return "Transfer-Encoding"
	case req.Header["Expect"] != nil:
		return "Expect"
	case req.Header["Upgrade"] != nil:
		return "Upgrade"
	case len(req.Header["Content-Length"]) > 1:
		return "repeated Content-Length"
	}
	for k, vv := range req.Header {
		if !rfcToken(k) {
			return "field name " + k
		}
		for _, v := range vv {
			for i := 0; i < len(v); i++ {
				if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
					return "field value " + v
				}
			}
		}
	}
	return ""
}

// rfcToken reports whether s is an RFC 9110 token.
func rfcToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}

// netHTTPHost is net/http's (lenient) test of a Host field: bytes of an
// RFC 3986 host and port.
func netHTTPHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && !strings.ContainsRune("!$%&'()*+,-.:;=[]_~", rune(c)) {
			return false
		}
	}
	return true
}

func TestHeadEnd(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name       string
		b          string
		from       int
		n, next    int
		wantReason string
	}{
		{name: "empty", b: "", n: 0, next: 0},
		{name: "request line only", b: "GET / HTTP/1.1\r\n", next: 16},
		{name: "partial field", b: "GET / HTTP/1.1\r\nHo", next: 18},
		{name: "ends in CR", b: req[:len(req)-1], next: len(req) - 1},
		{name: "whole head", b: req, n: len(req)},
		{name: "head and body", b: req + "body\r\n\r\n", n: len(req)},
		{name: "two heads", b: req + req, n: len(req)},
		{name: "no fields", b: "GET / HTTP/1.1\r\n\r\n", n: 18},
		{name: "resumed", b: req, from: 16, n: len(req)},
		{name: "resumed at the last LF", b: req, from: len(req) - 1, n: len(req)},
		{name: "leading CRLF", b: "\r\n" + req, wantReason: reasonFraming},
		{name: "leading LF", b: "\n" + req, wantReason: reasonFraming},
		{name: "leading CR alone", b: "\r", wantReason: reasonFraming},
		{name: "bare LF after the request line", b: "GET / HTTP/1.1\nHost: x\r\n\r\n", wantReason: reasonFraming},
		{name: "bare LF blank line", b: "GET / HTTP/1.1\r\nHost: x\r\n\n", wantReason: reasonFraming},
		{name: "bare LF seen before the end", b: "GET / HTTP/1.1\r\nX: a\nb", wantReason: reasonFraming},
		{name: "CR CR LF", b: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", n: len("GET / HTTP/1.1\r\nX: a\r\r\n\r\n")},
		{name: "LF CR LF is not a blank line", b: "GET / HTTP/1.1\r\nX: a\n\r\n", wantReason: reasonFraming},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, next, reason := headEnd([]byte(tc.b), tc.from)
			if n != tc.n || reason != tc.wantReason || (n == 0 && reason == "" && next != tc.next) {
				t.Errorf("headEnd(%q, %d) = %d, %d, %q; want %d, %d, %q", tc.b, tc.from, n, next, reason, tc.n, tc.next, tc.wantReason)
			}
		})
	}
}

func TestHasToken(t *testing.T) {
	for _, tc := range []struct {
		v, tok string
		want   bool
	}{
		{"close", "close", true},
		{"Close", "close", true},
		{"CLOSE", "close", true},
		{"keep-alive, close", "close", true},
		{"close,keep-alive", "close", true},
		{" \tclose \t, x", "close", true},
		{",,close,,", "close", true},
		{"upgrade,\tKeep-Alive", "keep-alive", true},
		{"closed", "close", false},
		{"x-close", "close", false},
		{"x close", "close", false},
		{"clos", "close", false},
		{"", "close", false},
		{",", "close", false},
		{"c\u00f6se", "close", false},
	} {
		if got := httpsyntax.HasToken(tc.v, tc.tok); got != tc.want {
			t.Errorf("hasToken(%q, %q) = %v; want %v", tc.v, tc.tok, got, tc.want)
		}
	}
}

// TestCanonicalKey compares canonicalKey with net/textproto for valid
// field names (the only ones parseHead gives it): common ones in every
// case, and random tokens around its 32-byte buffer.
func TestCanonicalKey(t *testing.T) {
	var names []string
	for k := range commonKeys {
		names = append(names, k, strings.ToLower(k), strings.ToUpper(k), swapCase(k))
	}
	names = append(names, "x", "X", "-", "--a", "a-", "a--b", "1-a", "_x", "x_y-z", "x.y", "a~b",
		"Content-length", "CONTENT-LENGTH", "host", "HOST", "hOST")
	var tchars []byte
	for c := range 256 {
		if httpsyntax.IsToken(byte(c)) {
			tchars = append(tchars, byte(c))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			if rng.IntN(5) == 0 {
				b[i] = '-'
			} else {
				b[i] = tchars[rng.IntN(len(tchars))]
			}
		}
		names = append(names, string(b))
	}
	for _, name := range names {
		if got, want := canonicalKey(name), textproto.CanonicalMIMEHeaderKey(name); got != want {
			t.Errorf("canonicalKey(%q) = %q; want %q", name, got, want)
		}
	}
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func TestValidHost(t *testing.T) {
	for _, tc := range []struct {
		h    string
		want bool
	}{
		{"example.com", true},
		{"Example.COM", true},
		{"example.com:8080", true},
		{"127.0.0.1", true},
		{"127.0.0.1:80", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[fe80::1%25eth0]:80", true},
		{"my_host-1.test", true},
		{"a~b", true},
		{"", false},
		{"exa mple", false},
		{"exa{mple", false},
		{"example.com/", false},
		{"user@example.com", false},
		{"example.com\t", false},
		{"ex\x00", false},
		{"é.test", false},
		// net/http takes these; the fast path leaves them to it.
		{"a!b", false},
		{"a,b", false},
		{"a;b=c", false},
	} {
		got := validHost(tc.h)
		if got != tc.want {
			t.Errorf("validHost(%q) = %v; want %v", tc.h, got, tc.want)
		}
		if got && !netHTTPHost(tc.h) {
			t.Errorf("validHost(%q): net/http refuses it", tc.h)
		}
	}
	// Every byte validHost takes, net/http takes.
	for c := range 256 {
		if h := string([]byte{byte(c)}); validHost(h) && !netHTTPHost(h) {
			t.Errorf("validHost takes %q, net/http does not", h)
		}
	}
}
