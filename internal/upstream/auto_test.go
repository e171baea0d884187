package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// countingRT counts the requests a RoundTripper is given.
type countingRT struct {
	http.RoundTripper
	n atomic.Int32
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

// TestAuto: auto sends over HTTP/1.1 with miffy's client, plain or TLS,
// and over HTTP/2 to a TLS upstream that negotiates it, learning that on
// the first request (which is sent once, over HTTP/2).
func TestAuto(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "ca")
	cert, _, _ := ca.issue(t, "server", []string{"upstream.test"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	h2 := startTLS(t, cert, nil, true)
	h1 := startTLS(t, cert, nil, false)
	plain := httptest.NewServer(protoHandler())
	t.Cleanup(plain.Close)
	tlsCfg, err := TLSFiles{CAFile: ca.caFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, scheme string
		srv          *httptest.Server
		want         string
		viaH2        int32 // requests that went to the Transport, of 3
	}{
		{"TLS with h2", "https", h2, "HTTP/2", 3},
		{"TLS without h2", "https", h1, "HTTP/1", 0},
		{"plain", "http", plain, "HTTP/1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h2rt := &countingRT{RoundTripper: NewTransport(TransportConfig{TLS: tlsCfg})}
			a := &Auto{Client: newClient(t, Config{TLS: tlsCfg, OfferHTTP2: true}), H2: RoundTripper{h2rt}}
			for i := range 3 {
				got, err := fetch(t.Context(), a, &Request{Method: http.MethodGet, Scheme: tt.scheme, Addr: tt.srv.Listener.Addr().String()})
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if !strings.HasPrefix(got.Body, tt.want+" ") {
					t.Errorf("request %d: upstream saw %q, want %s", i, got.Body, tt.want)
				}
			}
			if got := h2rt.n.Load(); got != tt.viaH2 {
				t.Errorf("%d requests through the Transport, want %d", got, tt.viaH2)
			}
		})
	}
	// Without OfferHTTP2 the client speaks HTTP/1.1 to an h2 server.
	c := newClient(t, Config{TLS: tlsCfg})
	if got, err := fetch(t.Context(), c, &Request{Method: http.MethodGet, Scheme: "https", Addr: h2.Listener.Addr().String()}); err != nil || !strings.HasPrefix(got.Body, "HTTP/1 ") {
		t.Errorf("client without OfferHTTP2: %v, %v", got, err)
	}
}
