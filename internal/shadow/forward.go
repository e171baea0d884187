package shadow

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
	"github.com/miffy-proxy/miffy/internal/server"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// forward sends the call's request to c.target and answers the client
// with what comes back. An error means nothing reached the client: the
// request could not be sent, or no answer came (ServeHTTP decides what
// follows: a retry on the reference, or fail).
func (p *Proxy) forward(w http.ResponseWriter, c *call) error {
	c.attempt = time.Now()
	if c.r.Header["Upgrade"] != nil {
		return p.upgrade(w, c)
	}
	resp, err := p.roundTrip(c)
	if err != nil {
		return err
	}
	p.respond(w, c, resp)
	return nil
}

// roundTrip sends the call's request upstream and reads the answer's head.
// A body in memory (or none) takes miffy's own client (or the side's
// HTTP/2 Transport); a streamed one net/http's Transport.
func (p *Proxy) roundTrip(c *call) (*http.Response, error) {
	req := p.outRequest(c)
	var resp *http.Response
	var err error
	if c.body.whole {
		resp, err = p.tr.sender(c.route, c.role).Do(c.r.Context(), req)
	} else {
		req.Stream, req.StreamLength = c.body.stream(), c.r.ContentLength
		// The Transport's own ResponseHeaderTimeout bounds the wait once
		// the upload is done (newWays), not HeaderTimeout, which would
		// count the upload too.
		req.HeaderTimeout = 0
		resp, err = p.tr.streamer(c.route, c.role, c.target.Scheme).Do(c.r.Context(), req)
	}
	if err != nil {
		return nil, err
	}
	if err := checkStatus(resp.StatusCode); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// outRequest builds the request sent to c.target, in the call (one
// allocation for both).
func (p *Proxy) outRequest(c *call) *upstream.Request {
	r := c.r
	path := c.path
	if path == "" {
		path = r.URL.EscapedPath()
	}
	c.req = upstream.Request{
		Method:        r.Method,
		Scheme:        c.target.Scheme,
		Addr:          c.target.Host,
		Target:        joinTarget(c.target, path, r.URL.RawQuery),
		Header:        r.Header,
		Body:          c.body.bytes(),
		HeaderTimeout: p.cfg.ReferenceTimeout,
	}
	req := &c.req
	if r.Header["Connection"] != nil {
		h := r.Header.Clone()
		httpsyntax.RemoveHopHeaders(h)
		req.Header = h
	}
	if c.route != nil {
		req.Host = c.route.hostHeader(c.role)
	}
	req.Fields = p.forwardFields(append(c.fields[:0], upstream.Field{Name: RoleHeader, Value: c.role}), r, c.reqID)
	if p.cfg.DebugRequests || p.cfg.DebugBodies {
		host := req.Host
		if host == "" {
			host = req.Addr
		}
		p.debugRequest(c.role, r.Method, c.target.Scheme+"://"+c.target.Host+req.Target, host, c)
	}
	return req
}

// respond answers the client with resp, the serving side's answer, which
// the replay captures as it goes when the request is shadowed.
func (p *Proxy) respond(w http.ResponseWriter, c *call, resp *http.Response) {
	if resp.Body == http.NoBody && resp.ContentLength < 0 {
		// Ended with its head (HTTP/2 END_STREAM): not a stream to flush
		// as it goes, so an answer with no body at all leaves as one
		// frame (gRPC's trailers-only answers must).
		resp.ContentLength = 0
	}
	p.onResponse(resp, c)
	announced := len(resp.Trailer)
	dst := p.answerHeader(w, resp)
	if p.readWhole(w, c, resp) {
		// The answer is in the capture: the replay compares it now, however
		// slowly the client takes it.
		resp.Body.Close()
		p.handOverRef(c, time.Since(c.attempt))
		w.WriteHeader(resp.StatusCode)
		w.Write(c.x.ref.cap.buf)
		return
	}
	w.WriteHeader(resp.StatusCode)
	readErr, writeErr := p.copyBody(w, resp.Body, resp.ContentLength == -1)
	switch {
	case readErr != nil:
		// The upstream broke off mid-body: so must the answer to the
		// client, or it would take a short body for a whole one. The
		// capture has the error (teeBody); net/http closes the client's
		// connection on this panic, which is how it is meant to be used.
		// What came is sent first, so the client sees where it broke.
		resp.Body.Close()
		abort(w)
	case writeErr != nil:
		// The client went away: what the reference sent is not all of it.
		if c.x != nil {
			c.x.clientGone(writeErr)
		}
		resp.Body.Close()
		return
	}
	// Trailers not announced in the head (HTTP/2's, gRPC's status) go
	// out under net/http's prefix for them.
	prefix := ""
	if len(resp.Trailer) != announced {
		prefix = http.TrailerPrefix
	}
	for name, values := range resp.Trailer {
		dst[prefix+name] = values
	}
	resp.Body.Close()
}

// onResponse notes the serving side's answer and, when shadowed, starts
// capturing its body as the client is sent it.
func (p *Proxy) onResponse(resp *http.Response, c *call) {
	c.status = resp.StatusCode
	p.setServedBy(resp.Header, c)
	if c.x != nil {
		c.x.answered(resp, p.budget, p.cfg.MaxResponseBytes)
	}
}

// answerHeader makes the upstream's fields the answer's, less hop-by-hop
// fields, with its trailers announced: handed over whole where the writer
// takes them (miffy's own server), else copied. It returns the header the
// trailers go into.
func (p *Proxy) answerHeader(w http.ResponseWriter, resp *http.Response) http.Header {
	var dst http.Header
	if hs, ok := w.(headerSetter); ok && hs.SetHeader(resp.Header) {
		dst = resp.Header
	} else {
		dst = w.Header()
		for name, values := range resp.Header {
			dst[name] = values
		}
	}
	if httpsyntax.HasHopHeaders(dst) {
		httpsyntax.RemoveHopHeaders(dst)
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for name := range resp.Trailer {
			names = append(names, name)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	return dst
}

// abort sends what was written so far and breaks the client's connection
// off: the upstream's answer broke off mid-body.
func abort(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler)
}

// upgrade passes a protocol upgrade (WebSocket and the like, the tokens
// AllowUpgrades lets through) to c.target with net/http's reverse proxy,
// which alone carries the tunnel after a 101. It is made per request, its
// callbacks bound to c; upgrades are never shadowed.
func (p *Proxy) upgrade(w http.ResponseWriter, c *call) error {
	var failed error
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { p.rewrite(pr, c) },
		Transport: checkedTransport{p.tr.roundTripper(c.route, c.role, c.target.Scheme, true)},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// The request passed every check; what follows on the
				// client's connection is the upgraded protocol's.
				server.Tunnel(resp.Request.Context())
			}
			p.onResponse(resp, c)
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
		ErrorLog:     p.rpLog,
		BufferPool:   rpPool{p.bufs},
	}
	rp.ServeHTTP(w, c.r)
	return failed
}

