package shadow

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/publish"
)

func canaryRoute(t *testing.T, cfg canary.Config) func(*Route) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "/api/{value}"
	}
	// As the config layer completes it (config.default.toml's [canary]).
	cfg.OverrideHeader = cmp.Or(cfg.OverrideHeader, "X-Canary")
	cfg.DecisionTimeout = cmp.Or(cfg.DecisionTimeout, time.Second)
	cfg.DecisionMaxBodyBytes = cmp.Or(cfg.DecisionMaxBodyBytes, 64<<10)
	reg := prometheus.NewRegistry()
	r, err := canary.NewRouter(cfg, canary.NewMetrics(reg), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	canaryRegistries.Store(r, reg)
	return func(rt *Route) { rt.Canary = r }
}

// canaryRegistries hold the canary metrics of each router canaryRoute
// made, for gatherText.
var canaryRegistries sync.Map // *canary.Router -> *prometheus.Registry

// do sends one request through the proxy and returns the response with its
// body read.
func (f *fixture) do(t *testing.T, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.front.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.front.Client().Do(req)
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

func servedBy(resp *http.Response) string { return resp.Header.Get("X-Miffy-Served-By") }

// TestCanaryShare is the wiring of the weight: 200 requests per weight
// through the proxy to real upstreams, four clients at once, each answered
// by the side it is said to be served by, the candidate exactly as often
// as the counter says. The counter's arithmetic is proved on its own, with
// many more decisions, in canary's TestWeightShareConcurrent.
func TestCanaryShare(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, jsonHandler(`"cand"`))
	for _, w := range []float64{0, 0.1, 12.5, 50, 100} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{}, ref.url(), cand.url(), canaryRoute(t, canary.Config{Weight: w}))
			const n, clients = 200, 4
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			defer client.CloseIdleConnections()
			var served [2]atomic.Int64
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					for i := c; i < n; i += clients {
						resp, err := client.Get(f.front.URL + "/api/" + fmt.Sprint(i))
						if err != nil {
							t.Error(err)
							return
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						switch by := servedBy(resp); {
						case by == "candidate" && string(b) == `"cand"`:
							served[1].Add(1)
						case by == "reference" && string(b) == `"ref"`:
							served[0].Add(1)
						default:
							t.Errorf("served by %q with body %s", by, b)
							return
						}
					}
				})
			}
			wg.Wait()
			got := served[1].Load()
			if served[0].Load()+got != n {
				t.Fatalf("%d answers, want %d", served[0].Load()+got, n)
			}
			// The counter is exact: floor(n * weight / 100).
			if want := int64(math.Floor(n * w / 100)); got != want {
				t.Errorf("candidate served %d, want exactly %d", got, want)
			}
			f.sink.none(t, f.proxy) // canary routes without shadow = true replay nothing
		})
	}
}

// TestCanaryMuleWindow: at 50 %, every 10 requests exactly 5 are served by
// the candidate.
func TestCanaryMuleWindow(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, jsonHandler(`"cand"`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), canaryRoute(t, canary.Config{Weight: 50}))
	for window := range 10 {
		n := 0
		for range 10 {
			if resp, _ := f.get(t, "/api/1"); servedBy(resp) == "candidate" {
				n++
			}
		}
		if n != 5 {
			t.Errorf("window %d: %d of 10 served by the candidate, want 5", window, n)
		}
	}
}

