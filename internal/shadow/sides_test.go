package shadow

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// TestSidesTLS: HTTPS reference and candidate signed by private CAs are
// reached with each side's TLS settings (Config.Sides); without them the
// client gets 502.
func TestSidesTLS(t *testing.T) {
	ref := httptest.NewTLSServer(jsonHandler(`{"a":1}`))
	t.Cleanup(ref.Close)
	cand := httptest.NewTLSServer(jsonHandler(`{"a":2}`))
	t.Cleanup(cand.Close)
	ru, _ := url.Parse(ref.URL)
	cu, _ := url.Parse(cand.URL)

	f := newFixture(t, Config{Sides: map[string]Side{"reference": {TLS: trusting(ref)}, "candidate": {TLS: trusting(cand)}}}, ru, cu, nil)
	if resp, body := f.get(t, "/api/1"); resp.StatusCode != 200 || body != `{"a":1}` {
		t.Errorf("client got %d %q", resp.StatusCode, body)
	}
	if rec := f.sink.next(t); rec.Candidate.Err != nil || len(rec.Diffs) != 1 {
		t.Errorf("record: candidate error %v, diffs %+v; want the one difference", rec.Candidate.Err, rec.Diffs)
	}

	f = newFixture(t, Config{}, ru, cu, nil)
	if resp, _ := f.get(t, "/api/1"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("untrusted reference: %d, want 502", resp.StatusCode)
	}
}

func grpcServer(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("miffy.test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestSidesGRPC: a grpc-go unary call through the proxy (served h2c)
// reaches an h2c reference and gets its answer and trailers.
func TestSidesGRPC(t *testing.T) {
	ref, cand := grpcServer(t), grpcServer(t)
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	rt := &Route{Pattern: "/grpc.health.v1.Health/Check", Reference: ref, Candidate: cand, Sample: 1, Comparer: cmp}
	table, err := NewTable(ref, []*Route{rt})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sides: map[string]Side{"reference": {Protocol: upstream.ProtoH2C}, "candidate": {Protocol: upstream.ProtoH2C}}}
	p := New(testConfig(cfg), table, compare.NewJudge(compare.NoiseConfig{}, time.Now), &publish.Outlet{Sink: newSink()}, zerolog.Nop(), prometheus.NewRegistry())
	front := httptest.NewUnstartedServer(p)
	front.Config.Protocols = new(http.Protocols)
	front.Config.Protocols.SetHTTP1(true)
	front.Config.Protocols.SetUnencryptedHTTP2(true)
	front.Start()
	t.Cleanup(front.Close)
	t.Cleanup(func() { p.Close(context.Background()) })

	conn, err := grpc.NewClient("passthrough:///"+front.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "miffy.test"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Check through the proxy: %v, %v; want SERVING", resp, err)
	}
}
