// Package upstream is miffy's HTTP/1.1 client for the reference, the
// candidate and the secondary: one request at a time on pooled keep-alive
// connections, written and read by the caller's goroutine.
//
// net/http's Transport hands every request to two goroutines per
// connection and allocates contexts, timers and a copy of the request for
// each; on a proxy's hot path that is most of the cost. This client does
// only what miffy needs: requests whose body is already in memory (or
// absent), HTTP/1.1 with keep-alive, plain TCP or TLS. Everything else
// (streamed uploads, protocol upgrades) stays with net/http.
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// Config tunes a Client. Nothing takes a default: a zero means what its
// field says (package config hands in [proxy]'s values).
type Config struct {
	// DialTimeout bounds connecting, and the TLS handshake. If zero, no
	// bound but the request's context.
	DialTimeout time.Duration
	// MaxIdlePerHost is how many idle connections are kept per upstream.
	// If zero, no limit.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept. If zero, until
	// the upstream closes it.
	IdleTimeout time.Duration
	// TLS is the base TLS configuration for https upstreams; ServerName is
	// set per host unless it is set here. If nil, the system's roots.
	TLS *tls.Config
	// MaxResponseHeaderBytes bounds a response's head (each interim
	// answer's, and the final one's); a longer one fails the exchange
	// with ErrResponseHeaderTooLarge. If zero, no limit.
	MaxResponseHeaderBytes int
	// OfferHTTP2 offers h2 as well as http/1.1 in TLS handshakes; an
	// upstream that picks h2 fails the exchange with ErrHTTP2 before
	// anything is sent (Auto then sends it over HTTP/2).
	OfferHTTP2 bool

	// hooks, set by this package's tests only, replace limits and watch
	// buffers; nil in production.
	hooks *testHooks
}

// testHooks are what a test changes of one Client: each Client has its
// own, so that tests run in parallel.
type testHooks struct {
	// inlineMax replaces defaultInlineMax.
	inlineMax int
	// writeBuf is told of each buffer lent from reqBufs (+1) and given
	// back (-1).
	writeBuf func(delta int)
	// now, if set, replaces time.Now for idle connections' age.
	now func() time.Time
}

// Client sends requests to upstreams. Its zero value is not usable; make
// it with New. It is safe for concurrent use.
type Client struct {
	cfg    Config
	dialer net.Dialer

	mu    sync.RWMutex
	pools map[poolKey]*pool
}

type poolKey struct{ scheme, addr string }

// orNoLimit is the bound n, or no bound (math.MaxInt32) where n is zero.
func orNoLimit(n int) int {
	if n == 0 {
		return math.MaxInt32
	}
	return n
}

// withDialTimeout bounds ctx by the dial timeout d; zero is no bound.
func withDialTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// New returns a client.
func New(cfg Config) *Client {
	return &Client{
		cfg:    cfg,
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		pools:  map[poolKey]*pool{},
	}
}

// Field is one header line added to a request.
type Field struct{ Name, Value string }

// Request is one request to send.
type Request struct {
	Method string
	// Scheme ("http" or "https") and Addr (host:port, or host) say where
	// the request goes.
	Scheme, Addr string
	// Target is the request target: the escaped path and the query.
	Target string
	// Host is the Host header. If empty, Addr.
	Host string
	// Header is written as it is, less hop-by-hop fields, Host, and the
	// framing fields this client writes itself; the caller removes the
	// fields named by Connection. Fields are written after it, and
	// replace any of Header's fields of the same name.
	Header http.Header
	Fields []Field
	// Body is sent with a Content-Length. Nil sends none, except where
	// the method expects one (POST, PUT, PATCH: "Content-Length: 0").
	Body []byte
	// Stream, if not nil, is sent instead of Body as it is read,
	// StreamLength bytes of it (-1: unknown, chunked). RoundTripper alone
	// sends it; the Client refuses such a request.
	Stream       io.ReadCloser
	StreamLength int64
	// HeaderTimeout bounds the wait for the response's head after the
	// request is written. If zero, only ctx bounds it.
	HeaderTimeout time.Duration
}

// ErrStream is returned by the Client for a Request with a Stream.
var ErrStream = errors.New("upstream client: streamed bodies go through RoundTripper")