// TestCanaryBreakerAndOverride: a failing candidate trips the breaker; the
// reference serves; the override header still reaches the candidate; the
// header-presence rule does not.
func TestCanaryBreakerAndOverride(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	f := newFixture(t, Config{ServedByHeader: "X-Served"}, ref.url(), cand.url(),
		canaryRoute(t, canary.Config{Weight: 100, CanaryHeader: "X-Beta", Breaker: canary.BreakerConfig{MaxErrors: 3}}))

	for i := range 3 {
		resp, body := f.get(t, "/api/1")
		if resp.Header.Get("X-Served") != "candidate" || resp.StatusCode != 500 {
			t.Fatalf("request %d: %d %q served by %q; the candidate's answer is the client's", i, resp.StatusCode, body, resp.Header.Get("X-Served"))
		}
	}
	rt := f.proxy.Table().Routes()[0]
	if s := rt.Canary.Breaker().State(); s != canary.Open {
		t.Fatalf("breaker %v after 3 errors, want open", s)
	}
	if text := gatherText(t, f); !strings.Contains(text, `miffy_canary_breaker_state{route="/api/{value}"} 1`) ||
		!strings.Contains(text, `miffy_canary_breaker_transitions_total{from="closed",route="/api/{value}",to="open"} 1`) {
		t.Errorf("breaker metrics missing:\n%s", text)
	}
	resp, body := f.get(t, "/api/1")
	if resp.Header.Get("X-Served") != "reference" || body != `"ref"` {
		t.Errorf("open breaker: served by %q, body %s", resp.Header.Get("X-Served"), body)
	}
	resp, _ = f.do(t, "GET", "/api/1", "", "X-Beta", "yes")
	if resp.Header.Get("X-Served") != "reference" {
		t.Errorf("header rule with open breaker: served by %q", resp.Header.Get("X-Served"))
	}
	resp, _ = f.do(t, "GET", "/api/1", "", "X-Canary", "true")
	if resp.Header.Get("X-Served") != "candidate" || resp.StatusCode != 500 {
		t.Errorf("override with open breaker: served by %q, status %d", resp.Header.Get("X-Served"), resp.StatusCode)
	}
	rt.Canary.Breaker().Reset()
	resp, _ = f.do(t, "GET", "/api/1", "", "X-Canary", "false")
	if resp.Header.Get("X-Served") != "reference" {
		t.Errorf("override false: served by %q", resp.Header.Get("X-Served"))
	}
}

