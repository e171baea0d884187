// Package front is miffy's client-facing HTTP/1.1 server: a fast path for
// the requests a proxy sees most (origin-form HTTP/1.1, framed by
// Content-Length or bodiless), written and read on one goroutine per
// connection, in front of net/http's server for everything else.
//
// A request the fast path does not fully understand is never guessed at:
// its connection, with the bytes already read, is handed to net/http
// (Handoff), which serves it and the rest of that connection exactly as it
// would have served them alone: chunked uploads, Expect: 100-continue,
// upgrades, HTTP/1.0, absolute-form targets, odd or oversized heads, and
// the errors net/http answers itself (400, 431, 501).
//
// The fast path answers as net/http does: the same status line, the same
// header rules (Date, Content-Length for a short body written at once,
// chunking otherwise, Content-Type sniffing, trailers, Connection: close),
// the same request fields (Host out of Header, Pragma: no-cache), the same
// handling of unread request bodies, and a request context canceled when
// the client goes away. It leaves out what costs most per request there:
// the second goroutine that watches every connection (here it starts only
// for a request still running after WatchAfter), a copy of the header map
// per response, and three buffers per request.
package front

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Server. The timeouts mean what they mean for
// net/http.Server; zero is no limit.
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes: a head larger than this, or than the fast path's
	// buffer (4 KiB), is handed to net/http, which applies its own limit.
	MaxHeaderBytes int
	// WatchAfter is how long a request runs before its connection is
	// watched for the client closing it (which cancels the request's
	// context). If zero, 100ms.
	WatchAfter time.Duration
	// ErrorLog gets handler panics. If nil, the log package's logger.
	ErrorLog *log.Logger
}

// bufSize is the size of each connection's read and write buffers: a
// head must fit in the read buffer to take the fast path.
const bufSize = 4096

// Server serves HTTP/1.1 connections. Make it with New.
type Server struct {
	h       http.Handler
	cfg     Config
	handoff *handoffListener
	counts  map[string]*atomic.Uint64

	closing atomic.Bool
	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[*conn]struct{}
	loops   sync.WaitGroup

	watchOnce sync.Once
	stop      chan struct{} // closed by Shutdown: ends watchLoop
	stopOnce  sync.Once
}

// New returns a server for h.
func New(h http.Handler, cfg Config) *Server {
	if cfg.WatchAfter == 0 {
		cfg.WatchAfter = 100 * time.Millisecond
	}
	s := &Server{
		h:       h,
		cfg:     cfg,
		handoff: newHandoffListener(),
		counts:  map[string]*atomic.Uint64{},
		lns:     map[net.Listener]struct{}{},
		conns:   map[*conn]struct{}{},
		stop:    make(chan struct{}),
	}
	for _, r := range Reasons {
		s.counts[r] = new(atomic.Uint64)
	}
	return s
}

// Handoff is the listener on which the connections handed to net/http
// arrive: serve it with an http.Server for the same handler. Its address
// is that of the first listener Serve was given.
func (s *Server) Handoff() net.Listener { return s.handoff }

// Handoffs is how many connections were handed to net/http for reason
// (one of Reasons).
func (s *Server) Handoffs(reason string) uint64 {
	if c := s.counts[reason]; c != nil {
		return c.Load()
	}
	return 0
}

// Serve accepts connections on ln until Shutdown (then it returns
// http.ErrServerClosed) or until ln fails.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.handoff.setAddr(ln.Addr())
	s.loops.Add(1)
	s.mu.Unlock()
	s.watchOnce.Do(func() { go s.watchLoop() })
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		s.loops.Done()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.logf("front: accept error: %v; retrying in %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, lets the others
// finish their request (answering with Connection: close) and returns
// when all are closed or ctx ends. Connections handed to net/http are
// the business of its server's Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	defer s.stopOnce.Do(func() { close(s.stop) })
	wait := time.Millisecond
	for {
		if s.closeIdle() {
			s.loops.Wait()
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if wait *= 2; wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
	}
}

// watchLoop ticks every WatchAfter: a request found running at two ticks
// in a row has run for at least WatchAfter, and its connection is watched
// (startWatch). Per request this costs two atomic adds, no timer.
func (s *Server) watchLoop() {
	t := time.NewTicker(s.cfg.WatchAfter)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for c := range s.conns {
			seq := c.seq.Load()
			if seq%2 == 1 && seq == c.seen {
				c.startWatch()
			}
			c.seen = seq
		}
		s.mu.Unlock()
	}
}