// ErrUpgrade is returned for a 101 answer: upgrades are not handled here.
var ErrUpgrade = errors.New("upstream switched protocols")

// ErrHTTP2 is returned, with Config.OfferHTTP2, for an upstream whose TLS
// handshake chose HTTP/2: nothing was sent to it.
var ErrHTTP2 = errors.New("upstream negotiated HTTP/2")

// Do sends req and reads the response's head. The caller must close the
// response's body; a body read to its end returns the connection to the
// pool on Close. ctx bounds the whole exchange, body included.
func (c *Client) Do(ctx context.Context, req *Request) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	if req.Stream != nil {
		return nil, ErrStream
	}
	p := c.pool(req.Scheme, req.Addr)
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(ctx, c)
		if err != nil {
			return nil, err
		}
		resp, retry, err := pc.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		pc.close()
		// A connection that the upstream closed while it sat in the pool
		// fails before anything is answered: try once more on a new one.
		if !reused || !retry || attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// CloseIdle closes the idle connections.
func (c *Client) CloseIdle() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, p := range c.pools {
		p.closeIdle()
	}
}

func (c *Client) pool(scheme, addr string) *pool {
	key := poolKey{scheme, addr}
	c.mu.RLock()
	p := c.pools[key]
	c.mu.RUnlock()
	if p != nil {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p = c.pools[key]; p == nil {
		p = newPool(c.cfg, scheme, addr)
		c.pools[key] = p
	}
	return p
}

// pool keeps one upstream's idle connections, the most recent last.
type pool struct {
	cfg        Config
	scheme     string
	dialAddr   string // host:port
	serverName string // for TLS

	mu   sync.Mutex
	idle []*conn
}

func newPool(cfg Config, scheme, addr string) *pool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.Trim(addr, "[]"), "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return &pool{cfg: cfg, scheme: scheme, dialAddr: net.JoinHostPort(host, port), serverName: host}
}

// now is the time idle connections are measured by: the clock, or a
// test's.
func (p *pool) now() time.Time {
	if h := p.cfg.hooks; h != nil && h.now != nil {
		return h.now()
	}
	return time.Now()
}

// get returns an idle connection, or dials one; reused says which.
func (p *pool) get(ctx context.Context, c *Client) (pc *conn, reused bool, err error) {
	now := p.now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		n := len(p.idle) - 1
		pc = p.idle[n]
		p.idle[n] = nil
		p.idle = p.idle[:n]
		if p.cfg.IdleTimeout > 0 && now.Sub(pc.idleSince) >= p.cfg.IdleTimeout {
			pc.nc.Close()
			continue
		}
		p.mu.Unlock()
		if pc.fresh() {
			return pc, true, nil
		}
		pc.nc.Close()
		p.mu.Lock()
	}
	p.mu.Unlock()
	pc, err = p.dial(ctx, c)
	return pc, false, err
}

func (p *pool) dial(ctx context.Context, c *Client) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", p.dialAddr)
	if err != nil {
		return nil, err
	}
	if p.scheme == "https" {
		cfg := &tls.Config{}
		if p.cfg.TLS != nil {
			cfg = p.cfg.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = p.serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		if p.cfg.OfferHTTP2 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		tc := tls.Client(nc, cfg)
		hctx, cancel := withDialTimeout(ctx, p.cfg.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", p.dialAddr, err)
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			tc.Close()
			return nil, ErrHTTP2
		}
		nc = tc
	}
	pc := &conn{pool: p, nc: nc}
	pc.quiet = quietCheck(nc)
	pc.send = sendAwait(nc, pc.returnWriteBuf)
	if pc.send == nil {
		// Kept for the connection's life (TLS: see fresh).
		pc.br = bufio.NewReaderSize(countingReader{pc}, readBufSize)
	}
	pc.abort = func() { nc.SetDeadline(aLongTimeAgo) }
	return pc, nil
}

