package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// Protocols an upstream is spoken to in (Side.Protocol).
const (
	// ProtoAuto is HTTP/1.1, or HTTP/2 where TLS negotiates it (ALPN).
	ProtoAuto = "auto"
	// ProtoHTTP1 is HTTP/1.1 only, also over TLS.
	ProtoHTTP1 = "http1"
	// ProtoH2 is HTTP/2 over TLS only.
	ProtoH2 = "h2"
	// ProtoH2C is HTTP/2 without TLS, with prior knowledge.
	ProtoH2C = "h2c"
)

// Protocols lists the valid values of Side.Protocol.
var Protocols = []string{ProtoAuto, ProtoHTTP1, ProtoH2, ProtoH2C}

// ViaTransport reports whether requests in protocol go through net/http's
// Transport (NewTransport) alone: HTTP/2 (h2, h2c). Auto takes the Client
// and, where TLS negotiates HTTP/2, the Transport (see Auto); http1 the
// Client.
func ViaTransport(protocol string) bool {
	return protocol == ProtoH2 || protocol == ProtoH2C
}

// Auto sends requests with Client (which must have Config.OfferHTTP2) over
// HTTP/1.1, and with H2 (NewTransport with ProtoAuto) to the https
// upstreams whose TLS handshake chose HTTP/2: the first request to such an
// upstream learns it (ErrHTTP2, nothing sent) and goes to H2, as do the
// later ones. HTTP/1.1 over TLS thus keeps the Client's strict reading.
// It is safe for concurrent use.
type Auto struct {
	Client *Client
	H2     RoundTripper
	h2     sync.Map // Addr of https upstreams that speak HTTP/2
}

// Do sends req over HTTP/1.1 or HTTP/2, as its upstream speaks.
func (a *Auto) Do(ctx context.Context, req *Request) (*http.Response, error) {
	if req.Scheme == "https" {
		if _, ok := a.h2.Load(req.Addr); ok {
			return a.H2.Do(ctx, req)
		}
	}
	resp, err := a.Client.Do(ctx, req)
	if errors.Is(err, ErrHTTP2) {
		a.h2.Store(req.Addr, true)
		return a.H2.Do(ctx, req)
	}
	return resp, err
}

// TransportConfig tunes NewTransport. Zero values take the defaults
// stated per field.
type TransportConfig struct {
	// Protocol is one of Protocols. If empty, ProtoAuto.
	Protocol string
	// TLS is the base TLS configuration (see TLSFiles.Load). If nil, the
	// system's roots.
	TLS *tls.Config
	// DialTimeout bounds connecting, and the TLS handshake. If zero, 5s.
	DialTimeout time.Duration
	// MaxIdlePerHost is how many idle connections are kept per upstream
	// (HTTP/1.1). If zero, 512.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept. If zero, 90s.
	IdleTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response's head. If zero, 1 MiB.
	MaxResponseHeaderBytes int
	// ResponseHeaderTimeout bounds the wait for a response's head after
	// the request is written. If zero, only the request's context.
	ResponseHeaderTimeout time.Duration
}

// NewTransport returns net/http's Transport for upstreams spoken to in
// cfg.Protocol: HTTP/1.1 (http1), HTTP/2 over TLS (h2), HTTP/2 with prior
// knowledge over TCP (h2c), or HTTP/1.1 with HTTP/2 offered over TLS
// (auto). It never uses a proxy from the environment and leaves bodies
// as the upstream encoded them.
//
// HTTP/1.1 answers are read as strictly as the Client reads them (see
// strictConn): a head it would refuse fails the exchange. HTTP/2 has its
// own framing, which net/http checks.
func NewTransport(cfg TransportConfig) *Transport {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxIdlePerHost == 0 {
		cfg.MaxIdlePerHost = 512
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 90 * time.Second
	}
	if cfg.MaxResponseHeaderBytes == 0 {
		cfg.MaxResponseHeaderBytes = 1 << 20
	}
	var protos http.Protocols
	switch cfg.Protocol {
	case ProtoHTTP1:
		protos.SetHTTP1(true)
	case ProtoH2:
		protos.SetHTTP2(true)
	case ProtoH2C:
		protos.SetUnencryptedHTTP2(true)
	default:
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	}
	t := &http.Transport{
		Proxy:                  nil, // upstreams are reached directly, whatever HTTP_PROXY says
		DialContext:            d.DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    cfg.DialTimeout,
		MaxIdleConnsPerHost:    cfg.MaxIdlePerHost,
		IdleConnTimeout:        cfg.IdleTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: int64(cfg.MaxResponseHeaderBytes),
		ExpectContinueTimeout:  time.Second,
		// Bodies pass through as the upstream sent them; the comparison
		// decodes them itself.
		DisableCompression: true,
		Protocols:          &protos,
	}
	strict := cfg.Protocol != ProtoH2 && cfg.Protocol != ProtoH2C
	if strict {
		max := cfg.MaxResponseHeaderBytes
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &strictConn{Conn: nc, max: max}, nil
		}
		// TLS by hand, to put strictConn under HTTP/1.1 but not under
		// HTTP/2.
		next := []string{"h2", "http/1.1"}
		if cfg.Protocol == ProtoHTTP1 {
			next = []string{"http/1.1"}
		}
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c := &tls.Config{}
			if tc != nil {
				c = tc.Clone()
			}
			if c.ServerName == "" {
				c.ServerName, _, _ = net.SplitHostPort(addr)
			}
			c.NextProtos = next
			conn := tls.Client(nc, c)
			hctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
			defer cancel()
			if err := conn.HandshakeContext(hctx); err != nil {
				nc.Close()
				return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
			}
			if conn.ConnectionState().NegotiatedProtocol == "h2" {
				return conn, nil
			}
			return &strictConn{Conn: conn, max: max}, nil
		}
	}
	return &Transport{Transport: t, strict: strict}
}