// rewrite makes the upgrade proxy's request what outRequest makes of the
// others: c.target, the route's path and Host, miffy's fields; the
// client's X-Forwarded-* pass on as sent when ForwardedHeaders is off.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest, c *call) {
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
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		if v := pr.In.Header[name]; v != nil {
			pr.Out.Header[name] = v
		}
	}
	for _, f := range p.forwardFields(c.fields[:0], pr.In, c.reqID) {
		pr.Out.Header.Set(f.Name, f.Value)
	}
	pr.Out.Header.Set(RoleHeader, c.role)
	if c.body.has() {
		pr.Out.Body = c.body.stream()
	}
	if p.cfg.DebugRequests || p.cfg.DebugBodies {
		p.debugRequest(c.role, pr.Out.Method, pr.Out.URL.String(), pr.Out.Host, c)
	}
}

// checkedTransport refuses, as a failed exchange, an answer whose status
// is outside 100..599 (upstream.CheckStatus): net/http's server would
// panic on one below 100.
type checkedTransport struct{ http.RoundTripper }

func (t checkedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if err := upstream.CheckStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// readWhole reads a shadowed answer of announced length, within the
// capture's limit and budget, from the reference into the capture before
// the client is sent any of it (as nginx buffers an upstream's answer). It
// reports whether it did: false leaves the body to be streamed.
func (p *Proxy) readWhole(w http.ResponseWriter, c *call, resp *http.Response) bool {
	x := c.x
	if x == nil || resp.ContentLength <= 0 || resp.ContentLength > p.cfg.MaxResponseBytes ||
		int64(cap(x.ref.cap.buf)) < resp.ContentLength {
		return false
	}
	_, err := p.bufs.copyTo(io.Discard, resp.Body) // the tee keeps it
	if err == nil && x.ref.cap.total != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		// Broken off: the client gets what came, then a reset, as when
		// streamed (respond).
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		w.Write(x.ref.cap.buf)
		abort(w)
	}
	return true
}