// put keeps a connection whose last exchange ended cleanly.
func (p *pool) put(pc *conn) {
	pc.idleSince = p.now()
	// The last request's deadline would fail the next quiet check once
	// it has passed.
	pc.setDeadline(time.Time{})
	clean := pc.br.Buffered() == 0
	switch {
	case clean && pc.send != nil:
		// The body that read from it has ended: nothing reads it again.
		// One grown for a long head (readHead) is left to the collector.
		if pc.br.Size() == readBufSize {
			pc.br.Reset(nil)
			readers.Put(pc.br)
		}
		pc.br = nil
	case clean && pc.br.Size() != readBufSize:
		pc.br = bufio.NewReaderSize(countingReader{pc}, readBufSize)
	}
	p.mu.Lock()
	if clean && len(p.idle) < orNoLimit(p.cfg.MaxIdlePerHost) {
		p.idle = append(p.idle, pc)
		pc = nil
	}
	p.mu.Unlock()
	if pc != nil {
		pc.nc.Close()
	}
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.nc.Close()
	}
}

// conn is one upstream connection.
type conn struct {
	pool      *pool
	nc        net.Conn
	br        *bufio.Reader // nil while idle, unless send is nil
	idleSince time.Time
	quiet     func() bool                      // see quietCheck
	send      func([]byte) (int, error, error) // see sendAwait; nil: br is kept
	wbuf      *[]byte                          // lent from reqBufs while a request is written
	wb        []byte                           // what is written from it
	nread     int64                            // bytes received on nc
	head      http.Request                     // what ReadResponse needs to know of the request
	abort     func()                           // fails the exchange's reads and writes now
	deadlines bool                             // a deadline may be set on nc (see setDeadline)
}

// countingReader counts what a connection receives, so that a failed
// exchange can tell whether the upstream answered anything.
type countingReader struct{ pc *conn }

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.pc.nc.Read(p)
	r.pc.nread += int64(n)
	return n, err
}

func (pc *conn) close() { pc.nc.Close() }

// fresh reports whether an idle connection may carry a request: open, and
// nothing received since its last answer. Over TLS, stray bytes may have
// left the socket already, into the tls.Conn's buffers, where only a read
// sees them: one that cannot wait, as the deadline has passed.
func (pc *conn) fresh() bool {
	if !pc.quiet() {
		return false
	}
	if _, ok := pc.nc.(*tls.Conn); !ok {
		return true
	}
	pc.nc.SetReadDeadline(aLongTimeAgo)
	_, err := pc.br.Peek(1)
	pc.nc.SetReadDeadline(time.Time{})
	return isTimeout(err)
}

// maxInterim bounds the 1xx answers read before the final one (as
// net/http does).
const maxInterim = 5

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads the response head. retry reports that
// the failure came before the upstream answered anything, so that the
// request may be sent again on another connection.
func (pc *conn) roundTrip(ctx context.Context, req *Request) (resp *http.Response, retry bool, err error) {
	deadline, hasDeadline := ctx.Deadline()
	pc.setDeadline(deadline)
	// Cancelling ctx unblocks reads and writes by moving the deadline.
	stop := afterFunc(ctx, pc.abort)
	fail := func(err error, retry bool) (*http.Response, bool, error) {
		stop()
		// A timeout is no stale connection: the upstream has the request
		// and is slow to answer it.
		retry = retry && !isTimeout(err)
		if cause := ctxCause(ctx, err); cause != nil {
			err = fmt.Errorf("%w (%v)", cause, err)
			retry = false
		}
		return nil, retry, err
	}

	// A write to a connection the upstream had closed fails; part of the
	// request may have gone out all the same, so only an idempotent one
	// is sent again.
	werr, rerr := pc.write(ctx, req, deadline, hasDeadline)
	if werr != nil {
		return fail(fmt.Errorf("writing request: %w", werr), Idempotent(req.Method))
	}
	if rerr != nil {
		return fail(fmt.Errorf("reading response: %w", rerr), Idempotent(req.Method))
	}
	pc.head.Method = req.Method
	if pc.br == nil {
		pc.br = readers.Get().(*bufio.Reader)
		pc.br.Reset(countingReader{pc})
	}
	x := new(exch)
	before := pc.nread + int64(pc.br.Buffered())
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return fail(errors.New("reading response: too many 1xx answers"), false)
		}
		resp, err = readResponse(&pc.br, countingReader{pc}, &pc.head, x, orNoLimit(pc.pool.cfg.MaxResponseHeaderBytes))
		if err != nil {
			// Closed or reset before a byte of the answer: a pooled
			// connection that the upstream had let go of. Only an
			// idempotent request is sent again: the upstream may have
			// acted on it all the same.
			silent := pc.nread == before && pc.br.Buffered() == 0
			return fail(fmt.Errorf("reading response: %w", err), silent && Idempotent(req.Method))
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(ErrUpgrade, false)
		}
		if resp.StatusCode >= 200 {
			break
		}
		// 1xx interim answers (100 Continue, 103 Early Hints) are not
		// passed on.
	}
	// The head's deadline is lifted for the body, unless the body is
	// already buffered whole (the common case): reading it then waits on
	// nothing, and the pool lifts the deadline when the connection is put
	// back, one deadline change instead of two.
	if req.HeaderTimeout > 0 && !bodyBuffered(resp, x, pc.br) {
		if hasDeadline {
			pc.setReadDeadline(ctx, deadline)
		} else {
			pc.setReadDeadline(ctx, time.Time{})
		}
	}
	keep := !resp.Close
	resp.Request = nil
	b := &x.body
	*b = body{rc: resp.Body, pc: pc, ctx: ctx, stop: stop, keep: keep}
	if resp.Body == http.NoBody {
		b.eof = true
	}
	resp.Body = b
	return resp, false, nil
}

