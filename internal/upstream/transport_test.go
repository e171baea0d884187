package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// doer is what sends a Request: a *Client or a RoundTripper.
type doer interface {
	Do(ctx context.Context, req *Request) (*http.Response, error)
}

var (
	_ doer = (*Client)(nil)
	_ doer = RoundTripper{}
)

// protoHandler answers with the protocol it was asked in, and whether
// the client presented a certificate.
func protoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
		fmt.Fprintf(w, "HTTP/%d client-cert=%v", r.ProtoMajor, client)
	})
}

// startTLS starts a TLS server with cert; with clientCAs, it requires a
// client certificate that they sign. h2 offers HTTP/2 too.
func startTLS(t *testing.T, cert tls.Certificate, clientCAs *x509.CertPool, h2 bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(protoHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are under test
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestTLSFiles: an upstream signed by a private CA, one that requires a
// client certificate, one whose certificate names another host: each
// works with the matching TLSFiles, and fails without, through the
// Client and through NewTransport alike.
func TestTLSFiles(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "upstream-ca")
	clientCA := newPKI(t, "client-ca")
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	serverCert, _, _ := ca.issue(t, "server", []string{"upstream.test"}, loopback)
	namedCert, _, _ := ca.issue(t, "named", []string{"upstream.test"}, nil) // no IP: the name must be set
	_, clientCertFile, clientKeyFile := clientCA.issue(t, "client", nil, nil)
	_, otherCertFile, otherKeyFile := ca.issue(t, "other-client", nil, nil) // signed by a CA the server does not trust

	plain := startTLS(t, serverCert, nil, false)
	mutual := startTLS(t, serverCert, clientCA.pool, false)
	named := startTLS(t, namedCert, nil, false)

	tests := []struct {
		name    string
		srv     *httptest.Server
		files   TLSFiles
		want    string // the answer's body, or "" for a failure
		wantErr string // in the failure's text
	}{
		{"private CA, system roots", plain, TLSFiles{}, "", "certificate"},
		{"private CA, tls_ca_file", plain, TLSFiles{CAFile: ca.caFile}, "HTTP/1 client-cert=false", ""},
		{"private CA, insecure", plain, TLSFiles{InsecureSkipVerify: true}, "HTTP/1 client-cert=false", ""},
		{"client certificate required, none", mutual, TLSFiles{CAFile: ca.caFile}, "", ""},
		{"client certificate required, another CA's", mutual, TLSFiles{CAFile: ca.caFile, CertFile: otherCertFile, KeyFile: otherKeyFile}, "", ""},
		{"client certificate required, given", mutual, TLSFiles{CAFile: ca.caFile, CertFile: clientCertFile, KeyFile: clientKeyFile}, "HTTP/1 client-cert=true", ""},
		{"wrong server name", named, TLSFiles{CAFile: ca.caFile}, "", "certificate"},
		{"tls_server_name", named, TLSFiles{CAFile: ca.caFile, ServerName: "upstream.test"}, "HTTP/1 client-cert=false", ""},
		{"tls_server_name, another name", named, TLSFiles{CAFile: ca.caFile, ServerName: "other.test"}, "", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.files.Load()
			if err != nil {
				t.Fatal(err)
			}
			for _, via := range []struct {
				name string
				d    doer
			}{
				{"client", newClient(t, Config{TLS: cfg})},
				{"transport", RoundTripper{NewTransport(TransportConfig{Protocol: ProtoHTTP1, TLS: cfg})}},
			} {
				req := &Request{Method: http.MethodGet, Scheme: "https", Addr: tt.srv.Listener.Addr().String(), Target: "/"}
				var got result
				within(t, bound, func() { got, err = fetch(t.Context(), via.d, req) })
				if tt.want == "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("%s: %v, %v; want an error naming %q", via.name, got, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", via.name, err)
					continue
				}
				if d := cmp.Diff(result{200, tt.want}, got); d != "" {
					t.Errorf("%s: (-want +got):\n%s", via.name, d)
				}
			}
		})
	}
}

