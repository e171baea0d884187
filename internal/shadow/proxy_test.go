package shadow

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// sink is a Publisher that hands records to the test.
type sink struct{ ch chan *publish.Record }

func newSink() *sink { return &sink{ch: make(chan *publish.Record, 100)} }

func (s *sink) Publish(r *publish.Record) bool { s.ch <- r; return true }

func (s *sink) next(t *testing.T) *publish.Record {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no record published")
		return nil
	}
}

func (s *sink) none(t *testing.T, p *Proxy) {
	t.Helper()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected record: %+v", r)
	default:
	}
}

// testUpstream is a test server that records the role header it saw.
type testUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	roles []string
	seen  chan *http.Request
}

func newUpstream(t *testing.T, h http.HandlerFunc) *testUpstream {
	t.Helper()
	u := &testUpstream{seen: make(chan *http.Request, 100)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.roles = append(u.roles, r.Header.Get(RoleHeader))
		u.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		r2 := r.Clone(context.Background())
		r2.Body = io.NopCloser(strings.NewReader(string(body)))
		select {
		case u.seen <- r2:
		default:
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *testUpstream) url() *url.URL { v, _ := url.Parse(u.URL); return v }

func jsonHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

type fixture struct {
	proxy *Proxy
	front *httptest.Server
	sink  *sink
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, cfg Config, ref, cand *url.URL, mod func(*Route)) *fixture {
	t.Helper()
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	rt := &Route{Pattern: "/api/{value}", Key: "value", Reference: ref, Candidate: cand, Sample: 1, Comparer: cmp}
	if mod != nil {
		mod(rt)
	}
	table, err := NewTable(ref, []*Route{rt})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sink: newSink(), reg: prometheus.NewRegistry()}
	f.proxy = New(testConfig(cfg), table, compare.NewJudge(compare.NoiseConfig{}, time.Now), &publish.Outlet{Sink: f.sink}, zerolog.Nop(), f.reg)
	f.front = httptest.NewServer(f.proxy)
	t.Cleanup(func() {
		f.front.Close()
		f.proxy.Close(context.Background())
	})
	return f
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(f.front.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestShadowPublishesMismatch(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"a":1,"b":[1,2]}`))
	cand := newUpstream(t, jsonHandler(`{"b":[1,2],"a":2}`))
	f := newFixture(t, Config{ForwardedHeaders: true}, ref.url(), cand.url(), nil)

	resp, body := f.get(t, "/api/7?x=1")
	if resp.StatusCode != 200 || body != `{"a":1,"b":[1,2]}` {
		t.Fatalf("client got %d %q, want the reference's answer", resp.StatusCode, body)
	}
	rec := f.sink.next(t)
	if rec.Key != "7" || rec.Route != "/api/{value}" || rec.Request.URI != "/api/7?x=1" || rec.Equal {
		t.Errorf("record: key %q route %q uri %q equal %v", rec.Key, rec.Route, rec.Request.URI, rec.Equal)
	}
	if len(rec.Diffs) != 1 || rec.Diffs[0].Path != "$.a" || rec.Diffs[0].Class != compare.Regression {
		t.Errorf("diffs: %+v", rec.Diffs)
	}
	if rec.Candidate.URL != cand.URL+"/api/7?x=1" || rec.Candidate.Status != 200 {
		t.Errorf("candidate side: %+v", rec.Candidate)
	}
	r := <-cand.seen
	if got := r.Header.Get(RoleHeader); got != "candidate" {
		t.Errorf("candidate role header %q", got)
	}
	if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("candidate X-Forwarded-For %q", got)
	}
	r = <-ref.seen
	if got := r.Header.Get(RoleHeader); got != "reference" {
		t.Errorf("reference role header %q", got)
	}
	if got := testutil.ToFloat64(f.proxy.m.mismatches.WithLabelValues("/api/{value}", "regression")); got != 1 {
		t.Errorf("mismatch metric %v", got)
	}
}

func TestEqualIsNotPublished(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"a":1.0}`))
	cand := newUpstream(t, jsonHandler(`{"a":1}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	f.get(t, "/api/1")
	f.sink.none(t, f.proxy)
	if got := testutil.ToFloat64(f.proxy.m.replays.WithLabelValues("/api/{value}", "compared")); got != 1 {
		t.Errorf("compared replays %v", got)
	}
}

func TestUnroutedIsProxiedNotShadowed(t *testing.T) {
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "home") })
	cand := newUpstream(t, jsonHandler(`{}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	if _, body := f.get(t, "/other"); body != "home" {
		t.Fatalf("body %q", body)
	}
	r := <-ref.seen
	if got := r.Header.Get(RoleHeader); got != "upstream" {
		t.Errorf("role %q, want upstream", got)
	}
	f.sink.none(t, f.proxy)
	if len(cand.roles) != 0 {
		t.Errorf("candidate called for unrouted request")
	}
}

func TestSideEffectsNotReplayedByDefault(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"ok":true}`))
	cand := newUpstream(t, jsonHandler(`{"ok":false}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	resp, err := http.Post(f.front.URL+"/api/1", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-ref.seen; r.Method != "POST" {
		t.Errorf("reference got %s", r.Method)
	}
	f.sink.none(t, f.proxy)
	if got := testutil.ToFloat64(f.proxy.m.skipped.WithLabelValues("/api/{value}", "method")); got != 1 {
		t.Errorf("skipped{method} = %v", got)
	}
}

func TestSideEffectsReplayedWhenAllowed(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"ok":true}`))
	cand := newUpstream(t, jsonHandler(`{"ok":false}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), func(r *Route) { r.AllowSideEffects = true })
	resp, err := http.Post(f.front.URL+"/api/1", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := f.sink.next(t)
	if string(rec.Request.Body) != `{"n":1}` {
		t.Errorf("record request body %q", rec.Request.Body)
	}
	for _, u := range []*testUpstream{ref, cand} {
		r := <-u.seen
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"n":1}` {
			t.Errorf("%s got body %q", r.Header.Get(RoleHeader), b)
		}
	}
}

func TestLargeBodyProxiedNotShadowed(t *testing.T) {
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b)))
	})
	cand := newUpstream(t, jsonHandler(`{}`))
	f := newFixture(t, Config{MaxBodyBytes: 10}, ref.url(), cand.url(), func(r *Route) { r.AllowSideEffects = true })
	body := strings.Repeat("y", 1234)
	// No Content-Length: the proxy finds out while reading.
	req, _ := http.NewRequest("POST", f.front.URL+"/api/1", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "1234" {
		t.Errorf("reference saw a body of wrong length: %q", b)
	}
	f.sink.none(t, f.proxy)
	if got := testutil.ToFloat64(f.proxy.m.skipped.WithLabelValues("/api/{value}", "body_too_large")); got != 1 {
		t.Errorf("skipped{body_too_large} = %v", got)
	}
}

func TestRequestBodyLimit(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{}`))
	f := newFixture(t, Config{MaxRequestBodyBytes: 100}, ref.url(), ref.url(), nil)
	resp, err := http.Post(f.front.URL+"/api/1", "text/plain", strings.NewReader(strings.Repeat("z", 101)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

func TestReferenceFailures(t *testing.T) {
	dead := deadURL(t)
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	tests := []struct {
		name string
		ref  *url.URL
		want int
	}{
		{"refused", dead, http.StatusBadGateway},
		{"too slow", slow.url(), http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cand := newUpstream(t, jsonHandler(`{}`))
			f := newFixture(t, Config{ReferenceTimeout: 200 * time.Millisecond}, tt.ref, cand.url(), nil)
			resp, body := f.get(t, "/api/1")
			if resp.StatusCode != tt.want || !strings.HasPrefix(body, "miffy: ") {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			f.sink.none(t, f.proxy)
			if got := testutil.ToFloat64(f.proxy.m.skipped.WithLabelValues("/api/{value}", "reference_error")); got != 1 {
				t.Errorf("skipped{reference_error} = %v", got)
			}
		})
	}
}

func deadURL(t *testing.T) *url.URL {
	t.Helper()
	// The port stays bound (not listening) for the whole test, so that
	// connecting is refused and no listener started later (the proxy's own
	// test server) can be given it: a "refused" upstream would then be the
	// proxy itself.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	return u
}

// TestReferenceAlwaysWins: whatever the candidate does, the client gets the
// reference's answer promptly, and the failure shows in a record and a metric.
func TestReferenceAlwaysWins(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	tests := []struct {
		name     string
		cand     func(t *testing.T) *url.URL
		wantKind string // error kind in the record; "" = compared answer
	}{
		{"slow 2s", func(t *testing.T) *url.URL {
			return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				jsonHandler(`{"a":2}`)(w, r)
			}).url()
		}, ""},
		{"hangs", func(t *testing.T) *url.URL {
			return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}).url()
		}, "timeout"},
		{"refuses", deadURL, "refused"},
		{"resets mid-body", func(t *testing.T) *url.URL {
			return rawServer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
		}, "reset"},
		{"garbage", func(t *testing.T) *url.URL {
			return rawServer(t, "this is not HTTP at all\r\n\r\n")
		}, "malformed_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := newUpstream(t, jsonHandler(`{"a":1}`))
			f := newFixture(t, Config{Timeout: 3 * time.Second}, ref.url(), tt.cand(t), nil)
			start := time.Now()
			resp, body := f.get(t, "/api/1")
			if took := time.Since(start); took > 300*time.Millisecond {
				t.Errorf("client waited %v for the reference's answer", took)
			}
			if resp.StatusCode != 200 || body != `{"a":1}` {
				t.Errorf("client got %d %q", resp.StatusCode, body)
			}
			rec := f.sink.next(t)
			if tt.wantKind == "" {
				if rec.Candidate.Err != nil || len(rec.Diffs) == 0 {
					t.Errorf("want a compared mismatch, got err %v diffs %+v", rec.Candidate.Err, rec.Diffs)
				}
				return
			}
			if rec.Candidate.Err == nil {
				t.Fatalf("record has no candidate error: %+v", rec.Candidate)
			}
			if got := publish.ErrorKind(rec.Candidate.Err); got != tt.wantKind {
				t.Errorf("error kind %q (%v), want %q", got, rec.Candidate.Err, tt.wantKind)
			}
			if got := testutil.ToFloat64(f.proxy.m.replays.WithLabelValues("/api/{value}", "candidate_error")); got != 1 {
				t.Errorf("replays{candidate_error} = %v", got)
			}
		})
	}
}

