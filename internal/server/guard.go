package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// guardConn is a client connection whose bytes reach net/http's HTTP/1.x
// server only once the guard has read and accepted them: each request head
// whole, then its body by the framing the head announced (Content-Length,
// or chunked coding line by line; chunk data itself passes through).
//
// The guard accepts a strict subset of RFC 9112 on which it and net/http
// cannot disagree. Anything else (Content-Length with Transfer-Encoding,
// several or malformed Content-Length values, a transfer coding other than
// one "chunked", obs-fold, a bare CR or LF, control bytes, an unexpected
// version or request-target form) is never handed on: net/http is given
// an unparsable request line in its place, answers 400 and closes the
// connection, after answering the requests before it in order. There is no
// state in which the checks are off; the only ways out of HTTP/1 framing
// are the HTTP/2 preface as a connection's first bytes (h2c, which has its
// own framing) and a tunnel the handler opened after a 101 (Tunnel).
//
// net/http reads a connection from one goroutine at a time, so the reading
// state needs no lock.
type guardConn struct {
	net.Conn
	g *guard

	buf  []byte // bytes read and not yet judged or handed on: buf[r:w]
	r, w int
	out  []byte // accepted bytes not yet handed on (a slice of buf)
	st   int
	left int64 // body or chunk bytes still to pass through
	err  error // sticky: the connection is done

	seen int // bytes of buf[r:] already found to be whole lines of the unit due

	tunnel atomic.Bool // set by the handler after a 101
	h2c    bool        // the HTTP/2 preface may open the connection
	begun  bool        // a request has started on the connection
}

const (
	stHead      = iota // a request head is due
	stBody             // passing a Content-Length body
	stChunkLine        // a chunk-size line is due
	stChunkData        // passing chunk data
	stChunkEnd         // the CRLF after chunk data is due
	stTrailer          // trailer fields up to a blank line are due
	stPass             // not HTTP/1 any more: h2c, or a tunnel
	stTooLarge         // refused as too large: net/http is fed filler
)

// filler feeds net/http's read of a head refused as too large.
var filler = func() (b [512]byte) {
	for i := range b {
		b[i] = 'a'
	}
	return b
}()

// rejected is what net/http is given in place of a refused request: a
// request line it cannot parse, which it answers with 400 and a close.
var rejected = []byte("\x00\r\n\r\n")

// tooLarge is what net/http is given in place of a head larger than it
// would take: the start of a request whose head never ends, to which it
// answers 431 once past its own limit.
var tooLarge = []byte("GET / HTTP/1.1\r\nX: ")

// errRejected ends a connection whose request body broke its framing.
var errRejected = errors.New("request framing refused")

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Tunnel lets the connection's further bytes pass unchecked: the handler
// calls it once the upstream has switched protocols (101) for a request
// that passed every check.
func (c *guardConn) Tunnel() { c.tunnel.Store(true) }

// Close closes a connection; one the guard refused a request on is first
// half-closed and drained for a moment (bounded), so that the client reads
// the 400 before a reset that its unread bytes would cause.
func (c *guardConn) Close() error {
	if c.err == errRejected {
		c.CloseWrite()
		c.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c.Conn, 256<<10)
	}
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after an error answer
// (400, 431), so that the client reads it before the connection goes.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// tlsGuardConn is a guarded TLS connection. Its ConnectionState makes
// net/http set Request.TLS (it does so for a connection that has the
// method; a plain one must not have it).
type tlsGuardConn struct {
	*guardConn
	tc *tls.Conn
}

func (c tlsGuardConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

func (c *guardConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.err != nil {
			if c.st == stTooLarge {
				return copy(p, filler[:]), nil
			}
			return 0, c.err
		}
		if c.tunnel.Load() {
			c.st = stPass
		}
		switch c.st {
		case stPass:
			if c.r < c.w {
				n := copy(p, c.buf[c.r:c.w])
				c.r += n
				return n, nil
			}
			return c.Conn.Read(p)
		case stBody, stChunkData:
			return c.readData(p)
		}
		unit, reason, more := c.judge()
		switch {
		case reason != "":
			c.reject(reason)
		case unit != nil:
			c.out = unit
		case more:
			if err := c.fill(); err != nil {
				return 0, err
			}
		}
	}
}

// readData passes body or chunk bytes through, never more than the framing
// announced.
func (c *guardConn) readData(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	var n int
	var err error
	if c.r < c.w {
		n = copy(p, c.buf[c.r:c.w])
		c.r += n
	} else {
		n, err = c.Conn.Read(p)
	}
	c.left -= int64(n)
	if c.left == 0 {
		if c.st == stBody {
			c.st = stHead
		} else {
			c.st = stChunkEnd
		}
	}
	return n, err
}