// closeIdle closes the idle connections and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.ErrorLog != nil {
		s.cfg.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.cr.c = c
	c.br = bufio.NewReaderSize(&c.cr, bufSize)
	c.bw = bufio.NewWriterSize(checkWriter{c}, bufSize)
	c.headLimit = bufSize
	if m := s.cfg.MaxHeaderBytes; m > 0 && m < c.headLimit {
		c.headLimit = m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Connection states, for Shutdown.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

type conn struct {
	s         *Server
	nc        net.Conn
	cr        connReader
	br        *bufio.Reader
	bw        *bufio.Writer
	remote    string
	headLimit int
	state     atomic.Int32

	// The watch for a client going away mid-request (see watch).
	mu sync.Mutex
	// seq counts request starts and ends (odd: one is running); the
	// server's watch loop starts the watch for a request it finds
	// running at two ticks (seen is the seq of its last tick).
	seq       atomic.Uint64
	seen      uint64
	ctx       *reqCtx // the running request's; nil between requests
	watchable bool    // the request body is read and nothing more is buffered
	watchDue  bool    // WatchAfter has passed for the running request
	watching  bool
	aborting  bool
	watchDone chan struct{}
	bgByte    [1]byte
	hasByte   bool
	bgErr     error
	bgPending atomic.Bool // hasByte or bgErr is set

	tmpl    http.Request
	pend    [bufferBeforeChunking]byte
	keys    []string
	hb      []byte
	lingers bool // close with a pause (unread request body)
}

// connReader is what the read buffer reads from: the connection, after
// any byte (or error) the watch read.
type connReader struct{ c *conn }

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.bgPending.Load() {
		c.mu.Lock()
		if c.hasByte && len(p) > 0 {
			p[0] = c.bgByte[0]
			c.hasByte = false
			c.bgPending.Store(c.bgErr != nil)
			c.mu.Unlock()
			return 1, nil
		}
		err := c.bgErr
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return c.nc.Read(p)
}

// checkWriter is what the write buffer writes to: a failed write cancels
// the running request, as in net/http.
type checkWriter struct{ c *conn }

func (w checkWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	if err != nil {
		w.c.mu.Lock()
		if w.c.ctx != nil {
			w.c.ctx.cancel()
		}
		w.c.mu.Unlock()
	}
	return n, err
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		c.s.forget(c)
		if handedOff {
			return
		}
		if c.lingers {
			// Let the client read the answer before its unread body makes
			// the kernel reset the connection (net/http waits the same).
			if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
				c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				io.Copy(io.Discard, c.nc)
			}
		}
		c.nc.Close()
	}()
	for n := 0; ; n++ {
		// Wait for the next request, idle, unless it is already buffered
		// (pipelined).
		if n == 0 || c.br.Buffered() == 0 {
			if n > 0 && !c.state.CompareAndSwap(stateActive, stateIdle) {
				return
			}
			d := c.s.cfg.ReadHeaderTimeout // the first head's, from the accept
			if n > 0 {
				d = c.s.cfg.IdleTimeout
			}
			if d == 0 {
				d = c.s.cfg.ReadTimeout
			}
			c.setReadDeadline(d, time.Now())
			if c.s.closing.Load() {
				return
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			if !c.state.CompareAndSwap(stateIdle, stateActive) {
				return // Shutdown closed it as idle
			}
		}
		// The header deadline, unless the whole head came with the first
		// read (the common case: then no deadline is moved for it).
		var t0 time.Time
		if b, _ := c.br.Peek(c.br.Buffered()); n > 0 && !headWhole(b) {
			t0 = time.Now()
			d := c.s.cfg.ReadHeaderTimeout
			if d == 0 {
				d = c.s.cfg.ReadTimeout
			}
			c.setReadDeadline(d, t0)
		}
		raw, reason, err := c.readHead()
		if err != nil {
			return // as net/http: EOF, timeouts and resets end it quietly
		}
		var h head
		if reason == "" {
			reason = parseHead(raw, &h)
		}
		if reason != "" {
			handedOff = c.handOff(reason)
			return
		}
		c.br.Discard(len(raw))
		// ReadTimeout bounds the body's reading too. A request without a
		// body reads nothing more: the deadline set before stays (the idle
		// or header one) until the next wait sets its own.
		if h.contentLength > 0 {
			if t0.IsZero() {
				t0 = time.Now()
			}
			c.setReadDeadline(c.s.cfg.ReadTimeout, t0)
		}
		if !c.serveOne(&h) {
			return
		}
	}
}