// rawServer answers every connection with raw bytes and closes it.
func rawServer(t *testing.T, raw string) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				http.ReadRequest(br)
				io.WriteString(c, raw)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // reset, not a clean close
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u
}

func TestInFlightBoundDrops(t *testing.T) {
	release := make(chan struct{})
	ref := newUpstream(t, jsonHandler(`{"a":1}`))
	cand := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		jsonHandler(`{"a":2}`)(w, r)
	})
	f := newFixture(t, Config{MaxInFlight: 1}, ref.url(), cand.url(), nil)
	f.get(t, "/api/1")
	<-cand.seen // the first replay holds the only slot
	for range 3 {
		if resp, _ := f.get(t, "/api/2"); resp.StatusCode != 200 {
			t.Fatalf("client status %d", resp.StatusCode)
		}
	}
	if got := testutil.ToFloat64(f.proxy.m.dropped.WithLabelValues("/api/{value}", "in_flight")); got != 3 {
		t.Errorf("dropped{in_flight} = %v, want 3", got)
	}
	close(release)
	if rec := f.sink.next(t); rec.Key != "1" {
		t.Errorf("record key %q", rec.Key)
	}
}

func TestCloseWaitsForReplays(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"a":1}`))
	cand := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // a replay still running at shutdown
		jsonHandler(`{"a":2}`)(w, r)
	})
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	f.get(t, "/api/1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.proxy.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.sink.ch:
	default:
		t.Fatal("Close returned before the replay published")
	}
}

func TestHopByHopHeadersStripped(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{}`))
	cand := newUpstream(t, jsonHandler(`{}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), nil)
	req, _ := http.NewRequest("GET", f.front.URL+"/api/1", nil)
	req.Header.Set("Connection", "X-Private")
	req.Header.Set("X-Private", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-Kept", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, u := range []*testUpstream{ref, cand} {
		r := <-u.seen
		role := r.Header.Get(RoleHeader)
		if r.Header.Get("X-Private") != "" || r.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s got hop-by-hop headers: %v", role, r.Header)
		}
		if r.Header.Get("X-Kept") != "yes" {
			t.Errorf("%s lost an end-to-end header", role)
		}
	}
}

func TestJoinURL(t *testing.T) {
	tests := []struct{ base, path, query, want string }{
		{"http://h", "/a", "", "http://h/a"},
		{"http://h/", "/a", "q=1", "http://h/a?q=1"},
		{"http://h/v1", "/a", "", "http://h/v1/a"},
		{"http://h/v1/", "/a%2Fb", "", "http://h/v1/a%2Fb"},
		{"http://h/v1?k=v", "/a", "q=1", "http://h/v1/a?k=v&q=1"},
		{"http://h/", "/a/b", "", "http://h/a/b"},
		{"http://h", "", "", "http://h/"},
		{"http://h?k=v", "/a", "", "http://h/a?k=v"},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.base)
		if got := joinURL(u, tt.path, tt.query); got != tt.want {
			t.Errorf("joinURL(%q, %q, %q) = %q, want %q", tt.base, tt.path, tt.query, got, tt.want)
		}
		// The request target is the same URL less scheme and host.
		want := strings.TrimPrefix(tt.want, "http://h")
		if got := joinTarget(u, tt.path, tt.query); got != want {
			t.Errorf("joinTarget(%q, %q, %q) = %q, want %q", tt.base, tt.path, tt.query, got, want)
		}
	}
}
