package shadow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/miffy-proxy/miffy/internal/server"
)

// serveFront serves h with miffy's client-facing server (as cmd/miffy
// does: net/http behind the request guard) and returns its base URL.
func serveFront(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{}, h)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

// TestForwardStreams: a body of unannounced length reaches the client as
// the upstream sends it, not when it ends.
func TestForwardStreams(t *testing.T) {
	release := make(chan struct{})
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	})
	f := newFixture(t, Config{}, ref.url(), ref.url(), nil)
	type firstEvent struct {
		br   *bufio.Reader
		line string
		err  error
	}
	first := make(chan firstEvent, 1)
	go func() {
		resp, err := http.Get(f.front.URL + "/events")
		if err != nil {
			first <- firstEvent{err: err}
			return
		}
		t.Cleanup(func() { resp.Body.Close() })
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		first <- firstEvent{br, line, err}
	}()
	var br *bufio.Reader
	select {
	case ev := <-first:
		if ev.err != nil || ev.line != "data: one\n" {
			t.Fatalf("first event: %q, %v", ev.line, ev.err)
		}
		br = ev.br
	case <-time.After(5 * time.Second): // the upstream holds the rest for 10 s
		close(release)
		t.Fatal("the first event did not reach the client before the stream ended")
	}
	close(release) // only now may the upstream finish
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest: %q, %v", rest, err)
	}
}

// TestForwardTrailersAndResponseHopHeaders: trailers pass; hop-by-hop
// response headers and those named by Connection do not, in a chunked
// answer with trailers and in one framed by Content-Length (?cl).
func TestForwardTrailersAndResponseHopHeaders(t *testing.T) {
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		cl := r.URL.Query().Has("cl")
		if !cl {
			w.Header().Set("Trailer", "X-Checksum")
		}
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		if cl {
			w.Header().Set("Content-Length", "4")
		}
		io.WriteString(w, "body")
		if !cl {
			w.Header().Set("X-Checksum", "abc")
		}
	})
	f := newFixture(t, Config{}, ref.url(), ref.url(), nil)
	// Behind net/http's server (the fixture's) and miffy's own, which
	// takes the upstream's header map whole.
	fast := serveFront(t, f.proxy)
	for _, base := range []string{f.front.URL, fast} {
		for _, path := range []string{"/api/1", "/other", "/api/2?cl", "/other?cl"} { // shadowed and not
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "body" {
				t.Errorf("%s%s: body %q", base, path, b)
			}
			wantTrailer := "abc"
			if strings.HasSuffix(path, "?cl") {
				wantTrailer = ""
			}
			if got := resp.Trailer.Get("X-Checksum"); got != wantTrailer {
				t.Errorf("%s%s: trailer %q, want %q", base, path, got, wantTrailer)
			}
			if resp.Header.Get("X-Private") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Connection") != "" {
				t.Errorf("%s%s: hop-by-hop response headers reached the client: %v", base, path, resp.Header)
			}
			if resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("%s%s: end-to-end response header lost", base, path)
			}
		}
	}
}

// TestForwardUpgrade: a protocol upgrade (as WebSocket makes) is passed
// through, and the two ends then talk over the connection.
func TestForwardUpgrade(t *testing.T) {
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	upgrade := func(t *testing.T, allow []string) (*http.Response, net.Conn, *bufio.Reader) {
		f := newFixture(t, Config{AllowUpgrades: allow}, ref.url(), ref.url(), nil)
		// Through the guard, as cmd/miffy serves it: after the 101 the
		// connection's bytes are the upgraded protocol's.
		c, err := net.Dial("tcp", strings.TrimPrefix(serveFront(t, f.proxy), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, c, br
	}
	t.Run("allowed", func(t *testing.T) {
		resp, c, br := upgrade(t, []string{"websocket", "Echo"})
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		// Bytes the guard would refuse as a request pass in the tunnel.
		io.WriteString(c, "hello \x00 HTTP/9\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: hello \x00 HTTP/9\n" {
			t.Errorf("over the upgraded connection: %q, %v", line, err)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		resp, _, _ := upgrade(t, []string{"websocket"})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want the reference's 400 (it was sent no Upgrade)", resp.StatusCode)
		}
	})
}

// TestForwardStreamedUpload: a body of unknown length that is not read
// into memory (not shadowed) reaches the reference whole.
func TestForwardStreamedUpload(t *testing.T) {
	got := make(chan string, 1)
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		io.WriteString(w, "ok")
	})
	f := newFixture(t, Config{}, ref.url(), ref.url(), nil)
	pr, pw := io.Pipe()
	go func() {
		for i := range 100 {
			io.WriteString(pw, strings.Repeat(string(rune('a'+i%26)), 1000))
		}
		pw.Close()
	}()
	resp, err := http.Post(f.front.URL+"/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body := <-got
	if len(body) != 100*1000 || body[:3] != "aaa" || body[len(body)-3:] != "vvv" {
		t.Errorf("the reference got %d bytes (%q…%q)", len(body), body[:min(3, len(body))], body[max(0, len(body)-3):])
	}
}

// TestForwardReusesConnections: the client-facing path keeps its upstream
// connections alive between requests.
func TestForwardReusesConnections(t *testing.T) {
	conns := make(chan struct{}, 100)
	ref := httptest.NewUnstartedServer(jsonHandler(`{}`))
	ref.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns <- struct{}{}
		}
	}
	ref.Start()
	t.Cleanup(ref.Close)
	u, _ := url.Parse(ref.URL)
	f := newFixture(t, Config{}, u, u, nil)
	for range 20 {
		f.get(t, "/other")
	}
	if n := len(conns); n != 1 {
		t.Errorf("20 sequential requests opened %d connections to the reference, want 1", n)
	}
}

