// Package shadow is miffy's proxy: every request is answered by the
// reference; requests on routes under test are replayed in the background to
// the candidate (and a secondary reference), the answers compared and the
// differences handed to a Publisher.
package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/route"
	"github.com/miffy-proxy/miffy/internal/server"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// Publisher takes each compared request: publish.Outlet builds its record
// and applies the route's publish mode. It must not block; it reports
// false when it dropped the record.
type Publisher interface {
	Publish(c *publish.Comparison) bool
}

var _ Publisher = (*publish.Outlet)(nil)

// Config tunes the proxy. The config layer (internal/config) hands it
// complete values, every default resolved from config.default.toml; a zero
// here means what the field's comment says, nothing is filled in.
type Config struct {
	// ForwardedHeaders adds X-Forwarded-For, -Proto and -Host upstream.
	ForwardedHeaders bool
	// DialTimeout, MaxIdleConnsPerHost, UpstreamIdleTimeout and
	// MaxResponseHeaderBytes are each upstream's (upstream.Config and
	// upstream.TransportConfig, whose comments say what zero means): the
	// time to connect, the keep-alive pool per host, how long an idle
	// connection is kept, and the largest response head (a longer one
	// fails the exchange: 502).
	DialTimeout            time.Duration
	MaxIdleConnsPerHost    int
	UpstreamIdleTimeout    time.Duration
	MaxResponseHeaderBytes int
	// ReferenceTimeout bounds the wait for the reference's response
	// headers; past it the client gets 504. If zero, no limit.
	ReferenceTimeout time.Duration
	// Sides says how each side's upstreams are reached (protocol, TLS),
	// by role: "reference" (also for unrouted requests), "candidate",
	// "secondary". A side left out: auto, the system's roots.
	Sides map[string]Side
	// MaxRequestBodyBytes rejects larger request bodies with 413. If zero,
	// no limit.
	MaxRequestBodyBytes int64
	// MaxBodyBytes is the largest request body that is replayed (and kept
	// for a canary retry, or a debug line); larger requests are proxied
	// but not shadowed. If zero, only requests without a body are.
	MaxBodyBytes int64
	// MaxResponseBytes caps what is kept of each response for comparison;
	// a longer answer is compared by its first bytes, marked truncated.
	MaxResponseBytes int64
	// Timeout bounds one replay to the candidate and secondary. It must be
	// positive: at zero every replay times out at once.
	Timeout time.Duration
	// MaxInFlight and MaxInFlightBytes bound the replays in flight by count
	// and by the bytes they hold. At zero nothing is replayed.
	MaxInFlight      int
	MaxInFlightBytes int64
	// AccessLog logs one info line per client request.
	AccessLog bool
	// Tally, if set, counts every request under test (see Tally).
	Tally Tally
	// ServedByHeader names the side that served a canary route's request on
	// the response (reference or candidate). If empty, it is not named.
	ServedByHeader string
	// DebugRequests logs every request forwarded upstream at debug level
	// (method, URL, role, Host); DebugBodies adds the request body (up to
	// MaxBodyBytes; such bodies are then read into memory first, on
	// unrouted requests too) and the answers of compared requests.
	DebugRequests bool
	DebugBodies   bool
	// AllowUpgrades are the Upgrade tokens passed on (case-insensitive);
	// the Upgrade header of any other request is dropped.
	AllowUpgrades []string
	// RedactURI hides secrets (query parameters) of request URIs and
	// upstream URLs in the access log and debug lines. If nil, they are
	// logged as they are.
	RedactURI func(string) string
	// RedactBody hides secrets of a body (by its content type) in debug
	// lines. If nil, bodies are logged as they are.
	RedactBody func(body []byte, contentType string) []byte
	// CanaryEvents, if set, gets one event per request on a canary route
	// once its answer is complete, and such requests carry a correlation
	// id upstream (X-Request-Id, the client's or a new one). It must not
	// block.
	CanaryEvents func(canary.Event)
	// CompareWorkers is how many comparisons run at once. If zero,
	// GOMAXPROCS. CompareQueue is how many more may wait; past it a replay
	// is dropped (reason compare_backlog). If zero, 64 per worker.
	CompareWorkers int
	CompareQueue   int
}

