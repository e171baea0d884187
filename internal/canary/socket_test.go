package canary

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// exchange does what nginx's access_by_lua does: connect, send the stored
// assignment and "\n", read everything the daemon answers.
func exchange(t *testing.T, path, send string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func listenSocket(t *testing.T, r *Router, stats *Statsd) *Socket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "md.sock")
	s, err := ListenSocket(SocketConfig{Path: path}, func() *Router { return r }, stats, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSocketProtocol(t *testing.T) {
	r := newRouter(t, Config{Weight: 30})
	s := listenSocket(t, r, nil)

	tests := []struct {
		send string
		want string // "" when the assignment is new and random
		loc  string
	}{
		{"0.25\n", "0.25\ncanary\n", ""},
		{"0.3\n", "0.3\nmaster\n", ""},
		{"0\n", "0\ncanary\n", ""},
		{"0.9999\n", "0.9999\nmaster\n", ""},
		{"\n", "", ""},
		{"not-a-number\n", "", ""},
		{"1\n", "", ""},
		{"-0.5\n", "", ""},
		{"NaN\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.send), func(t *testing.T) {
			got := exchange(t, s.Addr(), tt.send)
			if tt.want != "" {
				if got != tt.want {
					t.Errorf("answer %q, want %q", got, tt.want)
				}
				return
			}
			lines := strings.Split(got, "\n")
			if len(lines) != 3 || lines[2] != "" {
				t.Fatalf("answer %q is not two lines", got)
			}
			a, ok := ParseAssignment(lines[0])
			if !ok || lines[0] == strings.TrimSpace(tt.send) {
				t.Fatalf("assignment %q is not a new number in [0,1)", lines[0])
			}
			want := "master"
			if a < 0.3 {
				want = "canary"
			}
			if lines[1] != want {
				t.Errorf("assignment %v at 30 %%: %q, want %q", a, lines[1], want)
			}
			// The client stores it and gets the same answer again.
			if again := exchange(t, s.Addr(), lines[0]+"\n"); again != got {
				t.Errorf("stored assignment: %q, want %q", again, got)
			}
		})
	}

	// The weight is read live.
	if err := r.SetWeight(20); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, s.Addr(), "0.25\n"); got != "0.25\nmaster\n" {
		t.Errorf("after SetWeight(20): %q", got)
	}
}

func TestSocketSplit(t *testing.T) {
	r := newRouter(t, Config{Weight: 30})
	s := listenSocket(t, r, nil)
	canary := 0
	const n = 500
	for range n {
		if strings.HasSuffix(exchange(t, s.Addr(), "\n"), "\ncanary\n") {
			canary++
		}
	}
	if share := float64(canary) / n; share < 0.2 || share > 0.4 {
		t.Errorf("new clients: %.2f to the canary, want about 0.3", share)
	}
}

func TestSocketStaleFile(t *testing.T) {
	r := newRouter(t, Config{Weight: 30})
	s := listenSocket(t, r, nil)
	path := s.Addr()
	if _, err := ListenSocket(SocketConfig{Path: path}, func() *Router { return r }, nil, zerolog.Nop()); err == nil {
		t.Fatal("a second listener on a live socket succeeded")
	}
	// A socket file left by a dead process is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path + "2", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s2, err := ListenSocket(SocketConfig{Path: path + "2"}, func() *Router { return nil }, nil, zerolog.Nop())
	if err != nil {
		t.Fatalf("stale socket file: %v", err)
	}
	defer s2.Close()
	// Without a router (the route is gone): master.
	if got := exchange(t, s2.Addr(), "0.1\n"); got != "0.1\nmaster\n" {
		t.Errorf("answer %q", got)
	}
}

func TestStatsd(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	st, err := DialStatsd(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	r := newRouter(t, Config{Weight: 30})
	s := listenSocket(t, r, st)
	exchange(t, s.Addr(), "0.25\n")
	exchange(t, s.Addr(), "junk\n")

	pc.SetDeadline(time.Now().Add(10 * time.Second))
	var got []string
	buf := make([]byte, 2048)
	for len(got) < 6 {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading statsd packets: %v (got %q)", err, got)
		}
		got = append(got, strings.TrimSuffix(string(buf[:n]), "\n"))
	}
	want := []string{
		"maxwellsdaemon.handler.success:1|c|#location:canary",
		"maxwellsdaemon.server.success:1|c|#location:canary",
		"maxwellsdaemon.handler.failure:1|c|#location:",
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("statsd packets %q lack %q", got, w)
		}
	}
	if !strings.Contains(joined, "maxwellsdaemon.server.delay:") || !strings.Contains(joined, "|h|#location:") {
		t.Errorf("statsd packets %q lack the delay", got)
	}
	var nilStatsd *Statsd
	nilStatsd.Count("x", 1) // a nil client sends nothing, and does not panic
}

func TestHandler(t *testing.T) {
	r := newRouter(t, Config{Name: "/shop/{id}", Weight: 50, StickyKey: "param:id", StickyCookie: "mc"})
	lookup := func(name string) (*Router, string, bool) {
		if name == "/shop/{id}" {
			return r, "/shop/{id}", true
		}
		return nil, "", false
	}
	srv := httptest.NewServer(Handler(lookup))
	defer srv.Close()

	ask := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := ask("/decide/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
	resp := ask("/decide/shop/{id}", "X-Canary", "true")
	if resp.StatusCode != 200 || resp.Header.Get(UpstreamHeader) != "candidate" || resp.Header.Get(RuleHeaderName) != "override" {
		t.Errorf("override: %d %q %q", resp.StatusCode, resp.Header.Get(UpstreamHeader), resp.Header.Get(RuleHeaderName))
	}
	// The sticky parameter comes from X-Original-URI.
	for _, id := range []string{"1", "2", "3", "4", "5", "6"} {
		want := sideOf(hashKey(id) < 0.5).String()
		resp := ask("/decide/shop/{id}", "X-Original-URI", "/shop/"+id+"?q=1")
		if got := resp.Header.Get(UpstreamHeader); got != want || resp.Header.Get(RuleHeaderName) != "sticky" {
			t.Errorf("id %s: %q (%s), want %q", id, got, resp.Header.Get(RuleHeaderName), want)
		}
		if c := resp.Cookies(); len(c) != 1 || c[0].Name != "mc" {
			t.Errorf("id %s: cookies %v, want the sticky cookie", id, c)
		}
	}
}