// Transport is net/http's Transport as NewTransport sets it up.
type Transport struct {
	*http.Transport
	strict bool
}

// RoundTrip is http.Transport's, telling a strictConn of the request.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.strict {
		r = traceHead(r)
	}
	return t.Transport.RoundTrip(r)
}

// RoundTripper sends a Request through an http.RoundTripper (NewTransport),
// so that the code that sends Requests need not know which protocol a
// side speaks. It is safe for concurrent use.
type RoundTripper struct{ http.RoundTripper }

// Do sends req as the Client would: the same header (less hop-by-hop
// fields, Fields replacing Header's; "TE: trailers" is kept), the same
// Host, the body with its length, req.HeaderTimeout bounding the wait for
// the head. The caller must close the response's body.
func (t RoundTripper) Do(ctx context.Context, req *Request) (*http.Response, error) {
	hr, err := req.httpRequest(ctx)
	if err != nil {
		return nil, err
	}
	if req.HeaderTimeout > 0 {
		hctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(req.HeaderTimeout, func() { cancel(errHeaderTimeout) })
		resp, err := t.RoundTrip(hr.WithContext(hctx))
		switch {
		case !timer.Stop() && err == nil:
			// The timer fired as the head came: the body is cut off.
			resp.Body.Close()
			cancel(nil)
			return nil, errHeaderTimeout
		case err != nil:
			if context.Cause(hctx) == errHeaderTimeout {
				err = fmt.Errorf("%w (%v)", errHeaderTimeout, err)
			}
			cancel(nil)
			return nil, err
		}
		resp.Body = cancelBody{resp.Body, func() { cancel(nil) }}
		return t.checked(resp)
	}
	resp, err := t.RoundTrip(hr)
	if err != nil {
		return nil, err
	}
	return t.checked(resp)
}

// errHeaderTimeout is a Request's HeaderTimeout passed: a timeout to
// net.Error's eyes, as on the Client's connections.
var errHeaderTimeout error = headerTimeoutError{}

type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "timeout awaiting response headers" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return true }

// checked refuses what the Client refuses too: a 101 (Do does not
// upgrade), and what CheckStatus refuses.
func (RoundTripper) checked(resp *http.Response) (*http.Response, error) {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return nil, ErrUpgrade
	}
	if err := CheckStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckStatus refuses, closing its body, a response whose status is
// outside 100..599, which net/http's Transport takes (any three digits)
// and net/http's server cannot pass on (a status below 100 panics).
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		resp.Body.Close()
		return malformed("status %d outside 100..599", resp.StatusCode)
	}
	return nil
}

// cancelBody calls done when the body is closed.
type cancelBody struct {
	io.ReadCloser
	done func()
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// httpRequest builds the net/http request that carries req.
func (req *Request) httpRequest(ctx context.Context) (*http.Request, error) {
	target := req.Target
	if target == "" {
		target = "/"
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("parsing the request target: %w", err)
	}
	u.Scheme, u.Host = req.Scheme, req.Addr
	h := make(http.Header, len(req.Header)+len(req.Fields))
	for name, values := range req.Header {
		if skipHeader(name) || replaced(name, req.Fields) {
			continue
		}
		h[name] = values
	}
	for _, f := range req.Fields {
		h.Add(f.Name, f.Value)
	}
	for _, v := range req.Header["Te"] {
		if httpsyntax.HasToken(v, "trailers") {
			// The one TE an HTTP/2 request may carry; gRPC needs it.
			h.Set("Te", "trailers")
		}
	}
	hr := &http.Request{
		Method:     req.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       req.Host,
	}
	if len(req.Body) > 0 || bodyExpected(req.Method) {
		body := req.Body
		hr.ContentLength = int64(len(body))
		hr.Body = http.NoBody
		hr.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		if len(body) > 0 {
			hr.Body = io.NopCloser(bytes.NewReader(body))
			hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	return hr.WithContext(ctx), nil
}
