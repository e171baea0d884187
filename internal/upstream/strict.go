package upstream

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// strictConn checks the HTTP/1.1 answers read from a connection of
// net/http's Transport by the rules this package's Client reads them by
// (checkHead): what net/http would take and the Client refuses (a bare LF,
// obs-fold, Content-Length with Transfer-Encoding, a status outside
// 100..599) fails the read instead. It follows the answers' framing
// (Content-Length, chunked, none) to find each head; Transport tells it
// of each HEAD request written (wroteHead), whose answer has no body.
// Bytes pass through unchanged.
type strictConn struct {
	net.Conn
	max int // bound on a head, and on a trailer section

	mu    sync.Mutex
	heads []bool // HEAD requests written and not yet answered (one at most)

	phase   phase
	buf     []byte // the head, chunk-size line or trailers read so far
	checked int    // how much of buf checkBreaks has seen
	remain  int64  // of the body or the chunk
	err     error  // found in bytes after some that were passed on
}

type phase int

const (
	inHead      phase = iota
	inBody            // remain bytes framed by Content-Length
	inChunkSize       // a chunk-size line, in buf
	inChunkData       // remain bytes of a chunk
	inChunkEnd        // the CRLF after a chunk's data; remain counts it
	inTrailers        // the trailer section, in buf
	unchecked         // to the close, or a tunnel after 101
)

// maxChunkLine bounds a chunk-size line (with its extensions).
const maxChunkLine = 4 << 10

// wroteHead records a request written on the connection.
func (c *strictConn) wroteHead(isHead bool) {
	c.mu.Lock()
	c.heads = append(c.heads, isHead)
	c.mu.Unlock()
}

func (c *strictConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if k, ferr := c.feed(p[:n]); ferr != nil {
		c.err = ferr
		if k == 0 {
			return 0, ferr
		}
		return k, nil // the bytes before the fault; the fault next
	}
	return n, err
}

// feed follows b through the answers' framing; it returns how many bytes
// of b came before a fault, and the fault.
func (c *strictConn) feed(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		rest := b[done:]
		switch c.phase {
		case unchecked:
			return len(b), nil
		case inBody, inChunkData:
			n := int(min(int64(len(rest)), c.remain))
			c.remain -= int64(n)
			done += n
			if c.remain == 0 {
				if c.phase == inBody {
					c.answered()
				} else {
					c.phase, c.remain = inChunkEnd, 2
				}
			}
		case inChunkEnd:
			want := "\r\n"[2-c.remain:]
			n := min(len(rest), len(want))
			if string(rest[:n]) != want[:n] {
				return done, malformed("no CRLF after a chunk")
			}
			c.remain -= int64(n)
			done += n
			if c.remain == 0 {
				c.phase = inChunkSize
			}
		case inHead, inChunkSize, inTrailers:
			n, err := c.line(rest)
			if err != nil {
				return done, err
			}
			done += n
		}
	}
	return done, nil
}

// line gathers a head, chunk-size line or trailer section into buf and
// acts on it once whole; it returns how many bytes of b it took.
func (c *strictConn) line(b []byte) (int, error) {
	end, limit := headEnd, c.max
	switch {
	case c.phase == inChunkSize:
		end, limit = []byte("\r\n"), maxChunkLine
	case c.phase == inTrailers && (len(c.buf) == 0 && b[0] == '\r' || bytes.Equal(c.buf, []byte("\r"))):
		end = []byte("\r\n") // no trailer fields
	}
	from := max(len(c.buf)-len(end)+1, 0)
	take := min(len(b), limit+1-len(c.buf))
	c.buf = append(c.buf, b[:take]...)
	i := bytes.Index(c.buf[from:], end)
	if i < 0 {
		if len(c.buf) > limit {
			if c.phase == inHead {
				return 0, ErrResponseHeaderTooLarge
			}
			return 0, malformed("chunk line or trailers too long")
		}
		var err error
		if c.checked, err = checkBreaks(c.buf, c.checked); err != nil {
			return 0, err
		}
		return take, nil
	}
	n := from + i + len(end)
	took := take - (len(c.buf) - n)
	whole := c.buf[:n]
	var err error
	switch c.phase {
	case inHead:
		if n > c.max {
			return 0, ErrResponseHeaderTooLarge
		}
		err = c.head(whole)
	case inChunkSize:
		err = c.chunkSize(whole)
	case inTrailers:
		if _, err = checkBreaks(whole, 0); err == nil {
			c.answered()
		}
	}
	if cap(c.buf) > 64<<10 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	c.checked = 0
	if err != nil {
		return 0, err
	}
	return took, nil
}