// Proxy is the client-facing handler. Make it with New.
type Proxy struct {
	cfg    Config
	log    zerolog.Logger
	pub    Publisher
	judge  *compare.Judge
	table  atomic.Pointer[Table]
	rp     *httputil.ReverseProxy
	tr     *transports // every side's clients and Transports
	budget *budget
	pool   *comparePool
	bufs   *bufPool
	m      *metrics
	ids    idGen

	// Replays live as long as the proxy, not as long as the client request.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	drops  rateLog
	fails  rateLog // upstream failures
}

// New returns a proxy serving the given table. pub receives the records to
// publish; judge classes differences as regressions or noise.
func New(cfg Config, table *Table, judge *compare.Judge, pub Publisher, log zerolog.Logger, reg prometheus.Registerer) *Proxy {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:    cfg,
		log:    log,
		pub:    pub,
		judge:  judge,
		budget: newBudget(int64(cfg.MaxInFlight), cfg.MaxInFlightBytes),
		bufs:   newBufPool(),
		ctx:    ctx,
		cancel: cancel,
		ids:    newIDGen(),
		drops:  rateLog{every: 10 * time.Second},
		fails:  rateLog{every: 10 * time.Second},
	}
	p.m = newMetrics(reg, p.budget)
	p.m.tally = cfg.Tally
	p.pool = newComparePool(ctx, cfg.CompareWorkers, cfg.CompareQueue)
	p.tr = newTransports(cfg)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.tr,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       stdlog.New(logWriter{log}, "", 0),
		// Streams (no Content-Length, or server-sent events) are flushed
		// write by write all the same (ReverseProxy's own rule); others at
		// their end, so an answer with no body at all leaves as one frame:
		// gRPC's trailers-only answers (an error status) must.
		FlushInterval: 0,
		BufferPool:    rpPool{p.bufs},
	}
	p.SetTable(table)
	return p
}

// SetTable swaps the routing table. Requests in flight finish on the table
// they started with.
func (p *Proxy) SetTable(t *Table) {
	for _, r := range t.list {
		r.m = p.m.forRoute(r.Name)
	}
	p.table.Store(t)
}

// Table returns the routing table in use.
func (p *Proxy) Table() *Table { return p.table.Load() }

// call is what one client request carries through the reverse proxy.
type call struct {
	target  *url.URL
	role    string
	route   *Route
	path    string           // escaped path sent upstream (trim_prefix applied)
	dec     *canary.Decision // nil unless the route is a canary route
	start   time.Time        // of the current upstream attempt
	retried bool             // the candidate failed and the reference was tried
	reqID   string           // correlation id, with Config.CanaryEvents
	x       *exchange        // nil when not shadowed
	// refHandedOver: x.ref is the replay's now (handOverRef).
	refHandedOver bool
	tee           *streamTee // a shadowed body that flows (gRPC)
	body          []byte     // the request body, when read into memory
	status        int
	err           error

	req    upstream.Request // what forwardFast sends
	fields [6]upstream.Field
}

type callKey struct{}