// bodyBuffered reports whether resp's body needs no more reading from the
// network: it has none, or it is framed by Content-Length and in br.
func bodyBuffered(resp *http.Response, x *exch, br *bufio.Reader) bool {
	if resp.Body == http.NoBody {
		return true
	}
	return resp.Body == &x.cl && x.cl.remain <= int64(br.Buffered())
}

// setDeadline sets the read and write deadline, or lifts them (t zero),
// skipping the change when none is set.
func (pc *conn) setDeadline(t time.Time) {
	if t.IsZero() && !pc.deadlines {
		return
	}
	pc.nc.SetDeadline(t)
	pc.deadlines = !t.IsZero()
}

// afterFunc is context.AfterFunc, through the context's own AfterFunc
// method where it has one (miffy's server's request contexts): that saves
// the child context context.AfterFunc makes to call it.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// setReadDeadline moves the read deadline without undoing a cancellation:
// ctx's AfterFunc may have moved it to aLongTimeAgo just before.
func (pc *conn) setReadDeadline(ctx context.Context, t time.Time) {
	pc.nc.SetReadDeadline(t)
	if !t.IsZero() {
		pc.deadlines = true
	}
	if ctx.Err() != nil {
		pc.nc.SetDeadline(aLongTimeAgo)
	}
}

// ctxCause returns why ctx ended, if err came of that. The connection's
// deadline is ctx's, on another timer: a read can time out a moment before
// ctx says it is done.
func ctxCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if d, ok := ctx.Deadline(); ok && isTimeout(err) && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Idempotent reports whether a request with method m may be sent again
// (RFC 9110 section 9.2.2).
func Idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// skipHeader are the fields of Request.Header not written: hop-by-hop
// fields (RFC 9110 section 7.6.1), Host, and the framing of the body,
// which the client writes itself.
func skipHeader(name string) bool {
	switch name {
	case "Host", "Content-Length", "Expect":
		return true
	}
	return httpsyntax.IsHopHeader(name)
}

// reqBufs lends the buffers requests are written from: a connection needs
// one only while it writes, and a replay waiting on a slow upstream would
// otherwise hold one for as long as it waits.
var reqBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readers lends the read buffers of connections that wait without one
// (sendAwait): a connection holds one from the moment its upstream answers
// until it is idle again.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

const readBufSize = 4 << 10

// defaultInlineMax is the largest request written in one piece, body and
// all, and so the largest that sendAwait can send; a larger body is
// written after its head, from where it is, and its answer read as usual.
const defaultInlineMax = 16 << 10

// inlineMax is defaultInlineMax, or what a test's hooks set.
func (pc *conn) inlineMax() int {
	if h := pc.pool.cfg.hooks; h != nil {
		return h.inlineMax
	}
	return defaultInlineMax
}

// lentWriteBuf tells a test's hook of a write buffer lent or given back.
func (pc *conn) lentWriteBuf(delta int) {
	if h := pc.pool.cfg.hooks; h != nil && h.writeBuf != nil {
		h.writeBuf(delta)
	}
}

