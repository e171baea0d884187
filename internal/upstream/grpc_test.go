package upstream

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcUpstream starts a gRPC server (h2c, as grpc-go serves without TLS)
// with the health service, "miffy.test" serving.
func grpcUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("miffy.test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		gs.Serve(ln)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return ln.Addr().String()
}

// TestGRPCThroughTransport: a grpc-go client's unary calls reach an h2c
// upstream through NewTransport (behind a reverse proxy that serves h2c,
// as miffy's streamed path does), with the status in the trailers
// (grpc-status, grpc-message) passed back: a call that succeeds needs its
// trailers to.
func TestGRPCThroughTransport(t *testing.T) {
	t.Parallel()
	target := &url.URL{Scheme: "http", Host: grpcUpstream(t)}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: NewTransport(TransportConfig{Protocol: ProtoH2C}),
	}
	front := httptest.NewUnstartedServer(rp)
	front.Config.Protocols = new(http.Protocols)
	front.Config.Protocols.SetUnencryptedHTTP2(true)
	front.Start()
	t.Cleanup(front.Close)

	conn, err := grpc.NewClient("passthrough:///"+front.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)

	resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "miffy.test"})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status %v, want SERVING", resp.GetStatus())
	}
	_, err = client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "no.such.service"})
	if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() == "" {
		t.Errorf("unknown service: %v, want NotFound with a message", err)
	}
}

// TestGRPCThroughRoundTripper: a unary gRPC request whose body is in
// memory, sent as a Request (the way miffy sends bodies it has read),
// reaches an h2c upstream, and the answer's trailers say grpc-status 0.
func TestGRPCThroughRoundTripper(t *testing.T) {
	t.Parallel()
	addr := grpcUpstream(t)
	msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: "miffy.test"})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 5, 5+len(msg)) // uncompressed flag, length, message
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	rt := RoundTripper{NewTransport(TransportConfig{Protocol: ProtoH2C})}
	resp, err := rt.Do(t.Context(), &Request{
		Method: http.MethodPost, Scheme: "http", Addr: addr, Target: "/grpc.health.v1.Health/Check",
		Header: http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
		Body:   body,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got healthpb.HealthCheckResponse
	if len(b) < 5 || proto.Unmarshal(b[5:], &got) != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("answer %x, want SERVING", b)
	}
	if resp.ProtoMajor != 2 || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("HTTP/%d, trailers %v; want HTTP/2 and grpc-status 0", resp.ProtoMajor, resp.Trailer)
	}
}