// gatherText renders the fixture's counters and gauges one per line:
// name{label="value",...} value (labels sorted by name).
func gatherText(t *testing.T, f *fixture) string {
	t.Helper()
	gs := prometheus.Gatherers{f.reg}
	for _, rt := range f.proxy.Table().Routes() {
		if reg, ok := canaryRegistries.Load(rt.Canary); ok {
			gs = append(gs, reg.(*prometheus.Registry))
		}
	}
	mfs, err := gs.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			fmt.Fprintf(&b, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

func TestCanaryHeaderPresence(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, jsonHandler(`"cand"`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), canaryRoute(t, canary.Config{Weight: 0, CanaryHeader: "x-beta"}))
	if resp, body := f.do(t, "GET", "/api/1", "", "X-BETA", ""); servedBy(resp) != "candidate" || body != `"cand"` {
		t.Errorf("with the header: served by %q", servedBy(resp))
	}
	if resp, _ := f.get(t, "/api/1"); servedBy(resp) != "reference" {
		t.Errorf("without the header: served by %q", servedBy(resp))
	}
}

// TestCanaryFallback: a candidate that cannot be reached gets an idempotent
// request retried on the reference; a POST gets the 502.
func TestCanaryFallback(t *testing.T) {
	ref := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "ref %s %s", r.Method, b)
	})
	cand := newUpstream(t, jsonHandler(`"cand"`))
	candURL := cand.url()
	cand.Close() // connection refused
	f := newFixture(t, Config{}, ref.url(), candURL, canaryRoute(t, canary.Config{Weight: 100, Breaker: canary.BreakerConfig{MaxErrors: 100}}))

	resp, body := f.do(t, "PUT", "/api/1", "payload")
	if resp.StatusCode != 200 || servedBy(resp) != "reference" || body != "ref PUT payload" {
		t.Errorf("PUT to a dead candidate: %d %q served by %q, want the reference's answer", resp.StatusCode, body, servedBy(resp))
	}
	if r := <-ref.seen; r.Header.Get(RoleHeader) != "reference" {
		t.Errorf("retry role %q", r.Header.Get(RoleHeader))
	}
	resp, _ = f.do(t, "POST", "/api/1", "payload")
	if resp.StatusCode != http.StatusBadGateway || servedBy(resp) != "candidate" {
		t.Errorf("POST to a dead candidate: %d served by %q, want 502 from the candidate", resp.StatusCode, servedBy(resp))
	}
	if got := testutil.ToFloat64(f.proxy.m.upstreamErrors.WithLabelValues("/api/{value}", "candidate", "refused")); got != 2 {
		t.Errorf("candidate errors %v, want 2", got)
	}
	text := gatherText(t, f)
	for _, want := range []string{
		`miffy_canary_fallbacks_total{route="/api/{value}"} 1`,
		`miffy_canary_errors_total{route="/api/{value}",side="candidate"} 2`,
		`miffy_canary_decisions_total{route="/api/{value}",rule="weight",side="candidate"} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCanaryWithShadow: at 30 %, the candidate serves 30 of 100 requests;
// the 70 the reference serves are replayed to the candidate, compared and
// published; the 30 are not replayed.
func TestCanaryWithShadow(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"v":"ref"}`))
	cand := newUpstream(t, jsonHandler(`{"v":"cand"}`))
	mod := canaryRoute(t, canary.Config{Weight: 30})
	f := newFixture(t, Config{}, ref.url(), cand.url(), func(rt *Route) { mod(rt); rt.Shadow = true })
	pub := &counter{}
	f.proxy.pub = &publish.Outlet{Sink: pub}

	served := map[string]int{}
	for i := range 100 {
		resp, body := f.get(t, fmt.Sprintf("/api/%d", i))
		served[servedBy(resp)]++
		if want := `{"v":"` + map[string]string{"candidate": "cand", "reference": "ref"}[servedBy(resp)] + `"}`; body != want {
			t.Fatalf("served by %q with body %s", servedBy(resp), body)
		}
	}
	if served["candidate"] != 30 || served["reference"] != 70 {
		t.Errorf("served %v, want 30 by the candidate and 70 by the reference", served)
	}
	if err := f.proxy.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := pub.n.Load(); n != 70 {
		t.Errorf("%d records published, want 70 (every request the reference served)", n)
	}
	if got := testutil.ToFloat64(f.proxy.m.replays.WithLabelValues("/api/{value}", "compared")); got != 70 {
		t.Errorf("compared replays %v, want 70", got)
	}
	// The candidate saw 30 client requests and 70 replays.
	cand.mu.Lock()
	roles := append([]string(nil), cand.roles...)
	cand.mu.Unlock()
	if len(roles) != 100 {
		t.Errorf("candidate called %d times, want 100", len(roles))
	}
}

// counter is a Publisher that counts.
type counter struct{ n atomic.Int64 }

func (c *counter) Publish(*publish.Record) bool { c.n.Add(1); return true }

// TestCanaryDecisionURLThroughProxy: the decision service gets the
// forwarded path and the body (which the candidate then gets whole), and
// the correlation id miffy made, as the candidate does.
func TestCanaryDecisionURLThroughProxy(t *testing.T) {
	var asked, askedID, candID atomic.Value
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		asked.Store(r.URL.Path + " " + string(b))
		askedID.Store(r.Header.Get("X-Request-Id"))
		w.WriteHeader(http.StatusOK)
	}))
	defer sidecar.Close()
	su, _ := url.Parse(sidecar.URL + "/sidecar")
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		candID.Store(r.Header.Get("X-Request-Id"))
		fmt.Fprintf(w, "cand %s %s", r.URL.Path, b)
	})
	mod := canaryRoute(t, canary.Config{DecisionURL: su})
	f := newFixture(t, Config{CanaryEvents: func(canary.Event) {}}, ref.url(), cand.url(), func(rt *Route) { mod(rt); rt.TrimPrefix = "/api" })
	resp, body := f.do(t, "POST", "/api/7", "the body")
	if servedBy(resp) != "candidate" || body != "cand /7 the body" {
		t.Errorf("served by %q: %q, want the candidate with the whole body", servedBy(resp), body)
	}
	if got := asked.Load(); got != "/sidecar/7 the body" {
		t.Errorf("sidecar asked %q", got)
	}
	if a, c := askedID.Load(), candID.Load(); a == "" || a != c {
		t.Errorf("X-Request-Id: the sidecar got %q, the candidate %q; want the same id", a, c)
	}
}

