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
	rpLog  *stdlog.Logger // the upgrade proxy's (logWriter)
	tr     *transports    // every side's clients and Transports
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
	p.rpLog = stdlog.New(logWriter{log}, "", 0)
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

// call is one client request on its way through the proxy. ServeHTTP
// builds it once (begin) and hands it on; each stage writes its own part:
// begin the route and the side, decide the canary decision, prepare the
// replay (x), forward the attempt and the answer (status, err).
type call struct {
	r      *http.Request // as admitted; never written to
	start  time.Time
	target *url.URL
	role   string
	route  *Route
	params route.Params
	path   string           // escaped path sent upstream (trim_prefix applied)
	dec    *canary.Decision // nil unless the route is a canary route
	reqID  string           // correlation id (the client's or made here), with Config.CanaryEvents
	body   reqBody

	x   *exchange  // nil when not shadowed
	tee *streamTee // a shadowed body that flows (gRPC)

	attempt time.Time // start of the current upstream attempt
	retried bool      // the candidate failed and the reference was tried
	status  int
	err     error

	req    upstream.Request  // what is sent upstream
	fields [6]upstream.Field // role, X-Request-Id, Via, X-Forwarded-For, -Host, -Proto
}

// ServeHTTP answers the client from the reference and, on routes under
// test, starts a replay that does not hold up the answer.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{start: time.Now()}
	if err := p.begin(w, r, c); err != nil {
		p.refuse(w, c, err)
		return
	}
	func() {
		// The handler is aborted with a panic when the reference fails
		// mid-body; the replay must hear of it all the same.
		defer p.referenceDone(c)
		for {
			err := p.forward(w, c)
			if err == nil {
				return
			}
			if !p.fallBack(c, err) {
				p.fail(w, c, err)
				return
			}
		}
	}()
	p.accessLog(c)
	if c.status == statusClientGone {
		// Nothing was written: net/http must not send its implicit 200,
		// an answer the reference never gave. The connection is closed.
		panic(http.ErrAbortHandler)
	}
}

// begin admits r and builds its call: the route, the side that serves it,
// the replay. An error is the client's answer instead (a refusal).
func (p *Proxy) begin(w http.ResponseWriter, r *http.Request, c *call) error {
	r, err := p.admit(r)
	c.r = r
	if err != nil {
		return err
	}
	if c.body, err = newReqBody(w, r, p.cfg.MaxRequestBodyBytes); err != nil {
		return bodyError(err)
	}
	t := p.table.Load()
	c.target, c.role = t.upstream, "upstream"
	rt, params, _, ok := t.routes.Match(r.Method, r.URL.EscapedPath())
	if !ok {
		p.m.unrouted.Inc()
		return p.debugFill(c)
	}
	c.route, c.params, c.target, c.role = rt, params, rt.Reference, "reference"
	c.path = rt.forwardPath(r.URL.EscapedPath())
	rt.m.requests.Inc()
	if rt.Canary != nil {
		if err := p.decide(c); err != nil {
			return err
		}
	}
	if rt.Canary == nil || rt.Shadow && c.role == "reference" {
		if err := p.prepare(c); err != nil {
			return err
		}
	}
	return p.debugFill(c)
}

// debugFill reads the body into memory for the debug line
// ([proxy] debug_bodies), up to MaxBodyBytes.
func (p *Proxy) debugFill(c *call) error {
	if !p.cfg.DebugBodies {
		return nil
	}
	if _, err := c.body.fill(p.cfg.MaxBodyBytes); err != nil {
		return bodyError(err)
	}
	return nil
}

// refusal is an answer miffy gives the client itself, without asking an
// upstream: a request it does not forward, or whose body it could not read.
type refusal struct {
	status int
	msg    string
	close  bool // the framing is in doubt: close the connection
}

func (e refusal) Error() string { return e.msg }

// refuse answers the client with err, a refusal.
func (p *Proxy) refuse(w http.ResponseWriter, c *call, err error) {
	var rf refusal
	if !errors.As(err, &rf) {
		rf = refusal{status: http.StatusBadRequest, msg: "miffy: bad request"}
	}
	if rf.close {
		w.Header().Set("Connection", "close")
	}
	p.setServedBy(w.Header(), c)
	http.Error(w, rf.msg, rf.status)
	c.status = rf.status
	if c.target != nil {
		p.accessLog(c)
	}
}

// statusClientGone is the status logged for a client that went away before
// its answer: nginx's 499. No client ever receives it.
const statusClientGone = 499