// setReadDeadline sets the deadline d after from, or none if d is zero.
func (c *conn) setReadDeadline(d time.Duration, from time.Time) {
	if d > 0 {
		c.nc.SetReadDeadline(from.Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
}

// headWhole reports whether b starts with a whole head (or with bytes
// that will be handed off).
func headWhole(b []byte) bool {
	n, _, reason := headEnd(b, 0)
	return n > 0 || reason != ""
}

// readHead returns the next head, still buffered, or a reason to hand
// the connection off.
func (c *conn) readHead() (raw []byte, reason string, err error) {
	from := 0
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		n, next, reason := headEnd(b, from)
		if reason != "" {
			return nil, reason, nil
		}
		if n > 0 {
			if n > c.headLimit {
				return nil, reasonSize, nil
			}
			return b[:n], "", nil
		}
		if len(b) >= c.headLimit {
			return nil, reasonSize, nil
		}
		from = next
		if _, err := c.br.Peek(len(b) + 1); err != nil {
			return nil, "", err
		}
	}
}

// handOff gives the connection, and what was read of it, to net/http.
func (c *conn) handOff(reason string) bool {
	c.s.counts[reason].Add(1)
	buffered, _ := c.br.Peek(c.br.Buffered())
	pc := &prefixConn{Conn: c.nc, prefix: append([]byte(nil), buffered...)}
	c.nc.SetReadDeadline(time.Time{}) // net/http sets its own
	if _, ok := c.nc.(io.ReaderFrom); ok {
		return c.s.handoff.deliver(prefixReaderFrom{pc})
	}
	return c.s.handoff.deliver(pc)
}

// serveOne runs the handler for one request and answers it; it reports
// whether the connection can carry another.
func (c *conn) serveOne(h *head) bool {
	ctx := new(reqCtx)
	defer ctx.cancel()
	var body *reqBody
	c.tmpl = http.Request{
		Method:     h.method,
		URL:        h.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h.header,
		Body:       http.NoBody,
		Close:      h.close,
		Host:       h.host,
		RemoteAddr: c.remote,
		RequestURI: h.target,
	}
	if h.contentLength > 0 {
		body = &reqBody{c: c, remain: h.contentLength}
		c.tmpl.Body = body
		c.tmpl.ContentLength = h.contentLength
	}
	r := c.tmpl.WithContext(ctx)
	c.tmpl = http.Request{}

	c.mu.Lock()
	c.ctx = ctx
	c.watchable = body == nil && c.br.Buffered() == 0
	c.watchDue = false
	c.mu.Unlock()
	c.seq.Add(1)

	w := &response{c: c, req: r, body: body, cl: -1} // header: made by Header, or set by SetHeader
	panicked := c.run(w, r)

	c.seq.Add(1)
	c.mu.Lock()
	c.ctx = nil
	c.watchable = false
	watching, done := c.watching, c.watchDone
	if watching {
		c.aborting = true
	}
	c.mu.Unlock()
	if watching {
		c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		c.mu.Lock()
		c.aborting = false
		c.mu.Unlock()
		c.setReadDeadline(c.s.cfg.ReadTimeout, time.Now())
	}
	if panicked {
		c.bw.Flush() // what the handler had sent on, as net/http does
		return false
	}
	keep := w.finish()
	if body != nil {
		body.mu.Lock()
		failed, left, early := body.err != nil, body.remain > 0, body.early
		body.mu.Unlock()
		if failed || (left && w.closeAfter) {
			keep = false
		}
		if early {
			// As net/http after a Close that read its whole bound.
			keep, c.lingers = false, true
		}
	}
	c.mu.Lock()
	if c.bgErr != nil {
		keep = false
	}
	c.mu.Unlock()
	return keep && !c.s.closing.Load()
}

var aLongTimeAgo = time.Unix(1, 0)

// run calls the handler, turning a panic into a closed connection (and a
// log line, except for http.ErrAbortHandler).
func (c *conn) run(w *response, r *http.Request) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("http: panic serving %v: %v\n%s", c.remote, v, buf)
			}
		}
	}()
	c.s.h.ServeHTTP(w, r)
	return false
}

// startWatch runs WatchAfter into a request: if the request body is read
// and no further bytes are waiting, one goroutine reads the connection so
// that a client closing it cancels the request. A byte read (the next
// request, pipelined) is kept for the read buffer.
func (c *conn) startWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != nil {
		c.watchDue = true
	}
	c.watchLocked()
}

