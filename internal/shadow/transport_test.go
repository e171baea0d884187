package shadow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

// protoUpstream answers with the protocol it was asked in.
func protoUpstream(t *testing.T, mode string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "HTTP/%d %s", r.ProtoMajor, r.Header.Get(RoleHeader))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are under test
	switch mode {
	case "h2c":
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
	case "tls":
		srv.EnableHTTP2 = true
		srv.StartTLS()
	default:
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func trusting(srv *httptest.Server) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: roots}
}

// TestTransportsSides: each side reaches its upstreams with its own
// protocol and TLS settings, whichever way the request goes (a body in
// memory, or streamed through the reverse proxy).
func TestTransportsSides(t *testing.T) {
	h2c := protoUpstream(t, "h2c")
	secure := protoUpstream(t, "tls")
	cfg := testConfig(Config{Sides: map[string]Side{
		"reference": {TLS: trusting(secure)},       // auto
		"candidate": {Protocol: upstream.ProtoH2C}, // no TLS roots: the system's
		"secondary": {Protocol: upstream.ProtoHTTP1, TLS: trusting(secure)},
	}})
	tr := newTransports(cfg)
	t.Cleanup(tr.closeIdle)

	tests := []struct {
		role, scheme string
		srv          *httptest.Server
		want         string // the upstream's answer, or "error"
	}{
		{"reference", "https", secure, "HTTP/2"}, // auto negotiates h2
		{"upstream", "https", secure, "HTTP/2"},  // unrouted: the reference's settings
		{"reference", "http", h2c, "HTTP/1"},     // auto over TCP
		{"candidate", "http", h2c, "HTTP/2"},
		{"candidate", "https", secure, "error"}, // h2c to TLS; and no roots for it
		{"secondary", "https", secure, "HTTP/1"},
	}
	for _, tt := range tests {
		t.Run(tt.role+" "+tt.scheme+" "+tt.want, func(t *testing.T) {
			addr := tt.srv.Listener.Addr().String()
			req := &upstream.Request{Method: http.MethodGet, Scheme: tt.scheme, Addr: addr, Target: "/", Fields: []upstream.Field{{Name: RoleHeader, Value: tt.role}}}
			got := answer(tr.sender(nil, tt.role).Do(t.Context(), req))
			// The same with a streamed body, through net/http's Transport.
			sreq := *req
			sreq.Stream, sreq.StreamLength = io.NopCloser(strings.NewReader("")), -1
			streamed := answer(tr.streamer(nil, tt.role, tt.scheme).Do(t.Context(), &sreq))
			for _, g := range []string{got, streamed} {
				if tt.want == "error" {
					if !strings.HasPrefix(g, "error") {
						t.Errorf("got %q, want an error", g)
					}
				} else if g != tt.want+" "+tt.role {
					t.Errorf("got %q, want %q", g, tt.want+" "+tt.role)
				}
			}
		})
	}

	// An upgrade goes over HTTP/1.1 even where the side speaks HTTP/2.
	if rt := tr.roundTripper(nil, "candidate", "http", true); rt != tr.side("candidate", "").http1 {
		t.Error("an upgrade to an h2c side does not take the HTTP/1.1 Transport")
	}
	// http1 takes miffy's own client, auto takes it first.
	if _, ok := tr.sender(nil, "secondary").(*upstream.Client); !ok {
		t.Error("http1 does not take miffy's client")
	}
	if a, ok := tr.sender(nil, "reference").(*upstream.Auto); !ok || a.Client != tr.side("reference", "").client {
		t.Error("auto does not take miffy's client first")
	}
}

func answer(resp *http.Response, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// TestTransportsStatusRange: the streamed path and the upgrade proxy's
// Transport refuse a status outside 100..599 (net/http's server would
// panic on one below 100), so that the client gets a 502.
func TestTransportsStatusRange(t *testing.T) {
	ref := rawUpstream(t, writeAnswer("HTTP/1.1 042 Low\r\nContent-Length: 2\r\n\r\nhi"))
	tr := newTransports(testConfig(Config{}))
	t.Cleanup(tr.closeIdle)
	req := &upstream.Request{Method: http.MethodPost, Scheme: "http", Addr: ref.Host, Target: "/",
		Stream: io.NopCloser(strings.NewReader("streamed")), StreamLength: -1}
	if got := answer(tr.streamer(nil, "reference", "http").Do(t.Context(), req)); !strings.Contains(got, "outside 100..599") {
		t.Errorf("streamed: got %q, want an error naming the status", got)
	}
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ref.String()+"/", nil)
	rt := checkedTransport{tr.roundTripper(nil, "reference", "http", true)}
	if got := answer(rt.RoundTrip(r)); !strings.Contains(got, "outside 100..599") {
		t.Errorf("upgrade: got %q, want an error naming the status", got)
	}
}

// TestTransportsRouteProtocol: a route's protocol for a side wins over
// the side's, for that route only; each side and protocol has one set of
// connections.
func TestTransportsRouteProtocol(t *testing.T) {
	h2c := protoUpstream(t, "h2c")
	tr := newTransports(testConfig(Config{Sides: map[string]Side{"candidate": {Protocol: upstream.ProtoHTTP1}}}))
	t.Cleanup(tr.closeIdle)
	grpcRoute := &Route{CandidateProtocol: upstream.ProtoH2C}
	addr := h2c.Listener.Addr().String()
	for _, tt := range []struct {
		rt   *Route
		want string
	}{
		{grpcRoute, "HTTP/2"},
		{&Route{ReferenceProtocol: upstream.ProtoH2C}, "HTTP/1"}, // another side's
		{nil, "HTTP/1"},
	} {
		req := &upstream.Request{Method: http.MethodGet, Scheme: "http", Addr: addr, Target: "/", Fields: []upstream.Field{{Name: RoleHeader, Value: "candidate"}}}
		if got := answer(tr.sender(tt.rt, "candidate").Do(t.Context(), req)); got != tt.want+" candidate" {
			t.Errorf("route %+v: got %q, want %s", tt.rt, got, tt.want)
		}
	}
	if tr.side("candidate", upstream.ProtoH2C) != tr.side("candidate", upstream.ProtoH2C) || tr.side("candidate", "") != tr.side("candidate", upstream.ProtoHTTP1) {
		t.Error("a side and protocol's connections are made twice")
	}
}

// TestStreamedHeadTimeout: a streamed request's wait for the head is
// bounded by ReferenceTimeout over HTTP/2 as over HTTP/1.1 (the upstream
// reads the body, then never answers).
func TestStreamedHeadTimeout(t *testing.T) {
	for _, proto := range []string{upstream.ProtoH2C, upstream.ProtoHTTP1} {
		t.Run(proto, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				<-release
			}))
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetHTTP1(true)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) }) // first: the handler returns
			cfg := testConfig(Config{ReferenceTimeout: 100 * time.Millisecond, Sides: map[string]Side{"reference": {Protocol: proto}}})
			tr := newTransports(cfg)
			t.Cleanup(tr.closeIdle)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // only if the bound is gone
			defer cancel()
			req := &upstream.Request{Method: http.MethodPost, Scheme: "http", Addr: srv.Listener.Addr().String(), Target: "/",
				Stream: io.NopCloser(strings.NewReader("body")), StreamLength: 4}
			_, err := tr.streamer(nil, "reference", "http").Do(ctx, req)
			var ne interface{ Timeout() bool }
			if err == nil || ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Do = %v (context: %v), want the head's timeout", err, ctx.Err())
			}
		})
	}
}