// decide picks the side of a canary route that serves the request. For
// the candidate, an idempotent request's body is kept (up to
// MaxBodyBytes) so that it can be retried on the reference.
func (p *Proxy) decide(c *call) error {
	p.correlate(c)
	rt := c.route
	var readErr error
	body := func() []byte { // read only if the decision service is asked
		_, readErr = c.body.fill(rt.Canary.BodyLimit())
		return c.body.buf
	}
	d := rt.Canary.Decide(p.decisionView(c), c.params, c.path, body)
	if readErr != nil {
		return bodyError(readErr)
	}
	c.dec = &d
	if d.Side != canary.Candidate {
		return nil
	}
	c.target, c.role = rt.Candidate, "candidate"
	if upstream.Idempotent(c.r.Method) && c.r.ContentLength <= p.cfg.MaxBodyBytes {
		if _, err := c.body.fill(p.cfg.MaxBodyBytes); err != nil {
			return bodyError(err)
		}
	}
	return nil
}

// decisionView is the request as the decision service sees it: the
// client's, with the correlation id miffy made for it (a copy of the
// request then, the client's own is not written to).
func (p *Proxy) decisionView(c *call) *http.Request {
	if c.reqID == "" || c.route.Canary.BodyLimit() == 0 || c.r.Header.Get(requestIDHeader) != "" {
		return c.r
	}
	view := c.r.WithContext(c.r.Context())
	view.Header = c.r.Header.Clone()
	view.Header.Set(requestIDHeader, c.reqID)
	return view
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

// ErrBadStatus is an upstream status outside 100..599.
var ErrBadStatus = errors.New("upstream status out of range")

func checkStatus(code int) error {
	if code < 100 || code > 599 {
		return fmt.Errorf("%w: %d", ErrBadStatus, code)
	}
	return nil
}

// statusOf is the status for an exchange with the upstream that failed
// with err (Caddy's statusError): 413 for a client body over the limit,
// 499 (logged; nothing is sent) for a client that went away, 504 for an
// upstream too slow, else 502: it could not be reached, or answered
// something that is not HTTP.
func statusOf(r *http.Request, err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case r.Context().Err() != nil:
		return statusClientGone
	case isTimeout(err):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// fail answers the client for an upstream that could not.
func (p *Proxy) fail(w http.ResponseWriter, c *call, err error) {
	c.err, c.status = err, statusOf(c.r, err)
	p.setServedBy(w.Header(), c)
	switch c.status {
	case statusClientGone:
		return
	case http.StatusRequestEntityTooLarge:
		http.Error(w, "miffy: request body too large", c.status)
		return
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

// fallBack readies a canary request for a retry on the reference when the
// candidate could not be reached or did not answer in time: nothing has
// been sent to the client yet, the method is idempotent and the body is in
// memory. The candidate's failure counts against its breaker. It reports
// whether the request is to be sent again.
func (p *Proxy) fallBack(c *call, err error) bool {
	// c.status set: an answer's head came (a 101 the tunnel then lost):
	// not "before answering", and the client's connection may be taken.
	if c.role != "candidate" || c.retried || c.status != 0 || !upstream.Idempotent(c.r.Method) || !c.body.whole {
		return false
	}
	if s := statusOf(c.r, err); s != http.StatusBadGateway && s != http.StatusGatewayTimeout {
		return false
	}
	rt := c.route
	rt.Canary.Report(*c.dec, canary.Outcome{Side: canary.Candidate, Err: err, Duration: time.Since(c.attempt)})
	rt.Canary.Fallback()
	rt.m.upstreamError(p.m, "candidate", publish.ErrorKind(err))
	p.log.Warn().Err(err).Str("route", rt.Name).Str("target", c.target.Host).Msg("candidate failed; retrying on the reference")
	c.retried, c.err, c.status = true, nil, 0
	c.target, c.role = rt.Reference, "reference"
	return true
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *Proxy) accessLog(c *call) {
	if !p.cfg.AccessLog {
		return
	}
	ev := p.log.Info().Str("method", c.r.Method).Str("uri", p.redactURI(c.r.RequestURI)).Int("status", c.status).
		Dur("duration", time.Since(c.start)).Str("role", c.role)
	if c.route != nil {
		ev = ev.Str("route", c.route.Name)
	}
	if c.x != nil {
		ev = ev.Str("id", c.x.id)
	}
	ev.Msg("request")
}

// logWriter sends the upgrade proxy's own log lines to zerolog.
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
