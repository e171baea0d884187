package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Protocols an upstream is spoken to in (TransportConfig.Protocol).
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

// Protocols lists the valid values of TransportConfig.Protocol.
var Protocols = []string{ProtoAuto, ProtoHTTP1, ProtoH2, ProtoH2C}

// ViaTransport reports whether requests in protocol go through net/http's
// Transport (NewTransport) alone: HTTP/2 (h2, h2c). Auto takes the Client
// and, where TLS negotiates HTTP/2, the Transport (see Auto); http1 the
// Client.
func ViaTransport(protocol string) bool {
	return protocol == ProtoH2 || protocol == ProtoH2C
}

// TransportConfig tunes NewTransport. Nothing takes a default: a zero means
// what its field says, as in Config.
type TransportConfig struct {
	// Protocol is one of Protocols. If empty, ProtoAuto.
	Protocol string
	// TLS is the base TLS configuration (see TLSFiles.Load). If nil, the
	// system's roots.
	TLS *tls.Config
	// DialTimeout bounds connecting, and the TLS handshake. If zero, no
	// bound but the request's context.
	DialTimeout time.Duration
	// MaxIdlePerHost is how many idle connections are kept per upstream
	// (HTTP/1.1). If zero, no limit.
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept. If zero, until
	// the upstream closes it.
	IdleTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response's head. If zero, no limit.
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
		MaxIdleConnsPerHost:    orNoLimit(cfg.MaxIdlePerHost), // net/http's zero is 2
		IdleConnTimeout:        cfg.IdleTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: int64(orNoLimit(cfg.MaxResponseHeaderBytes)), // net/http's zero is 10 MiB
		ExpectContinueTimeout:  time.Second,
		// Bodies pass through as the upstream sent them; the comparison
		// decodes them itself.
		DisableCompression: true,
		Protocols:          &protos,
	}
	strict := cfg.Protocol != ProtoH2 && cfg.Protocol != ProtoH2C
	if strict {
		max := orNoLimit(cfg.MaxResponseHeaderBytes)
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
			hctx, cancel := withDialTimeout(ctx, cfg.DialTimeout)
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

// RoundTrip is http.Transport's, telling a strictConn of a HEAD request.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.strict && r.Method == http.MethodHead {
		r = traceHead(r)
	}
	return t.Transport.RoundTrip(r)
}