// TestForwardedHeaders: X-Forwarded-* are added after what the client sent
// (or, switched off, passed on as sent), and the role header is miffy's
// own, whatever the client claims; alike on miffy's client and on the
// Transport a streamed body takes.
func TestForwardedHeaders(t *testing.T) {
	for _, tc := range []struct{ forwarded, streamed bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		forwarded := tc.forwarded
		ref := newUpstream(t, jsonHandler(`{}`))
		f := newFixture(t, Config{ForwardedHeaders: forwarded}, ref.url(), ref.url(), nil)
		req, _ := http.NewRequest("GET", f.front.URL+"/other", nil)
		if tc.streamed {
			// No length: chunked, streamed upstream as it comes.
			req, _ = http.NewRequest("POST", f.front.URL+"/other", io.MultiReader(strings.NewReader("streamed")))
		}
		req.Header.Set("X-Forwarded-For", "192.0.2.7")
		req.Header.Set(RoleHeader, "candidate")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := <-ref.seen
		wantXFF, wantHost := "192.0.2.7", ""
		if forwarded {
			wantXFF, wantHost = "192.0.2.7, 127.0.0.1", strings.TrimPrefix(f.front.URL, "http://")
		}
		if got := r.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != wantXFF {
			t.Errorf("forwarded_headers=%v: X-Forwarded-For %q, want %q", forwarded, got, wantXFF)
		}
		if got := r.Header.Get("X-Forwarded-Host"); got != wantHost {
			t.Errorf("forwarded_headers=%v: X-Forwarded-Host %q, want %q", forwarded, got, wantHost)
		}
		if got := r.Header.Values(RoleHeader); len(got) != 1 || got[0] != "upstream" {
			t.Errorf("forwarded_headers=%v: role %q, want just upstream", forwarded, got)
		}
	}
}

// TestClientGoneAbortsReference: a client that leaves while the reference
// is still thinking ends the reference's request too (its connection is
// closed, which the reference sees as its request's context ending),
// behind net/http's server and miffy's own.
func TestClientGoneAbortsReference(t *testing.T) {
	ended := make(chan struct{}, 4)
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			ended <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	cand := newUpstream(t, jsonHandler(`{}`)) // answers the replays at once
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	fast := serveFront(t, f.proxy)
	for _, base := range []string{f.front.URL, fast} {
		for _, path := range []string{"/other", "/api/1"} { // not shadowed and shadowed
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: example.test\r\n\r\n")
			<-ref.seen // the reference has the request
			c.Close()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s%s: the reference's request went on after the client left", base, path)
			}
		}
	}
}

// TestSlowClientHoldsNoReplay: a client that does not read its answer
// holds up the reference's answer, but not the replay: past its own
// timeout the replay gives up (counted) and its slot is free again, while
// the client is still connected.
func TestSlowClientHoldsNoReplay(t *testing.T) {
	big := strings.Repeat("x", 16<<20) // more than the socket buffers take
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big)
	})
	f := newFixture(t, Config{Timeout: 300 * time.Millisecond}, ref.url(), ref.url(), nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	skipped := f.proxy.m.skipped.WithLabelValues("/api/{value}", "reference_slow")
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(skipped) != 1 || f.proxy.budget.count.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: skipped %v, replays in flight %d; want 1 and 0",
				testutil.ToFloat64(skipped), f.proxy.budget.count.Load())
		}
		<-time.After(10 * time.Millisecond)
	}
	if held := f.proxy.budget.bytes.Load(); held > 4<<20 {
		t.Errorf("%d bytes held for the slow client, want at most the capture limit", held)
	}
}

// TestSlowClientStillCompared: an answer of announced length within the
// capture limit is read whole from the reference first, so the replay
// compares it while the client has not read a byte of it.
func TestSlowClientStillCompared(t *testing.T) {
	big := strings.Repeat("y", 6<<20)
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		io.WriteString(w, big)
	})
	f := newFixture(t, Config{MaxResponseBytes: 8 << 20}, ref.url(), ref.url(), nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\n") // and not read yet
	compared := f.proxy.m.replays.WithLabelValues("/api/{value}", "compared")
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(compared) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("not compared after 10s while the client did not read")
		}
		<-time.After(10 * time.Millisecond)
	}
	// The client then gets the whole answer.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) != len(big) {
		t.Errorf("client got %d bytes, %v; want %d", len(body), err, len(big))
	}
}
