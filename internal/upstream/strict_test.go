package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// feedAll feeds s to a fresh strictConn in pieces of size n (all of it
// where n is 0), with heads the requests' HEAD flags; it returns how many
// bytes passed and the fault.
func feedAll(s string, n int, heads ...bool) (int, error, *strictConn) {
	c := &strictConn{max: 1 << 10, heads: heads}
	if n == 0 {
		n = len(s)
	}
	passed := 0
	for i := 0; i < len(s); i += n {
		k, err := c.feed([]byte(s[i:min(i+n, len(s))]))
		passed += k
		if err != nil {
			return passed, err, c
		}
	}
	return passed, nil, c
}

// TestStrictConnFraming: well-framed answers pass whole, split anywhere,
// and the connection ends ready for the next head.
func TestStrictConnFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		heads []bool
		end   phase
	}{
		{"Content-Length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", nil, inHead},
		{"chunked, extensions, trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nhi\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", nil, inHead},
		{"chunked, no trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nf\r\n0123456789abcde\r\n0\r\n\r\n", nil, inHead},
		{"interim answers", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", nil, inHead},
		{"HEAD, then GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", []bool{true, false}, inHead},
		{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", nil, inHead},
		{"to the close", "HTTP/1.1 200 OK\r\n\r\nanything\n at all\x00", nil, unchecked},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", nil, inHead},
		{"upgrade", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello\n", nil, unchecked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n := 0; n <= len(tt.in); n++ {
				passed, err, c := feedAll(tt.in, n, tt.heads...)
				if err != nil || passed != len(tt.in) || c.phase != tt.end {
					t.Fatalf("in pieces of %d: passed %d of %d, %v, phase %d (want %d)", n, passed, len(tt.in), err, c.phase, tt.end)
				}
			}
		})
	}
}

// TestStrictConnRefuses: what the Client refuses fails the read, at the
// first bad byte's answer, after the bytes of the answers before it.
func TestStrictConnRefuses(t *testing.T) {
	t.Parallel()
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
	tests := []struct {
		name, in string
		want     error
	}{
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", ErrMalformedResponse},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nhi", ErrMalformedResponse},
		{"Content-Length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ErrMalformedResponse},
		{"status 42", "HTTP/1.1 042 Low\r\nContent-Length: 2\r\n\r\nhi", ErrMalformedResponse},
		{"Content-Length -0", "HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n", ErrMalformedResponse},
		{"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n", ErrMalformedResponse},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX\r\n0\r\n\r\n", ErrMalformedResponse},
		{"chunk size with bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n", ErrMalformedResponse},
		{"trailer with bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n", ErrMalformedResponse},
		{"endless head", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 2<<10), ErrResponseHeaderTooLarge},
		{"endless chunk line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("a", maxChunkLine), ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 7} {
				passed, err, _ := feedAll(ok+tt.in, n)
				if !errors.Is(err, tt.want) || passed < len(ok) {
					t.Errorf("in pieces of %d: passed %d, %v; want %v after the first answer's %d bytes", n, passed, err, tt.want, len(ok))
				}
			}
		})
	}
}

// TestTransportStrict: net/http's Transport from NewTransport refuses what
// the Client refuses, and still keeps connections alive across HEAD,
// chunked and Content-Length answers.
func TestTransportStrict(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	} {
		srv := newRawServer(t, func(_ int, nc net.Conn, br *bufio.Reader) {
			if _, err := readRequest(br); err == nil {
				io.WriteString(nc, answer)
				hold(br)
			}
		})
		for _, protocol := range []string{ProtoHTTP1, ProtoAuto} {
			var err error
			within(t, bound, func() {
				_, err = fetch(t.Context(), RoundTripper{NewTransport(TransportConfig{Protocol: protocol})}, get(srv.addr, "/"))
			})
			if !errors.Is(err, ErrMalformedResponse) {
				t.Errorf("%s, %.40q: err = %v, want ErrMalformedResponse", protocol, answer, err)
			}
		}
	}

	srv, cs := newServer(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "chunk")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "body")
	}))
	tr := NewTransport(TransportConfig{Protocol: ProtoHTTP1})
	addr := srv.Listener.Addr().String()
	for _, req := range []*Request{
		{Method: http.MethodHead, Scheme: "http", Addr: addr, Target: "/"},
		get(addr, "/chunked"),
		{Method: http.MethodHead, Scheme: "http", Addr: addr, Target: "/chunked"},
		get(addr, "/"),
	} {
		got, err := fetch(t.Context(), RoundTripper{tr}, req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.Target, err)
		}
		want := map[string]string{"/": "body", "/chunked": "chunkbody"}[req.Target]
		if req.Method == http.MethodHead {
			want = ""
		}
		if got.Body != want {
			t.Errorf("%s %s: body %q, want %q", req.Method, req.Target, got.Body, want)
		}
	}
	if got := cs.opened.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

// FuzzStrictConn: feeding answers whole or byte by byte gives the same
// verdict, and never panics. Seeds in testdata/fuzz/FuzzStrictConn.
func FuzzStrictConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		_, errWhole, _ := feedAll(string(in), 0, head)
		_, errBytes, _ := feedAll(string(in), 1, head)
		if (errWhole == nil) != (errBytes == nil) {
			t.Fatalf("%q: whole %v, byte by byte %v", in, errWhole, errBytes)
		}
	})
}