// headerSetter is a ResponseWriter that takes a whole header map (see
// front's SetHeader).
type headerSetter interface {
	SetHeader(h http.Header) bool
}

// copyBody copies an upstream's body to the client with a pooled buffer,
// flushing after every write when the body's length was not announced
// (a stream: server-sent events, long polls).
func (p *Proxy) copyBody(w http.ResponseWriter, body io.Reader, flush bool) (readErr, writeErr error) {
	buf := p.bufs.get()
	defer p.bufs.put(buf)
	b := *buf
	fl, _ := w.(http.Flusher)
	for {
		n, err := body.Read(b)
		if n > 0 {
			if _, werr := w.Write(b[:n]); werr != nil {
				return nil, werr
			}
			if flush && fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// joinTarget is the request target for an escaped request path on an
// upstream: the base's path and the request's joined with one slash, the
// queries merged.
func joinTarget(base *url.URL, rp, rawQuery string) string {
	// The common case, an upstream at its root: the path as it came.
	if base.RawQuery == "" && rawQuery == "" && strings.HasPrefix(rp, "/") {
		if bp := base.EscapedPath(); bp == "" || bp == "/" {
			return rp
		}
	}
	var b strings.Builder
	b.Grow(len(base.Path) + len(rp) + len(base.RawQuery) + len(rawQuery) + 3)
	writeTarget(&b, base, rp, rawQuery)
	return b.String()
}

// joinURL is the whole upstream URL, as records show it.
func joinURL(base *url.URL, rp, rawQuery string) string {
	var b strings.Builder
	b.Grow(len(base.Scheme) + len(base.Host) + len(base.Path) + len(rp) + len(base.RawQuery) + len(rawQuery) + 6)
	b.WriteString(base.Scheme)
	b.WriteString("://")
	b.WriteString(base.Host)
	writeTarget(&b, base, rp, rawQuery)
	return b.String()
}

func writeTarget(b *strings.Builder, base *url.URL, rp, rawQuery string) {
	start := b.Len()
	bp := base.EscapedPath()
	switch {
	case strings.HasSuffix(bp, "/") && strings.HasPrefix(rp, "/"):
		b.WriteString(bp)
		b.WriteString(rp[1:])
	case bp != "" && !strings.HasSuffix(bp, "/") && !strings.HasPrefix(rp, "/"):
		b.WriteString(bp)
		b.WriteByte('/')
		b.WriteString(rp)
	default:
		b.WriteString(bp)
		b.WriteString(rp)
	}
	if b.Len() == start {
		b.WriteByte('/')
	}
	if base.RawQuery == "" && rawQuery == "" {
		return
	}
	b.WriteByte('?')
	b.WriteString(base.RawQuery)
	if base.RawQuery != "" && rawQuery != "" {
		b.WriteByte('&')
	}
	b.WriteString(rawQuery)
}
