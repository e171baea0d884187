package shadow

import (
	"context"
	"crypto/tls"
	"net/http"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

// Side is how the proxy reaches one side's upstreams.
type Side struct {
	// Protocol is one of upstream.Protocols. If empty, auto: HTTP/1.1, or
	// HTTP/2 where TLS negotiates it.
	Protocol string
	// TLS is the base TLS configuration (upstream.TLSFiles.Load). If nil,
	// the system's roots.
	TLS *tls.Config
}

// sender sends one request upstream: miffy's HTTP/1.1 client, or
// net/http's Transport behind upstream.RoundTripper.
type sender interface {
	Do(ctx context.Context, req *upstream.Request) (*http.Response, error)
}

var (
	_ sender = (*upstream.Client)(nil)
	_ sender = upstream.RoundTripper{}
	_ sender = (*upstream.Auto)(nil)
)

// sideTransports are one side's ways upstream.
type sideTransports struct {
	protocol string
	client   *upstream.Client      // HTTP/1.1: http1, and auto
	auto     *upstream.Auto        // auto: client, or net where TLS picks HTTP/2
	net      upstream.RoundTripper // net/http: h2, h2c, auto's HTTP/2
	http1    *upstream.Transport   // streamed uploads and upgrades over HTTP/1.1
	netTr    *upstream.Transport   // the Transport under net
}

// transports holds every side's ways upstream, and picks one per request.
type transports struct {
	sides map[string]*sideTransports // by role: reference, candidate, secondary
}

// newTransports makes the clients and Transports of every side from cfg
// (defaults set). Reference and candidate (which serves canary requests)
// bound the wait for a streamed request's answer by ReferenceTimeout.
func newTransports(cfg Config) *transports {
	t := &transports{sides: map[string]*sideTransports{}}
	for _, role := range []string{"reference", "candidate", "secondary"} {
		s := cfg.Sides[role]
		if s.Protocol == "" {
			s.Protocol = upstream.ProtoAuto
		}
		tc := upstream.TransportConfig{
			Protocol:               s.Protocol,
			TLS:                    s.TLS,
			DialTimeout:            cfg.DialTimeout,
			MaxIdlePerHost:         cfg.MaxIdleConnsPerHost,
			IdleTimeout:            cfg.UpstreamIdleTimeout,
			MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
		}
		netTr := upstream.NewTransport(tc)
		tc.Protocol = upstream.ProtoHTTP1
		if role != "secondary" {
			tc.ResponseHeaderTimeout = cfg.ReferenceTimeout
		}
		st := &sideTransports{
			protocol: s.Protocol,
			client: upstream.New(upstream.Config{
				DialTimeout:            cfg.DialTimeout,
				MaxIdlePerHost:         cfg.MaxIdleConnsPerHost,
				IdleTimeout:            cfg.UpstreamIdleTimeout,
				TLS:                    s.TLS,
				MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
				OfferHTTP2:             s.Protocol == upstream.ProtoAuto,
			}),
			net:   upstream.RoundTripper{RoundTripper: netTr},
			http1: upstream.NewTransport(tc),
			netTr: netTr,
		}
		st.auto = &upstream.Auto{Client: st.client, H2: st.net}
		t.sides[role] = st
	}
	return t
}

// side returns a role's transports; the unrouted "upstream" role is the
// reference's.
func (t *transports) side(role string) *sideTransports {
	if s, ok := t.sides[role]; ok {
		return s
	}
	return t.sides["reference"]
}

// sender returns what sends a request whose body is in memory to role's
// upstream: miffy's client for HTTP/1.1 (http1; auto, unless TLS picks
// HTTP/2), net/http's Transport for HTTP/2 (h2, h2c; auto where TLS
// picks it).
func (t *transports) sender(role string) sender {
	s := t.side(role)
	switch {
	case upstream.ViaTransport(s.protocol):
		return s.net
	case s.protocol == upstream.ProtoAuto:
		return s.auto
	}
	return s.client
}

// roundTripper returns the Transport for a streamed request (or an
// upgrade) to role's upstream at a URL of scheme: an upgrade goes over
// HTTP/1.1, which alone has one; h2 and h2c over HTTP/2; auto over TLS
// by what TLS negotiates.
func (t *transports) roundTripper(role, scheme string, upgrade bool) http.RoundTripper {
	s := t.side(role)
	if !upgrade && (upstream.ViaTransport(s.protocol) || s.protocol == upstream.ProtoAuto && scheme == "https") {
		return s.netTr
	}
	return s.http1
}

// RoundTrip sends a request of the reverse proxy (streamed uploads and
// upgrades) by its call's role (the request's context holds the call). A
// status outside 100..599 is an error (upstream.CheckStatus).
func (t *transports) RoundTrip(r *http.Request) (*http.Response, error) {
	role := "reference"
	if c, ok := r.Context().Value(callKey{}).(*call); ok {
		role = c.role
	}
	resp, err := t.roundTripper(role, r.URL.Scheme, r.Header.Get("Upgrade") != "").RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if err := upstream.CheckStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// closeIdle closes every side's idle connections.
func (t *transports) closeIdle() {
	for _, s := range t.sides {
		s.client.CloseIdle()
		s.http1.CloseIdleConnections()
		s.netTr.CloseIdleConnections()
	}
}
