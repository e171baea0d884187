package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFastServerHandsOff drives one client connection through run():
// requests the fast path takes and one it hands to net/http (a chunked
// upload), in turn; all are answered, the upload's body reaches the
// reference whole, and the hand-off is counted. With proxy.fast_server =
// false the same traffic is served and nothing is counted.
func TestFastServerHandsOff(t *testing.T) {
	checkLeaks(t)
	for _, fast := range []bool{true, false} {
		name := "fast_server"
		env := []string{}
		if !fast {
			name = "net/http only"
			env = append(env, "MIFFY_PROXY__FAST_SERVER=false")
		}
		t.Run(name, func(t *testing.T) {
			bodies := make(chan string, 8)
			ref := newEchoUpstream(t, bodies)
			in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+ref+`"
[kafka]
"bootstrap.servers" = "`+deadAddr(t)+`"
require_broker = false
`, env...)
			c, err := net.Dial("tcp", strings.TrimPrefix(in.proxy, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			send := func(raw, wantBody string) {
				t.Helper()
				if _, err := io.WriteString(c, raw); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%.40q: %v", raw, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
					t.Fatalf("%.40q: %d %q %v", raw, resp.StatusCode, b, err)
				}
				if got := <-bodies; got != wantBody {
					t.Fatalf("%.40q: the reference got body %q, want %q", raw, got, wantBody)
				}
			}
			send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "")
			send("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz", "xyz")
			send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde")
			send("GET /d HTTP/1.1\r\nHost: x\r\n\r\n", "") // net/http's from here on

			m := scrapeMetrics(t, in)
			framing, ok := metricSample(m, `miffy_proxy_handoffs_total{reason="framing"}`)
			switch {
			case fast && (!ok || framing != 1):
				t.Errorf("handoffs{framing} = %v (present %v), want 1", framing, ok)
			case fast && metricTotal(m, "miffy_proxy_handoffs_total") != 1:
				t.Errorf("handoffs in all = %v, want 1", metricTotal(m, "miffy_proxy_handoffs_total"))
			case !fast && ok:
				t.Errorf("handoffs counted with fast_server = false")
			}
		})
	}
}

// newEchoUpstream answers "ok" and sends each request's body to bodies.
func newEchoUpstream(t *testing.T, bodies chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestFastServerStreamedUpload: an upload over [shadow] max_body_bytes,
// framed by Content-Length, stays on the fast path and is streamed to the
// reference through net/http's reverse proxy; it arrives whole, and the
// answer comes back on the same connection, which carries on.
func TestFastServerStreamedUpload(t *testing.T) {
	checkLeaks(t)
	bodies := make(chan string, 4)
	ref := newEchoUpstream(t, bodies)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+ref+`"
routes = [{ path = "/up/{v}", key = "v", allow_side_effects = true }]
[shadow]
max_body_bytes = 1024
[kafka]
"bootstrap.servers" = "`+deadAddr(t)+`"
require_broker = false
`)
	c, err := net.Dial("tcp", strings.TrimPrefix(in.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	big := strings.Repeat("0123456789", 50_000) // 500 kB
	for _, path := range []string{"/up/1", "/plain"} {
		if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n"+big); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, b)
		}
		if got := <-bodies; got != big {
			t.Fatalf("%s: the reference got %d bytes, want %d", path, len(got), len(big))
		}
	}
	if n := metricTotal(scrapeMetrics(t, in), "miffy_proxy_handoffs_total"); n != 0 {
		t.Errorf("handoffs = %v, want 0 (the fast path serves these)", n)
	}
}
