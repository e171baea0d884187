// Package shadow is miffy's proxy: every request is answered by the
// reference; requests on routes under test are replayed in the background to
// the candidate (and a secondary reference), the answers compared and the
// differences handed to a Publisher.
package shadow

import (
	"context"
	"errors"
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

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// Publisher takes the record of one compared request. It must not block;
// it reports false when it dropped the record.
type Publisher interface {
	Publish(r *publish.Record) bool
}

// Config tunes the proxy. Zero values take the defaults stated per field.
type Config struct {
	// ForwardedHeaders adds X-Forwarded-For, -Proto and -Host upstream.
	ForwardedHeaders bool
	// DialTimeout bounds connecting to an upstream. If zero, 5s.
	DialTimeout time.Duration
	// ReferenceTimeout bounds the wait for the reference's response
	// headers; past it the client gets 504. If zero, no limit.
	ReferenceTimeout time.Duration
	// MaxIdleConnsPerHost is the keep-alive pool per upstream. If zero, 512.
	MaxIdleConnsPerHost int
	// UpstreamIdleTimeout closes idle upstream connections. If zero, 90s.
	UpstreamIdleTimeout time.Duration
	// MaxRequestBodyBytes rejects larger request bodies with 413. If zero,
	// no limit.
	MaxRequestBodyBytes int64
	// MaxBodyBytes is the largest request body that is replayed; larger
	// requests are proxied but not shadowed. If zero, 1 MiB.
	MaxBodyBytes int64
	// MaxResponseBytes caps what is kept of each response for comparison.
	// If zero, 4 MiB.
	MaxResponseBytes int64
	// Timeout bounds one replay to the candidate and secondary. If zero, 5s.
	Timeout time.Duration
	// MaxInFlight and MaxInFlightBytes bound the replays in flight by count
	// and by the bytes they hold. If zero, 10000 and 256 MiB.
	MaxInFlight      int
	MaxInFlightBytes int64
	// AccessLog logs one info line per client request.
	AccessLog bool
	// Console, if set, sees every compared request (equal or not).
	Console Publisher
}

func (c *Config) setDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = 512
	}
	if c.UpstreamIdleTimeout == 0 {
		c.UpstreamIdleTimeout = 90 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 4 << 20
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 10000
	}
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = 256 << 20
	}
}

// Proxy is the client-facing handler. Make it with New.
type Proxy struct {
	cfg    Config
	log    zerolog.Logger
	pub    Publisher
	judge  *compare.Judge
	table  atomic.Pointer[Table]
	rp     *httputil.ReverseProxy
	refTr  *http.Transport
	shTr   *http.Transport
	budget *budget
	m      *metrics
	ids    idGen

	// Replays live as long as the proxy, not as long as the client request.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	drops  rateLog
}

// New returns a proxy serving the given table. pub receives the records to
// publish; judge classes differences as regressions or noise.
func New(cfg Config, table *Table, judge *compare.Judge, pub Publisher, log zerolog.Logger, reg prometheus.Registerer) *Proxy {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:    cfg,
		log:    log,
		pub:    pub,
		judge:  judge,
		budget: newBudget(int64(cfg.MaxInFlight), cfg.MaxInFlightBytes),
		ctx:    ctx,
		cancel: cancel,
		ids:    newIDGen(),
		drops:  rateLog{every: 10 * time.Second},
	}
	p.m = newMetrics(reg, p.budget)
	p.refTr = newTransport(cfg, cfg.ReferenceTimeout)
	p.shTr = newTransport(cfg, 0)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.refTr,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       stdlog.New(logWriter{log}, "", 0),
		FlushInterval:  -1,
	}
	p.SetTable(table)
	return p
}

func newTransport(cfg Config, headerTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // upstreams are reached directly, whatever HTTP_PROXY says
		DialContext:           d.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.UpstreamIdleTimeout,
		ResponseHeaderTimeout: headerTimeout,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as the upstream sent them; the comparison
		// decodes them itself.
		DisableCompression: true,
	}
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
	target *url.URL
	role   string
	route  *Route
	x      *exchange // nil when not shadowed
	status int
	err    error
}

type callKey struct{}

// ServeHTTP answers the client from the reference and, on routes under
// test, starts a replay that does not hold up the answer.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method == http.MethodConnect {
		http.Error(w, "miffy: CONNECT is not supported", http.StatusMethodNotAllowed)
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
	c := &call{target: t.upstream, role: "upstream"}
	rt, params, _, ok := t.routes.Match(r.Method, r.URL.EscapedPath())
	if ok {
		c.route, c.target, c.role = rt, rt.Reference, "reference"
		rt.m.requests.Inc()
		if status := p.prepare(c, r, params, start); status != 0 {
			msg := "miffy: bad request body"
			if status == http.StatusRequestEntityTooLarge {
				msg = "miffy: request body too large"
			}
			http.Error(w, msg, status)
			c.status = status
			p.accessLog(r, c, start)
			return
		}
	} else {
		p.m.unrouted.Inc()
	}

	r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
	func() {
		// The reverse proxy aborts the handler with a panic when the
		// reference fails mid-body; the replay must hear of it all the same.
		defer p.referenceDone(c, start)
		p.rp.ServeHTTP(w, r)
	}()
	p.accessLog(r, c, start)
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	pr.SetURL(c.target)
	if p.cfg.ForwardedHeaders {
		if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
			pr.Out.Header["X-Forwarded-For"] = prior
		}
		pr.SetXForwarded()
	}
	pr.Out.Header.Set(RoleHeader, c.role)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	c.status = resp.StatusCode
	if x := c.x; x != nil {
		x.ref.status = resp.StatusCode
		x.ref.header = resp.Header.Clone()
		x.ref.cap = capture{b: p.budget, limit: p.cfg.MaxResponseBytes}
		resp.Body = &teeBody{rc: resp.Body, w: &x.ref.cap, err: &x.ref.err}
	}
	return nil
}

// errorHandler answers when the reference could not: 502 when it cannot be
// reached, 504 when it is too slow, 413 when the client's body is too big.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := r.Context().Value(callKey{}).(*call)
	c.err = err
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c.status = http.StatusRequestEntityTooLarge
		http.Error(w, "miffy: request body too large", c.status)
		return
	case r.Context().Err() != nil:
		c.status = 499 // the client went away; nobody reads an answer
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
	p.log.Warn().Err(err).Str("route", route).Str("target", c.target.Host).Int("status", c.status).Msg("reference failed")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(c.status)
	if c.status == http.StatusGatewayTimeout {
		io.WriteString(w, "miffy: the upstream did not answer in time\n")
	} else {
		io.WriteString(w, "miffy: the upstream could not be reached\n")
	}
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
	ev := p.log.Info().Str("method", r.Method).Str("uri", r.RequestURI).Int("status", c.status).
		Dur("duration", time.Since(start)).Str("role", c.role)
	if c.route != nil {
		ev = ev.Str("route", c.route.Name)
	}
	if c.x != nil {
		ev = ev.Str("id", c.x.id)
	}
	ev.Msg("request")
}

// teeBody hands what the client is sent to a capture as well.
type teeBody struct {
	rc  io.ReadCloser
	w   io.Writer
	err *error
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 {
		t.w.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		*t.err = err
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