func TestCanaryStickyCookie(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, jsonHandler(`"cand"`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), canaryRoute(t, canary.Config{Weight: 50, StickyCookie: "mc"}))
	for range 10 {
		resp, _ := f.get(t, "/api/1")
		cookies := resp.Cookies()
		if len(cookies) != 1 || cookies[0].Name != "mc" {
			t.Fatalf("cookies %v", cookies)
		}
		side := servedBy(resp)
		for range 5 {
			again, _ := f.do(t, "GET", "/api/1", "", "Cookie", "mc="+cookies[0].Value)
			if servedBy(again) != side || len(again.Cookies()) != 0 {
				t.Fatalf("cookie %s: served by %q (was %q), cookies %v", cookies[0].Value, servedBy(again), side, again.Cookies())
			}
		}
	}
}

func TestTrimPrefixAndHostHeaders(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{}`))
	cand := newUpstream(t, jsonHandler(`{}`))
	f := newFixture(t, Config{}, ref.url(), cand.url(), func(rt *Route) {
		rt.TrimPrefix = "/api"
		rt.ReferenceHost = "ref.internal"
		rt.CandidateHost = "cand.internal:8080"
	})
	f.get(t, "/api/a%2Fb?x=1")
	r := <-ref.seen
	if r.URL.EscapedPath() != "/a%2Fb" || r.URL.RawQuery != "x=1" || r.Host != "ref.internal" {
		t.Errorf("reference got %s %q host %q", r.URL.EscapedPath(), r.URL.RawQuery, r.Host)
	}
	c := <-cand.seen
	if c.URL.EscapedPath() != "/a%2Fb" || c.Host != "cand.internal:8080" {
		t.Errorf("candidate got %s host %q", c.URL.EscapedPath(), c.Host)
	}
}

func TestForwardPath(t *testing.T) {
	tests := []struct{ prefix, in, want string }{
		{"", "/api/x", "/api/x"},
		{"/api", "/api/x", "/x"},
		{"/api/", "/api/x", "/x"},
		{"/api", "/api", "/"},
		{"/api", "/apix", "/apix"},
		{"/api", "/other", "/other"},
	}
	for _, tt := range tests {
		if got := (&Route{TrimPrefix: tt.prefix}).forwardPath(tt.in); got != tt.want {
			t.Errorf("forwardPath(%q) with trim_prefix %q = %q, want %q", tt.in, tt.prefix, got, tt.want)
		}
	}
}

// TestCanaryNoFallbackAfterAnswer: a candidate that has answered a head (a
// 101 to another protocol than the one asked for) is not retried on the
// reference: the client gets miffy's 502, and the reference is never sent
// a second handshake.
func TestCanaryNoFallbackAfterAnswer(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`"ref"`))
	cand := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
		brw.Flush()
	})
	f := newFixture(t, Config{AllowUpgrades: []string{"echo"}}, ref.url(), cand.url(), canaryRoute(t, canary.Config{Weight: 100, Breaker: canary.BreakerConfig{MaxErrors: 100}}))
	c, err := net.Dial("tcp", strings.TrimPrefix(serveFront(t, f.proxy), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /api/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want miffy's 502", resp.StatusCode)
	}
	if n := len(ref.seen); n != 0 {
		t.Errorf("the reference was sent %d requests after the candidate answered", n)
	}
}