// fill reads more bytes from the client into buf, making room first. A
// unit that does not fit in the largest buffer allowed is refused.
func (c *guardConn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.w == len(c.buf) {
		held := c.w - c.r
		switch {
		case c.r > 0:
			copy(c.buf, c.buf[c.r:c.w])
		case len(c.buf) >= c.g.maxUnit:
			c.reject("too_large")
			return nil
		default:
			nb := make([]byte, min(max(2*len(c.buf), 4096), c.g.maxUnit))
			copy(nb, c.buf[c.r:c.w])
			c.buf = nb
		}
		c.r, c.w = 0, held
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// reject hands net/http an unparsable request in place of the refused
// one, or, within a body, ends the body with an error; either way the
// connection is done.
func (c *guardConn) reject(reason string) {
	c.g.rejected(reason)
	switch {
	case c.st == stHead && reason == "too_large":
		c.out, c.st = tooLarge, stTooLarge
	case c.st == stHead:
		c.out = rejected
	}
	c.err = errRejected
	c.r, c.w, c.seen = 0, 0, 0
}

// judge looks at the unit due in buf[r:w]. It returns the unit's bytes once
// it is whole and accepted (and consumes them), a reason when it is refused,
// or more when it needs more bytes.
func (c *guardConn) judge() (unit []byte, reason string, more bool) {
	b := c.buf[c.r:c.w]
	switch c.st {
	case stHead:
		return c.judgeHead(b)
	case stChunkEnd:
		if len(b) < 2 {
			return nil, "", true
		}
		if b[0] != '\r' || b[1] != '\n' {
			return nil, "chunk", false
		}
		c.r += 2
		c.st = stChunkLine
		return b[:2], "", false
	case stChunkLine:
		end, bad := lineEnd(b)
		if bad {
			return nil, "bare_cr_lf", false
		}
		if end < 0 {
			if len(b) > maxChunkLine {
				return nil, "chunk", false
			}
			return nil, "", true
		}
		size, ok := chunkSize(b[:end])
		if !ok {
			return nil, "chunk", false
		}
		c.r += end + 2
		if size == 0 {
			c.st = stTrailer
		} else {
			c.st, c.left = stChunkData, size
		}
		return b[:end+2], "", false
	case stTrailer:
		end, bad := c.blockEnd(b)
		if bad {
			return nil, "bare_cr_lf", false
		}
		if end < 0 {
			return nil, "", true
		}
		if !fieldsOK(b[:end-2]) {
			return nil, "field", false
		}
		c.r += end
		c.seen = 0
		c.st = stHead
		return b[:end], "", false
	}
	return nil, "", true
}

// judgeHead judges a request head, and sets the state for its body.
func (c *guardConn) judgeHead(b []byte) (unit []byte, reason string, more bool) {
	if !c.begun && c.h2c {
		n := min(len(b), len(h2Preface))
		if string(b[:n]) == h2Preface[:n] {
			if n < len(h2Preface) {
				return nil, "", true
			}
			c.st = stPass
			return nil, "", false
		}
	}
	// Empty lines before a request line are skipped (RFC 9112 section
	// 2.2), a few at most; net/http never sees them.
	skip := 0
	for skip+1 < len(b) && b[skip] == '\r' && b[skip+1] == '\n' {
		if skip += 2; skip > 4 {
			return nil, "empty_lines", false
		}
	}
	if skip > 0 {
		c.r += skip
		c.seen = 0
		b = b[skip:]
	}
	end, bad := c.blockEnd(b)
	if bad {
		return nil, "bare_cr_lf", false
	}
	if end < 0 {
		return nil, "", true
	}
	f, reason := parseHead(b[:end-2])
	if reason != "" {
		return nil, reason, false
	}
	c.begun = true
	c.r += end
	c.seen = 0
	switch {
	case f.chunked:
		c.st = stChunkLine
	case f.length > 0:
		c.st, c.left = stBody, f.length
	}
	return b[:end], "", false
}

// lineEnd returns the offset of the CRLF that ends the first line of b, or
// -1 when b holds no whole line yet; bad when a CR or LF stands alone.
func lineEnd(b []byte) (end int, bad bool) {
	i := bytes.IndexByte(b, '\n')
	lim := len(b)
	if i >= 0 {
		lim = i
	}
	if j := bytes.IndexByte(b[:lim], '\r'); j >= 0 && j != lim-1 {
		return -1, true // a CR inside the line
	}
	if i < 0 {
		return -1, false
	}
	if i == 0 || b[i-1] != '\r' {
		return -1, true
	}
	return i - 1, false
}

// blockEnd returns the offset just past the blank line that ends a block
// of lines (a head, trailers) in b, or -1; bad when a CR or LF stands
// alone. Lines found whole are not scanned again when more bytes come
// (c.seen), so a head sent a byte at a time costs no more than one sent
// whole.
func (c *guardConn) blockEnd(b []byte) (end int, bad bool) {
	for {
		e, bad := lineEnd(b[c.seen:])
		if bad || e < 0 {
			return -1, bad
		}
		if e == 0 {
			return c.seen + 2, false
		}
		c.seen += e + 2
	}
}