// TestTLSFilesErrors: files that cannot be used are errors that name them.
func TestTLSFilesErrors(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "ca")
	_, certFile, keyFile := ca.issue(t, "client", nil, nil)
	_, _, otherKey := ca.issue(t, "other", nil, nil)
	missing := ca.dir + "/missing.pem"
	tests := []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"CA file missing", TLSFiles{CAFile: missing}, "missing.pem"},
		{"CA file not PEM", TLSFiles{CAFile: keyFile}, "no PEM certificate"},
		{"certificate without key", TLSFiles{CertFile: certFile}, "both"},
		{"key without certificate", TLSFiles{KeyFile: keyFile}, "both"},
		{"key of another certificate", TLSFiles{CertFile: certFile, KeyFile: otherKey}, "client.pem"},
		{"certificate file missing", TLSFiles{CertFile: missing, KeyFile: keyFile}, "missing.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.files.Load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, %v; want an error naming %q", cfg, err, tt.want)
			}
		})
	}
	if cfg, err := (TLSFiles{}).Load(); cfg != nil || err != nil {
		t.Errorf("zero TLSFiles: %v, %v; want nil, nil", cfg, err)
	}
	cfg, err := TLSFiles{CAFile: ca.caFile}.Load()
	if err != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion of %v (%v), want TLS 1.2", cfg, err)
	}
}

// TestTransportProtocols: each protocol setting reaches the upstream in
// the protocol it names (the upstream's r.ProtoMajor).
func TestTransportProtocols(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "ca")
	cert, _, _ := ca.issue(t, "server", []string{"upstream.test"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	h2 := startTLS(t, cert, nil, true)
	h1only := startTLS(t, cert, nil, false)

	h2c := httptest.NewUnstartedServer(protoHandler())
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetHTTP1(true)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	t.Cleanup(h2c.Close)

	tlsCfg, err := TLSFiles{CAFile: ca.caFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, protocol string
		srv            *httptest.Server
		scheme         string
		want           string
	}{
		{"h2c", ProtoH2C, h2c, "http", "HTTP/2"},
		{"h2", ProtoH2, h2, "https", "HTTP/2"},
		{"auto negotiates h2", ProtoAuto, h2, "https", "HTTP/2"},
		{"auto, server without h2", ProtoAuto, h1only, "https", "HTTP/1"},
		{"auto over TCP", ProtoAuto, h2c, "http", "HTTP/1"},
		{"http1 over TLS", ProtoHTTP1, h2, "https", "HTTP/1"},
		{"http1 over TCP", ProtoHTTP1, h2c, "http", "HTTP/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := RoundTripper{NewTransport(TransportConfig{Protocol: tt.protocol, TLS: tlsCfg})}
			for i := range 2 {
				req := &Request{Method: http.MethodPost, Scheme: tt.scheme, Addr: tt.srv.Listener.Addr().String(), Target: "/p", Body: []byte("body")}
				got, err := fetch(t.Context(), rt, req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if !strings.HasPrefix(got.Body, tt.want+" ") {
					t.Errorf("request %d: upstream saw %q, want %s", i, got.Body, tt.want)
				}
			}
		})
	}
	// h2 to a server that does not speak it fails rather than falling
	// back.
	rt := RoundTripper{NewTransport(TransportConfig{Protocol: ProtoH2, TLS: tlsCfg})}
	if got, err := fetch(t.Context(), rt, &Request{Method: http.MethodGet, Scheme: "https", Addr: h1only.Listener.Addr().String()}); err == nil {
		t.Errorf("h2 to an HTTP/1.1-only server: %v, want an error", got)
	}
}

// TestRoundTripperRequest: a Request sent through a RoundTripper reaches
// the upstream as it does through the Client (HTTP/1.1 and h2c alike):
// method, target as escaped, Host, fields less the hop-by-hop ones,
// Fields replacing Header's, body and its length.
func TestRoundTripperRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		Method, URI, Host string
		Header            http.Header
		Body              string
		ContentLength     int64
	}
	got := make(chan seen, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Del("User-Agent")
		h.Del("Accept-Encoding") // each client's own
		got <- seen{r.Method, r.RequestURI, r.Host, h, string(b), r.ContentLength}
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)

	newReq := func() *Request {
		return &Request{
			Method: http.MethodPut, Scheme: "http", Addr: srv.Listener.Addr().String(),
			Target: "/a%2Fb/c?q=1&r=%20", Host: "api.test",
			Header: http.Header{
				"X-Keep":     {"1", "2"},
				"X-Replaced": {"old"},
				"Connection": {"keep-alive"},
				"Keep-Alive": {"timeout=5"},
				"Upgrade":    {"h2c"},
				"Te":         {"trailers"},
			},
			Fields: []Field{{Name: "X-Replaced", Value: "new"}, {Name: "X-Role", Value: "reference"}},
			Body:   []byte("hello"),
		}
	}
	want := seen{
		Method: http.MethodPut, URI: "/a%2Fb/c?q=1&r=%20", Host: "api.test",
		Header:        http.Header{"X-Keep": {"1", "2"}, "X-Replaced": {"new"}, "X-Role": {"reference"}, "Content-Length": {"5"}},
		Body:          "hello",
		ContentLength: 5,
	}
	for _, via := range []struct {
		name string
		d    doer
		te   bool
	}{
		{"client", newClient(t, Config{}), false},
		{"transport http1", RoundTripper{NewTransport(TransportConfig{Protocol: ProtoHTTP1})}, true},
		{"transport h2c", RoundTripper{NewTransport(TransportConfig{Protocol: ProtoH2C})}, true},
	} {
		if _, err := fetch(t.Context(), via.d, newReq()); err != nil {
			t.Fatalf("%s: %v", via.name, err)
		}
		g := <-got
		w := want
		if via.te {
			// TE: trailers is kept where the protocol may need it.
			w.Header = want.Header.Clone()
			w.Header["Te"] = []string{"trailers"}
		}
		if strings.HasSuffix(via.name, "h2c") {
			// HTTP/2 frames the body; no Content-Length field is needed.
			delete(g.Header, "Content-Length")
			delete(w.Header, "Content-Length")
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s: request (-want +got):\n%s", via.name, d)
		}
	}
}

