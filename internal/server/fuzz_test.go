package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// chunkConn delivers a byte stream in reads of a given size, as a client
// connection would.
type chunkConn struct {
	net.Conn
	b    []byte
	size int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// seenRequest is what a server makes of one request.
type seenRequest struct {
	Method, URI, Proto string
	Header             http.Header
	Body               string
}

// readAll reads requests from r as net/http's server does (skipping the
// empty lines before a request line that it skips), until one fails.
func readAll(r io.Reader) []seenRequest {
	br := bufio.NewReader(r)
	var out []seenRequest
	for len(out) < 50 {
		for range 2 {
			if p, _ := br.Peek(2); string(p) == "\r\n" {
				br.Discard(2)
			}
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return out
		}
		out = append(out, seenRequest{req.Method, req.RequestURI, req.Proto, req.Header, string(body)})
	}
	return out
}

// FuzzGuard compares what net/http reads through the guard with what it
// reads from the same bytes without it: through the guard it may read
// fewer requests (the guard refuses ambiguous ones and all after them),
// but every request it reads is the same request, the same body.
func FuzzGuard(f *testing.F) {
	seeds := []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
		"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /x HTTP/1.1\nHost: x\n\n",
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\nab",
	}
	for _, s := range seeds {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, stream string, size int) {
		size = 1 + (size&0x7fffffff)%97
		raw := readAll(bytes.NewReader([]byte(stream)))
		g := &guard{maxUnit: 1 << 16, rejected: func(string) {}}
		guarded := readAll(&guardConn{Conn: &chunkConn{b: []byte(stream), size: size}, g: g})
		if len(guarded) > len(raw) {
			t.Fatalf("through the guard %d requests, without it %d", len(guarded), len(raw))
		}
		if diff := cmp.Diff(raw[:len(guarded)], guarded, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("requests differ (-without +through the guard):\n%s", diff)
		}
	})
}