// write sends req, and on plain TCP also waits for the answer to begin
// (sendAwait); rerr is a failed wait. The head's deadline starts as the
// wait for the answer does: before the write that waits, after any other.
// The write buffer goes back to reqBufs as soon as the request is out,
// before the wait (returnWriteBuf).
func (pc *conn) write(ctx context.Context, req *Request, deadline time.Time, hasDeadline bool) (werr, rerr error) {
	pc.wbuf = reqBufs.Get().(*[]byte)
	pc.lentWriteBuf(1)
	b := appendHead((*pc.wbuf)[:0], req)
	inline := len(b)+len(req.Body) <= pc.inlineMax()
	if inline {
		b = append(b, req.Body...)
	}
	pc.wb = b
	defer pc.returnWriteBuf()
	if inline && pc.send != nil {
		pc.headerDeadline(ctx, req, deadline, hasDeadline)
		n, werr, rerr := pc.send(b)
		if werr != nil || rerr != nil || n == len(b) {
			return werr, rerr
		}
		// The socket took part of it: the rest waits for room.
		_, werr = pc.nc.Write(b[n:])
		return werr, nil
	}
	if inline {
		_, werr = pc.nc.Write(b)
	} else {
		bufs := net.Buffers{b, req.Body}
		_, werr = bufs.WriteTo(pc.nc)
	}
	if werr == nil {
		pc.headerDeadline(ctx, req, deadline, hasDeadline)
	}
	return werr, nil
}

// returnWriteBuf gives the write buffer back to reqBufs, once; one that
// grew past what most requests need is left to the collector.
func (pc *conn) returnWriteBuf() {
	if pc.wbuf == nil {
		return
	}
	if cap(pc.wb) <= defaultInlineMax+4<<10 {
		*pc.wbuf = pc.wb[:0]
		reqBufs.Put(pc.wbuf)
	}
	pc.wbuf, pc.wb = nil, nil
	pc.lentWriteBuf(-1)
}

// headerDeadline bounds the wait for the answer's head by
// req.HeaderTimeout, where that ends before the exchange's deadline.
func (pc *conn) headerDeadline(ctx context.Context, req *Request, deadline time.Time, hasDeadline bool) {
	if req.HeaderTimeout > 0 {
		d := time.Now().Add(req.HeaderTimeout)
		if !hasDeadline || d.Before(deadline) {
			pc.setReadDeadline(ctx, d)
		}
	}
}

// appendHead appends req's request line and header to b.
func appendHead(b []byte, req *Request) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	if req.Target == "" {
		b = append(b, '/')
	} else {
		b = append(b, req.Target...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if req.Host != "" {
		b = append(b, req.Host...)
	} else {
		b = append(b, req.Addr...)
	}
	b = append(b, "\r\n"...)
	// Fields in the order of their names (as net/http writes a header), so
	// that the same request is the same bytes whichever map it came in.
	var stack [32]string
	names := stack[:0]
	for name := range req.Header {
		if !skipHeader(name) && !replaced(name, req.Fields) {
			names = append(names, name)
		}
	}
	for _, f := range req.Fields {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		if values, ok := req.Header[name]; ok && !replaced(name, req.Fields) {
			for _, v := range values {
				b = appendField(b, name, v)
			}
			continue
		}
		for _, f := range req.Fields {
			if f.Name == name {
				b = appendField(b, f.Name, f.Value)
			}
		}
	}
	if len(req.Body) > 0 || bodyExpected(req.Method) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

func replaced(name string, fields []Field) bool {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// appendField appends one header line; line breaks in a value (which a
// parsed request cannot hold, but a caller's field might) become spaces.
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	if httpsyntax.HasLineBreak(value) {
		value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
	}
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func bodyExpected(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// body is a response body; read to its end and closed, it gives its
// connection back to the pool.
type body struct {
	rc   io.ReadCloser
	pc   *conn
	ctx  context.Context
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		if cause := ctxCause(b.ctx, err); cause != nil {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
	}
	return n, err
}

// Close ends the exchange. A body not read to its end closes the
// connection: draining it could take as long as the upstream likes.
func (b *body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	stopped := b.stop()
	if b.eof && b.keep && stopped {
		b.rc.Close()
		b.pc.pool.put(b.pc)
		return nil
	}
	b.pc.close()
	return nil
}