// TestRoundTripperHeaderTimeout: a Request's HeaderTimeout bounds the
// wait for the head, not the body; a timeout is a net.Error timeout.
func TestRoundTripperHeaderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-head" {
			<-release
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "late body")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	rt := RoundTripper{NewTransport(TransportConfig{})}
	addr := srv.Listener.Addr().String()

	// The flushed head must beat it: room for a loaded machine.
	const headTimeout = 300 * time.Millisecond
	req := get(addr, "/slow-head")
	req.HeaderTimeout = headTimeout
	var err error
	within(t, bound, func() { _, err = rt.Do(t.Context(), req) })
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("slow head: err = %v, want a timeout", err)
	}

	req = get(addr, "/slow-body")
	req.HeaderTimeout = headTimeout
	resp, err := rt.Do(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("body ended before the upstream sent it: %v", err)
	case <-time.After(2 * headTimeout): // past HeaderTimeout: the body still waits
	}
}

// TestTransportStatusRange: a status outside 100..599, which net/http's
// Transport takes, is an error through RoundTripper and CheckStatus.
func TestTransportStatusRange(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status string
		ok     bool
	}{{"042", false}, {"099", false}, {"600", false}, {"999", false}, {"599", true}, {"200", true}} {
		srv := newRawServer(t, func(_ int, nc net.Conn, br *bufio.Reader) {
			for {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(nc, "HTTP/1.1 "+tt.status+" X\r\nContent-Length: 2\r\n\r\nhi")
			}
		})
		tr := NewTransport(TransportConfig{Protocol: ProtoHTTP1})
		_, err := fetch(t.Context(), RoundTripper{tr}, get(srv.addr, "/"))
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrMalformedResponse)) {
			t.Errorf("status %s through RoundTripper: %v", tt.status, err)
		}
		// net/http's own Transport takes any three digits.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.addr+"/", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckStatus(resp); tt.ok != (err == nil) {
			t.Errorf("status %s: CheckStatus = %v", tt.status, err)
		}
		resp.Body.Close()
	}
}

// TestTransportHeadBoundH2: the head bound holds over HTTP/2 too.
func TestTransportHeadBoundH2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", strings.Repeat("a", 128<<10))
		io.WriteString(w, "ok")
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, max := range []int{64 << 10, 256 << 10} {
		rt := RoundTripper{NewTransport(TransportConfig{Protocol: ProtoH2C, MaxResponseHeaderBytes: max})}
		got, err := fetch(t.Context(), rt, get(srv.Listener.Addr().String(), "/"))
		if (max < 128<<10) != (err != nil || got.Status != 200) {
			t.Errorf("max %d: %v, %v", max, got, err)
		}
	}
}
