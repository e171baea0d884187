package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSend compares miffy's client with net/http's Transport (as
// NewTransport builds it for http1, through RoundTripper) on one loopback
// upstream, GOMAXPROCS requests at a time: the figure behind keeping the
// client for plain HTTP/1.1 upstreams.
func BenchmarkSend(b *testing.B) {
	answer := strings.Repeat("x", 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	b.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	for _, via := range []struct {
		name string
		d    doer
	}{
		{"client", New(Config{})},
		{"transport", RoundTripper{NewTransport(TransportConfig{Protocol: ProtoHTTP1})}},
	} {
		b.Run(via.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := &Request{Method: http.MethodGet, Scheme: "http", Addr: addr, Target: "/bench",
					Header: http.Header{"Accept": {"application/json"}, "X-Request-Id": {"abc"}}}
				for pb.Next() {
					resp, err := via.d.Do(context.Background(), req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
