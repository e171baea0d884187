package shadow

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"

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

// protocol is the protocol route r sets for role's upstream, or "" (the
// side's).
func (r *Route) protocol(role string) string {
	if r == nil {
		return ""
	}
	switch role {
	case "reference":
		return r.ReferenceProtocol
	case "candidate":
		return r.CandidateProtocol
	case "secondary":
		return r.SecondaryProtocol
	}
	return ""
}

// wayKey names one side's ways upstream in one protocol.
type wayKey struct{ role, protocol string }

// ways are one side's ways upstream in one protocol.
type ways struct {
	protocol string
	client   *upstream.Client      // HTTP/1.1: http1, and auto
	auto     *upstream.Auto        // auto: client, or net where TLS picks HTTP/2
	net      upstream.RoundTripper // net/http: h2, h2c, auto's HTTP/2
	http1    *upstream.Transport   // streamed uploads and upgrades over HTTP/1.1
	netTr    *upstream.Transport   // the Transport under net
}

// transports holds every side's ways upstream, made as a side and a
// protocol are first asked for (at most 3 sides by 4 protocols), and picks
// one per request.
type transports struct {
	cfg  Config
	base map[string]*ways // each side's in its own protocol: read without a lock

	mu   sync.Mutex
	ways map[wayKey]*ways // every side's, in every protocol asked for
}

// newTransports returns the transports of cfg.
func newTransports(cfg Config) *transports {
	t := &transports{cfg: cfg, base: map[string]*ways{}, ways: map[wayKey]*ways{}}
	for _, role := range []string{"reference", "candidate", "secondary"} {
		t.base[role] = t.side(role, "")
	}
	return t
}

// side returns role's ways in protocol ("": the side's own). The
// unrouted "upstream" role is the reference's.
func (t *transports) side(role, protocol string) *ways {
	if role != "candidate" && role != "secondary" {
		role = "reference"
	}
	if w := t.base[role]; w != nil && (protocol == "" || protocol == w.protocol) {
		return w
	}
	s := t.cfg.Sides[role]
	if protocol == "" {
		protocol = s.Protocol
	}
	if protocol == "" {
		protocol = upstream.ProtoAuto
	}
	key := wayKey{role, protocol}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w := t.ways[key]; w != nil {
		return w
	}
	w := newWays(t.cfg, role, protocol, s.TLS)
	t.ways[key] = w
	return w
}

// newWays makes the client and Transports of one side in one protocol.
// Reference and candidate (which serves canary requests) bound the wait
// for a streamed request's answer by ReferenceTimeout, over HTTP/1.1 and
// HTTP/2 alike (a request in memory carries its own HeaderTimeout too).
func newWays(cfg Config, role, protocol string, tc *tls.Config) *ways {
	trc := upstream.TransportConfig{
		Protocol:               protocol,
		TLS:                    tc,
		DialTimeout:            cfg.DialTimeout,
		MaxIdlePerHost:         cfg.MaxIdleConnsPerHost,
		IdleTimeout:            cfg.UpstreamIdleTimeout,
		MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
	}
	if role != "secondary" {
		trc.ResponseHeaderTimeout = cfg.ReferenceTimeout
	}
	netTr := upstream.NewTransport(trc)
	trc.Protocol = upstream.ProtoHTTP1
	w := &ways{
		protocol: protocol,
		client: upstream.New(upstream.Config{
			DialTimeout:            cfg.DialTimeout,
			MaxIdlePerHost:         cfg.MaxIdleConnsPerHost,
			IdleTimeout:            cfg.UpstreamIdleTimeout,
			TLS:                    tc,
			MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
			OfferHTTP2:             protocol == upstream.ProtoAuto,
		}),
		net:   upstream.RoundTripper{RoundTripper: netTr},
		http1: upstream.NewTransport(trc),
		netTr: netTr,
	}
	w.auto = &upstream.Auto{Client: w.client, H2: w.net}
	return w
}

// sender returns what sends a request whose body is in memory to role's
// upstream on route rt (nil: unrouted): miffy's client for HTTP/1.1
// (http1; auto, unless TLS picks HTTP/2), net/http's Transport for HTTP/2
// (h2, h2c; auto where TLS picks it).
func (t *transports) sender(rt *Route, role string) sender {
	w := t.side(role, rt.protocol(role))
	switch {
	case upstream.ViaTransport(w.protocol):
		return w.net
	case w.protocol == upstream.ProtoAuto:
		return w.auto
	}
	return w.client
}

// roundTripper returns the Transport for a streamed request (or an
// upgrade) to role's upstream on route rt at a URL of scheme: an upgrade
// goes over HTTP/1.1, which alone has one; h2 and h2c over HTTP/2; auto
// over TLS by what TLS negotiates.
func (t *transports) roundTripper(rt *Route, role, scheme string, upgrade bool) http.RoundTripper {
	w := t.side(role, rt.protocol(role))
	if !upgrade && (upstream.ViaTransport(w.protocol) || w.protocol == upstream.ProtoAuto && scheme == "https") {
		return w.netTr
	}
	return w.http1
}

// streamer returns what sends a request whose body streams to role's
// upstream on route rt at a URL of scheme: net/http's Transport, as
// roundTripper picks it.
func (t *transports) streamer(rt *Route, role, scheme string) upstream.RoundTripper {
	return upstream.RoundTripper{RoundTripper: t.roundTripper(rt, role, scheme, false)}
}

// closeIdle closes every side's idle connections.
func (t *transports) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.ways {
		w.client.CloseIdle()
		w.http1.CloseIdleConnections()
		w.netTr.CloseIdleConnections()
	}
}
