package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthUpstream serves gRPC's health service over h2c, with service
// "shop" in the given status.
func healthUpstream(t *testing.T, st healthpb.HealthCheckResponse_ServingStatus) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("shop", st)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return "http://" + ln.Addr().String()
}

// TestGRPCThroughMiffy: a grpc-go client calls through miffy (h2c) a
// reference and a candidate that are gRPC servers: the client gets the
// reference's answer, with its status, and the call is replayed to the
// candidate and compared; the candidate's different answer is published.
func TestGRPCThroughMiffy(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2c", true: "TLS"}[tlsOn], func(t *testing.T) { testGRPC(t, tlsOn) })
	}
}

func testGRPC(t *testing.T, tlsOn bool) {
	b := startBroker(t)
	ref := healthUpstream(t, healthpb.HealthCheckResponse_SERVING)
	cand := healthUpstream(t, healthpb.HealthCheckResponse_NOT_SERVING)
	creds := insecure.NewCredentials()
	listener := ""
	if tlsOn {
		certFile, keyFile, pool := testCertFiles(t)
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool})
		listener = "[proxy]\ntls_cert_file = \"" + certFile + "\"\ntls_key_file = \"" + keyFile + "\"\n"
	}
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+cand+`"
routes = [{ path = "/grpc.health.v1.Health/{method}", name = "health", allow_side_effects = true }]
`+listener+`
[upstream]
protocol = "h2c"
[kafka]
topic = "grpc-diffs"
"bootstrap.servers" = "`+b.Addr()+`"
`)
	conn, err := grpc.NewClient(strings.TrimPrefix(in.proxy, "http://"), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "shop"})
	if err != nil {
		t.Fatalf("Check through miffy: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status %v, want the reference's SERVING", resp.Status)
	}
	// An error status comes back as a trailers-only answer: headers that
	// end the stream. It must stay one frame, whatever the timing (flushed
	// apart, the client sees a stream without trailers): many calls.
	for i := range 300 {
		if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"}); err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Fatalf("unknown service, call %d: %v, want the reference's NotFound", i, err)
		}
	}

	recs := consume(t, b.Addr(), "grpc-diffs", 1)
	var rec struct {
		Route   string `json:"route"`
		Request struct {
			URI string `json:"uri"`
		} `json:"request"`
		Differences []struct{ Path string } `json:"differences"`
	}
	if err := json.Unmarshal(recs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Route != "health" || rec.Request.URI != "/grpc.health.v1.Health/Check" || len(rec.Differences) == 0 {
		t.Errorf("record %s, want the Check call's difference", recs[0].Value)
	}
}