// head checks a whole head and sets the framing of what follows it.
func (c *strictConn) head(raw []byte) error {
	c.mu.Lock()
	isHead := len(c.heads) > 0 && c.heads[0]
	c.mu.Unlock()
	method := http.MethodGet
	if isHead {
		method = http.MethodHead
	}
	var resp http.Response
	if _, err := checkHead(raw, method, &resp); err != nil {
		return err
	}
	code := int(raw[9]-'0')*100 + int(raw[10]-'0')*10 + int(raw[11]-'0')
	cl, chunked, coded := framing(raw)
	switch {
	case code == http.StatusSwitchingProtocols:
		c.phase = unchecked
	case code < 200:
		// An interim answer: the final one follows.
	case isHead || code == http.StatusNoContent || code == http.StatusNotModified:
		c.answered()
	case chunked:
		c.phase = inChunkSize
	case coded:
		c.phase = unchecked // net/http refuses it, or reads it to the close
	case cl > 0:
		c.phase, c.remain = inBody, cl
	case cl == 0:
		c.answered()
	default:
		c.phase = unchecked // to the close
	}
	return nil
}

// framing reads a checked head's framing: its Content-Length (-1 if
// none), whether its transfer coding ends in chunked, whether it has one
// at all.
func framing(raw []byte) (cl int64, chunked, coded bool) {
	cl = -1
	lines := bytes.Split(raw[:len(raw)-4], []byte("\r\n"))[1:]
	for _, f := range lines {
		name, value, _ := bytes.Cut(f, []byte(":"))
		v := string(bytes.Trim(value, " \t"))
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl, _ = parseLength(v)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			coded = true
			last := v[max(bytes.LastIndexByte([]byte(v), ',')+1, 0):]
			chunked = bytes.EqualFold(bytes.Trim([]byte(last), " \t"), []byte("chunked"))
		}
	}
	return cl, chunked, coded
}

// chunkSize reads a chunk-size line: hex digits, then optional
// extensions after a ';'.
func (c *strictConn) chunkSize(line []byte) error {
	if _, err := checkBreaks(line, 0); err != nil {
		return err
	}
	size, _, _ := bytes.Cut(line[:len(line)-2], []byte(";"))
	size = bytes.TrimRight(size, " \t")
	n, ok := httpsyntax.ChunkSize(size)
	if !ok {
		return malformed("chunk size %.20q", line)
	}
	if n == 0 {
		c.phase = inTrailers
	} else {
		c.phase, c.remain = inChunkData, n
	}
	return nil
}

// answered ends an answer: the next bytes are the next answer's head.
func (c *strictConn) answered() {
	c.mu.Lock()
	if len(c.heads) > 0 {
		c.heads = c.heads[1:]
	}
	c.mu.Unlock()
	c.phase = inHead
}

// traceHead tells the strictConn a HEAD request is written on of it: its
// answer has no body. A connection carries one request at a time, so the
// next final answer on it is this request's.
func traceHead(r *http.Request) *http.Request {
	var sc *strictConn
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			sc, _ = info.Conn.(*strictConn)
		},
		WroteHeaders: func() {
			if sc != nil {
				sc.wroteHead(true)
			}
		},
	}
	return r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
}
