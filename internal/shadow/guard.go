package shadow

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// Harden makes the client-facing server refuse two kinds of request that
// net/http lets through and that could make an upstream see something
// other than what miffy routed:
//
//   - a request with both Content-Length and Transfer-Encoding. net/http
//     drops Content-Length and reads the chunked body, but keeps the
//     connection open, which RFC 9112 section 6.3 forbids: a front proxy
//     that framed the stream by Content-Length would see other requests
//     than miffy does (request smuggling). The client gets 400 and the
//     connection is closed;
//   - a path with dot segments ("/api/../admin", also as "%2e%2e"), which an
//     upstream that normalises paths would serve from outside the route and
//     base path miffy chose. The client gets 400.
//
// It sets srv.ConnContext and wraps srv.Handler; serve on the listener it
// returns (nil for a nil ln: see GuardListener).
func Harden(srv *http.Server, ln net.Listener) net.Listener {
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(guardKey{}).(*guardConn); ok && c.conflict.Load() {
			w.Header().Set("Connection", "close")
			http.Error(w, "miffy: request has both Content-Length and Transfer-Encoding", http.StatusBadRequest)
			return
		}
		if hasDotSegment(r.URL.EscapedPath()) {
			http.Error(w, "miffy: dot segments in the request path", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		if g, ok := c.(*guardConn); ok {
			ctx = context.WithValue(ctx, guardKey{}, g)
		}
		return ctx
	}
	if ln == nil {
		return nil
	}
	return guardListener{ln}
}

// GuardListener is the listener of Harden, for a server whose handler
// Harden already wrapped (Harden with a nil listener).
func GuardListener(ln net.Listener) net.Listener { return guardListener{ln} }

type guardKey struct{}

// hasDotSegment reports whether an escaped path has a "." or ".." segment,
// counting "%2e" as "." (an unreserved character, RFC 3986 section 6.2.2;
// "%2f" stays data, so "..%2f" is no segment of its own).
func hasDotSegment(p string) bool {
	if !strings.Contains(p, ".") && !strings.Contains(p, "%2") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) == 0 || len(seg) > 6 {
			continue
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "%2e", "."), "%2E", ".")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}

// guardConn watches the bytes the server reads for request heads that hold
// both Content-Length and Transfer-Encoding. The server reads a connection
// from one goroutine at a time, so the scanner needs no lock; the handler
// reads conflict from another.
type guardConn struct {
	net.Conn
	scan     framing
	conflict atomic.Bool
}

// CloseWrite lets net/http half-close the connection after an error answer
// (431, 400), so that the client reads it before the connection goes.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.scan.state != frameOff {
		c.scan.feed(p[:n])
		if c.scan.conflict {
			c.conflict.Store(true)
		}
	}
	return n, err
}

// framing follows HTTP/1.1 request framing (RFC 9112) through a byte
// stream: each head, then its body by Content-Length or chunked coding.
// Where the stream stops making sense it gives up (frameOff): net/http
// rejects such a request itself and closes the connection.
type framing struct {
	state    int
	left     int64  // body or chunk bytes still to skip
	line     []byte // a head or line split across reads
	conflict bool
}

const (
	frameHead      = iota // reading a request head
	frameBody             // skipping a Content-Length body
	frameChunkSize        // reading a chunk-size line
	frameChunkData        // skipping chunk data
	frameChunkEnd         // reading the CRLF after chunk data
	frameTrailer          // reading trailer lines up to a blank one
	frameOff              // not followed any more
)

// maxHead bounds what a head split across reads may hold here; net/http
// answers 431 long before (proxy.max_header_bytes).
const maxHead = 1 << 20

func (f *framing) feed(p []byte) {
	for len(p) > 0 && f.state != frameOff {
		switch f.state {
		case frameBody, frameChunkData:
			n := int64(len(p))
			if n > f.left {
				n = f.left
			}
			p = p[n:]
			f.left -= n
			if f.left == 0 {
				if f.state == frameBody {
					f.state = frameHead
				} else {
					f.state = frameChunkEnd
				}
			}
		case frameHead:
			p = f.feedHead(p)
		default:
			var line []byte
			var ok bool
			line, p, ok = f.nextLine(p)
			if ok {
				f.endLine(line)
			}
		}
	}
}

// nextLine returns the next whole line (without its line end) and the
// rest of p, or ok false when p ends within a line (kept for the next read).
func (f *framing) nextLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		if len(f.line)+len(p) > maxHead {
			f.state = frameOff
			return nil, nil, false
		}
		f.line = append(f.line, p...)
		return nil, nil, false
	}
	line, rest = p[:i], p[i+1:]
	if len(f.line) > 0 {
		f.line = append(f.line, line...)
		line = f.line
		f.line = f.line[:0]
	}
	return bytes.TrimSuffix(line, []byte{'\r'}), rest, true
}

// endLine handles one line of chunked framing.
func (f *framing) endLine(line []byte) {
	switch f.state {
	case frameChunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimRight(line, " \t")), 16, 63)
		switch {
		case err != nil:
			f.state = frameOff
		case n == 0:
			f.state = frameTrailer
		default:
			f.left, f.state = int64(n), frameChunkData
		}
	case frameChunkEnd:
		if len(line) != 0 {
			f.state = frameOff
			return
		}
		f.state = frameChunkSize
	case frameTrailer:
		if len(line) == 0 {
			f.state = frameHead
		}
	}
}

// feedHead consumes p up to the end of a request head, or all of p when
// the head goes on in the next read.
func (f *framing) feedHead(p []byte) []byte {
	// Blank lines before a request line are skipped (RFC 9112 section 2.2).
	if len(f.line) == 0 {
		for len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
			p = p[1:]
		}
		if len(p) == 0 {
			return nil
		}
	}
	buf, carried := p, len(f.line)
	if carried > 0 {
		buf = append(f.line, p...)
	}
	end := headEnd(buf, carried)
	if end < 0 {
		if len(buf) > maxHead {
			f.state = frameOff
			return nil
		}
		f.line = append(f.line[:0], buf...)
		return nil
	}
	f.parseHead(buf[:end])
	f.line = f.line[:0]
	return p[end-carried:]
}

// headEnd returns the offset just past the blank line that ends the head
// in b, or -1. The search starts a few bytes before from, where the
// previous read ended.
func headEnd(b []byte, from int) int {
	i := max(from-3, 0)
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// parseHead looks at the framing fields of one request head and sets the
// state for its body.
func (f *framing) parseHead(head []byte) {
	line, rest, _ := bytes.Cut(head, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if !bytes.HasSuffix(line, []byte(" HTTP/1.1")) && !bytes.HasSuffix(line, []byte(" HTTP/1.0")) {
		f.state = frameOff // HTTP/2 preface, or not HTTP
		return
	}
	var cl []byte
	var hasCL, chunked bool
	var te int
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		name, value, ok := bytes.Cut(bytes.TrimSuffix(line, []byte{'\r'}), []byte{':'})
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			hasCL, cl = true, value
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te++
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	switch {
	case hasCL && te > 0:
		f.conflict, f.state = true, frameOff
	case te == 1 && chunked:
		f.state = frameChunkSize
	case te > 0:
		f.state = frameOff // net/http answers 501 and closes
	case hasCL:
		n, err := strconv.ParseInt(string(cl), 10, 64)
		if err != nil || n < 0 {
			f.state = frameOff // net/http answers 400 and closes
			return
		}
		if n > 0 {
			f.left, f.state = n, frameBody
		}
	}
}