// bodyRead notes that the request body is read to its end: the watch
// starts now if WatchAfter has passed (net/http starts its background
// read at the body's end).
func (c *conn) bodyRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchable = c.br.Buffered() == 0
	c.watchLocked()
}

func (c *conn) watchLocked() {
	if c.ctx == nil || !c.watchDue || !c.watchable || c.watching || c.bgPending.Load() {
		return
	}
	c.watching = true
	c.watchDone = make(chan struct{})
	// No deadline for the watch: the deadline left from reading the
	// request (idle, header) is not meant for it, and a long request is
	// not the client's fault (net/http's background read keeps ReadTimeout
	// and cancels a handler that runs past it). Set here, under c.mu,
	// before serveOne can see watching and abort the read.
	c.nc.SetReadDeadline(time.Time{})
	go c.watch(c.watchDone)
}

func (c *conn) watch(done chan struct{}) {
	n, err := c.nc.Read(c.bgByte[:])
	c.mu.Lock()
	if n == 1 {
		c.hasByte = true
		c.bgPending.Store(true)
	}
	if err != nil {
		var ne net.Error
		if !(c.aborting && errors.As(err, &ne) && ne.Timeout()) {
			c.bgErr = err
			c.bgPending.Store(true)
			if c.ctx != nil {
				c.ctx.cancel()
			}
		}
	}
	c.watching = false
	c.mu.Unlock()
	close(done)
}

// reqBody is a request body framed by Content-Length. Its mutex
// serialises the handler's goroutine and any other that reads the body:
// net/http's Transport goes on reading a request body on its own
// goroutine (its writeLoop, for the end of the body) while the handler
// already writes the answer, whose head reads the rest away (as
// net/http's body, which has a mutex for the same reason).
type reqBody struct {
	c      *conn
	mu     sync.Mutex
	remain int64
	closed bool
	early  bool // closed with net/http's whole bound left: the connection closes
	err    error
}

func (b *reqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		b.c.bodyRead()
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close reads what is left of the body, as net/http does, unless that is
// more than its bound: then the connection closes after the answer.
func (b *reqBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.err != nil || b.remain == 0 || b.remain > maxPostHandlerReadBytes {
		return nil
	}
	n, err := io.CopyN(io.Discard, b.c.br, b.remain)
	b.remain -= n
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return err
	}
	b.early = n == maxPostHandlerReadBytes
	b.c.bodyRead()
	return nil
}

// discardRest reads what the handler left of the body, up to
// maxPostHandlerReadBytes, so that the connection can carry the next
// request, and closes the body (as net/http, when the head goes out). It
// reports keep false if the connection must close instead: tooBig if more
// than the bound is left unread, err if reading the body failed (else the
// handler closed it unread).
func (b *reqBody) discardRest() (keep, tooBig bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.err != nil:
		return false, false, b.err
	case b.remain == 0:
		b.closed = true
		return true, false, nil
	case b.closed:
		return false, false, nil
	case b.remain >= maxPostHandlerReadBytes:
		return false, true, nil
	}
	n, err := io.CopyN(io.Discard, b.c.br, b.remain)
	b.remain -= n
	if err != nil {
		b.err = err
		return false, false, err
	}
	b.closed = true
	b.c.bodyRead()
	return true, false, nil
}

// maxPostHandlerReadBytes is net/http's bound on an unread request body
// read away to keep the connection.
const maxPostHandlerReadBytes = 256 << 10

// prefixConn is a connection handed off with the bytes already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close after an error answer.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// prefixReaderFrom is a prefixConn over a connection with ReadFrom (TCP):
// net/http's server sends a body copied from an io.Reader differently
// (the head first, chunked) when the connection has one.
type prefixReaderFrom struct{ *prefixConn }

func (c prefixReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	return c.Conn.(io.ReaderFrom).ReadFrom(r)
}

// handoffListener yields the connections handed to net/http.
type handoffListener struct {
	ch     chan net.Conn
	done   chan struct{}
	once   sync.Once
	addrMu sync.Mutex
	addr   net.Addr
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) setAddr(a net.Addr) {
	l.addrMu.Lock()
	if l.addr == nil {
		l.addr = a
	}
	l.addrMu.Unlock()
}

func (l *handoffListener) Addr() net.Addr {
	l.addrMu.Lock()
	defer l.addrMu.Unlock()
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}