// ServeHTTP answers the client from the reference and, on routes under
// test, starts a replay that does not hold up the answer.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r, status, msg := p.admit(r)
	if status != 0 {
		if status == http.StatusBadRequest {
			w.Header().Set("Connection", "close")
		}
		http.Error(w, msg, status)
		return
	}
	if max := p.cfg.MaxRequestBodyBytes; max > 0 {
		if r.ContentLength > max {
			http.Error(w, "miffy: request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}

	t := p.table.Load()
	c := &call{target: t.upstream, role: "upstream", start: start}
	rt, params, _, ok := t.routes.Match(r.Method, r.URL.EscapedPath())
	if ok {
		c.route, c.target, c.role = rt, rt.Reference, "reference"
		c.path = rt.forwardPath(r.URL.EscapedPath())
		rt.m.requests.Inc()
		status := 0
		if rt.Canary != nil {
			status = p.decide(c, r, params)
		}
		if status == 0 && (rt.Canary == nil || rt.Shadow && c.role == "reference") {
			status = p.prepare(c, r, params, start)
		}
		if status == 0 && p.cfg.DebugBodies {
			if _, err := canary.BufferBody(r, p.cfg.MaxBodyBytes); err != nil {
				status = bodyStatus(err)
			}
		}
		if status != 0 {
			msg := "miffy: bad request body"
			if status == http.StatusRequestEntityTooLarge {
				msg = "miffy: request body too large"
			}
			p.setServedBy(w.Header(), c)
			http.Error(w, msg, status)
			c.status = status
			p.accessLog(r, c, start)
			return
		}
	} else {
		p.m.unrouted.Inc()
		if p.cfg.DebugBodies {
			if _, err := canary.BufferBody(r, p.cfg.MaxBodyBytes); err != nil {
				status := bodyStatus(err)
				http.Error(w, http.StatusText(status), status)
				c.status = status
				p.accessLog(r, c, start)
				return
			}
		}
	}

	func() {
		// The handler is aborted with a panic when the reference fails
		// mid-body; the replay must hear of it all the same.
		defer p.referenceDone(c, start)
		p.forward(w, r, c)
	}()
	p.accessLog(r, c, start)
	if c.status == statusClientGone {
		// Nothing was written: net/http must not send its implicit 200,
		// an answer the reference never gave. The connection is closed.
		panic(http.ErrAbortHandler)
	}
}

// statusClientGone is the status logged for a client that went away before
// its answer: nginx's 499. No client ever receives it.
const statusClientGone = 499

// decide picks the side of a canary route that serves the request. For
// the candidate, an idempotent request's body is kept (up to
// MaxBodyBytes) so that it can be retried on the reference. A non-zero
// return is the status the client gets instead.
func (p *Proxy) decide(c *call, r *http.Request, params route.Params) int {
	p.correlate(c, r)
	d := c.route.Canary.Decide(r, params, c.path)
	c.dec = &d
	if d.Side != canary.Candidate {
		return 0
	}
	c.target, c.role = c.route.Candidate, "candidate"
	if upstream.Idempotent(r.Method) && r.ContentLength <= p.cfg.MaxBodyBytes {
		if _, err := canary.BufferBody(r, p.cfg.MaxBodyBytes); err != nil {
			return bodyStatus(err)
		}
	}
	return 0
}

// bodyStatus is the client's status when its body could not be read.
func bodyStatus(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// replayable reports whether r's body can be sent again.
func replayable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
}

// setServedBy names the serving side of a canary route on the response,
// and sets the sticky cookie.
func (p *Proxy) setServedBy(h http.Header, c *call) {
	if c.dec == nil {
		return
	}
	if p.cfg.ServedByHeader != "" {
		h.Set(p.cfg.ServedByHeader, c.role)
	}
	if c.dec.Cookie != nil {
		h.Add("Set-Cookie", c.dec.Cookie.String())
	}
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	if c.path != "" && c.path != pr.In.URL.EscapedPath() {
		pr.Out.URL.RawPath = c.path
		pr.Out.URL.Path = unescapePath(c.path)
	}
	pr.SetURL(c.target)
	if c.route != nil {
		if h := c.route.hostHeader(c.role); h != "" {
			pr.Out.Host = h
		}
	}
	for _, f := range p.forwardFields(c.fields[:0], pr.In) {
		pr.Out.Header.Set(f.Name, f.Value)
	}
	pr.Out.Header.Set(RoleHeader, c.role)
	if p.cfg.DebugRequests || p.cfg.DebugBodies {
		p.debugRequest(c.role, pr.Out.Method, pr.Out.URL.String(), pr.Out.Host, pr.In)
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	if err := checkStatus(resp.StatusCode); err != nil {
		return err
	}
	if resp.Body == http.NoBody && resp.ContentLength < 0 {
		// Ended with its head (HTTP/2 END_STREAM): not a stream to flush
		// as it goes (see FlushInterval).
		resp.ContentLength = 0
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The request passed every check; what follows on the client's
		// connection is the upgraded protocol's, not HTTP/1 requests.
		server.Tunnel(resp.Request.Context())
	}
	p.onResponse(resp, resp.Request.Context().Value(callKey{}).(*call))
	return nil
}

// ErrBadStatus is an upstream status outside 100..599.
var ErrBadStatus = errors.New("upstream status out of range")

func checkStatus(code int) error {
	if code < 100 || code > 599 {
		return fmt.Errorf("%w: %d", ErrBadStatus, code)
	}
	return nil
}

// onResponse notes the serving side's answer and, when shadowed, starts
// capturing its body as the client is sent it.
func (p *Proxy) onResponse(resp *http.Response, c *call) {
	c.status = resp.StatusCode
	p.setServedBy(resp.Header, c)
	if x := c.x; x != nil {
		x.ref.status = resp.StatusCode
		x.ref.header = resp.Header.Clone()
		x.ref.cap = capture{b: p.budget, limit: p.cfg.MaxResponseBytes}
		if resp.Body != http.NoBody {
			x.ref.cap.expect(resp.ContentLength)
		}
		resp.Body = &teeBody{rc: resp.Body, resp: resp, s: &x.ref}
	}
}

// errorHandler answers when the reference could not: 502 when it cannot be
// reached, 504 when it is too slow, 413 when the client's body is too big.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	p.fail(w, r, r.Context().Value(callKey{}).(*call), err)
}

// fail answers the client for an upstream that could not.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	c.err = err
	var tooBig *http.MaxBytesError
	if p.fallBack(w, r, c, err) {
		return
	}
	p.setServedBy(w.Header(), c)
	switch {
	case errors.As(err, &tooBig):
		c.status = http.StatusRequestEntityTooLarge
		http.Error(w, "miffy: request body too large", c.status)
		return
	case r.Context().Err() != nil:
		c.status = statusClientGone
		return
	case isTimeout(err):
		c.status = http.StatusGatewayTimeout
	default:
		c.status = http.StatusBadGateway
	}
	route := "unrouted"
	if c.route != nil {
		route = c.route.Name
	}
	p.m.upstreamErrors.WithLabelValues(route, c.role, publish.ErrorKind(err)).Inc()
	if n, ok := p.fails.allow(); ok {
		p.log.Warn().Err(err).Str("route", route).Str("target", c.target.Host).Int("status", c.status).
			Int64("count", n).Msg(c.role + " failed (one line per 10s at most; count: failures since the last)")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(c.status)
	if c.status == http.StatusGatewayTimeout {
		io.WriteString(w, "miffy: the upstream did not answer in time\n")
	} else {
		io.WriteString(w, "miffy: the upstream could not be reached\n")
	}
}

// fallBack retries a canary request on the reference when the candidate
// could not be reached or did not answer in time: nothing has been sent to
// the client yet, the method is idempotent and the body can be sent again.
// The candidate's failure counts against its breaker. It reports whether
// it took over the answer.
func (p *Proxy) fallBack(w http.ResponseWriter, r *http.Request, c *call, err error) bool {
	var tooBig *http.MaxBytesError
	if c.role != "candidate" || c.retried || r.Context().Err() != nil || errors.As(err, &tooBig) ||
		!upstream.Idempotent(r.Method) || !replayable(r) {
		return false
	}
	rt := c.route
	rt.Canary.Report(*c.dec, canary.Outcome{Side: canary.Candidate, Err: err, Duration: time.Since(c.start)})
	rt.Canary.Fallback()
	rt.m.upstreamError(p.m, "candidate", publish.ErrorKind(err))
	p.log.Warn().Err(err).Str("route", rt.Name).Str("target", c.target.Host).Msg("candidate failed; retrying on the reference")
	if r.GetBody != nil {
		body, gerr := r.GetBody()
		if gerr != nil {
			return false
		}
		r.Body = body
	}
	c.retried, c.err, c.status = true, nil, 0
	c.target, c.role, c.start = rt.Reference, "reference", time.Now()
	p.forward(w, r, c)
	return true
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *Proxy) accessLog(r *http.Request, c *call, start time.Time) {
	if !p.cfg.AccessLog {
		return
	}
	ev := p.log.Info().Str("method", r.Method).Str("uri", p.redactURI(r.RequestURI)).Int("status", c.status).
		Dur("duration", time.Since(start)).Str("role", c.role)
	if c.route != nil {
		ev = ev.Str("route", c.route.Name)
	}
	if c.x != nil {
		ev = ev.Str("id", c.x.id)
	}
	ev.Msg("request")
}

// teeBody hands what the client is sent to the side's capture as well,
// and its trailers once the body has ended.
type teeBody struct {
	rc   io.ReadCloser
	resp *http.Response
	s    *side
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 {
		t.s.cap.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		t.s.trailer = t.resp.Trailer
	case err != nil:
		t.s.err = err
	}
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

// logWriter sends the reverse proxy's own log lines to zerolog.
type logWriter struct{ log zerolog.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Debug().Str("component", "reverseproxy").Msg(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
