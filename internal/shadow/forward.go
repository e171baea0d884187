package shadow

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// forward sends the client's request to c.target and answers the client
// with what comes back. Requests whose body is in memory (or absent) take
// miffy's own upstream client; streamed uploads and protocol upgrades take
// net/http's reverse proxy.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, c *call) {
	hasBody := r.Body != nil && r.Body != http.NoBody
	if (hasBody && c.body == nil) || r.Header["Upgrade"] != nil {
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
		return
	}
	p.forwardFast(w, r, c)
}

func (p *Proxy) forwardFast(w http.ResponseWriter, r *http.Request, c *call) {
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
		Body:          c.body,
		HeaderTimeout: p.cfg.ReferenceTimeout,
	}
	req := &c.req // in the call: one allocation for both
	if r.Header["Connection"] != nil {
		h := r.Header.Clone()
		httpsyntax.RemoveHopHeaders(h)
		req.Header = h
	}
	if c.route != nil {
		req.Host = c.route.hostHeader(c.role)
	}
	req.Fields = p.forwardFields(append(c.fields[:0], upstream.Field{Name: RoleHeader, Value: c.role}), r)
	if p.cfg.DebugRequests || p.cfg.DebugBodies {
		host := req.Host
		if host == "" {
			host = req.Addr
		}
		p.debugRequest(c.role, r.Method, c.target.Scheme+"://"+c.target.Host+req.Target, host, r)
	}

	resp, err := p.tr.sender(c.route, c.role).Do(r.Context(), req)
	if err == nil {
		if err = checkStatus(resp.StatusCode); err != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		p.fail(w, r, c, err)
		return
	}
	p.onResponse(resp, c)

	// The upstream's fields become the answer's: handed over whole where
	// the writer takes them (miffy's own server), else copied.
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
	if p.readWhole(w, c, resp) {
		// The answer is in the capture: the replay compares it now, however
		// slowly the client takes it.
		resp.Body.Close()
		p.handOverRef(c, time.Since(c.start))
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
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	case writeErr != nil:
		// The client went away: what the reference sent is not all of it.
		if c.x != nil && !c.refHandedOver && c.x.ref.err == nil {
			c.x.ref.err = fmt.Errorf("writing to the client: %w", writeErr)
		}
		resp.Body.Close()
		return
	}
	for name, values := range resp.Trailer {
		dst[name] = values
	}
	resp.Body.Close()
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
		// streamed (copyBody's caller).
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		w.Write(x.ref.cap.buf)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
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
