package canary

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRouter(t *testing.T, cfg Config) *Router {
	t.Helper()
	return newRouterIn(t, cfg, nil)
}

// testConfig is cfg completed as the config layer completes it: the
// fields cfg leaves zero take config.default.toml's [canary] values.
func testConfig(cfg Config) Config {
	if cfg.OverrideHeader == "" {
		cfg.OverrideHeader = "X-Canary"
	}
	if cfg.DecisionTimeout == 0 {
		cfg.DecisionTimeout = time.Second
	}
	if cfg.DecisionMaxBodyBytes == 0 {
		cfg.DecisionMaxBodyBytes = 64 << 10
	}
	return cfg
}

// newRouterIn is newRouter counting into m.
func newRouterIn(t *testing.T, cfg Config, m *Metrics) *Router {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "r"
	}
	r, err := NewRouter(testConfig(cfg), m, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func get(t testing.TB, header ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestWeightShare(t *testing.T) {
	for _, w := range []float64{0, 0.1, 1, 12.5, 30, 50, 99.9, 100} {
		t.Run(strconv.FormatFloat(w, 'f', -1, 64), func(t *testing.T) {
			r := newRouter(t, Config{Weight: w})
			const n = 10000
			cand := 0
			for i := 1; i <= n; i++ {
				d := r.Decide(get(t), nil, "/x", nil)
				if d.Rule != RuleWeight {
					t.Fatalf("rule %q, want weight", d.Rule)
				}
				if d.Side == Candidate {
					cand++
				}
				// Exact at every prefix: within one request of the weight.
				if want := float64(i) * w / 100; math.Abs(float64(cand)-want) >= 1 {
					t.Fatalf("after %d requests %d went to the candidate, want %.2f±1", i, cand, want)
				}
			}
			share := 100 * float64(cand) / n
			if math.Abs(share-w) > 1 {
				t.Errorf("share %.2f %%, want %v±1", share, w)
			}
			if (w == 0 || w == 100) && share != w {
				t.Errorf("share %.4f %%, want exactly %v", share, w)
			}
		})
	}
}

// TestWeightMuleWindow: at 50 %, every window of 10 requests has exactly 5
// for the candidate (Mule's policy counts per 10 requests).
func TestWeightMuleWindow(t *testing.T) {
	r := newRouter(t, Config{Weight: 50})
	sides := make([]Side, 1000)
	for i := range sides {
		sides[i] = r.Decide(get(t), nil, "/x", nil).Side
	}
	for start := 0; start+10 <= len(sides); start++ {
		n := 0
		for _, s := range sides[start : start+10] {
			if s == Candidate {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("requests %d..%d: %d for the candidate, want 5", start, start+9, n)
		}
	}
}

// TestWeightConcurrent: the counter stays exact under concurrent requests.
func TestWeightConcurrent(t *testing.T) {
	r := newRouter(t, Config{Weight: 12.5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	cand := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 1000 {
				if r.Decide(get(t), nil, "/x", nil).Side == Candidate {
					n++
				}
			}
			mu.Lock()
			cand += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if cand != 1000 {
		t.Errorf("%d of 8000 to the candidate, want exactly 1000", cand)
	}
}

func TestSetWeight(t *testing.T) {
	r := newRouter(t, Config{Weight: 10})
	if err := r.SetWeight(101); err == nil {
		t.Error("SetWeight(101) succeeded")
	}
	if err := r.SetWeight(25); err != nil {
		t.Fatal(err)
	}
	if r.Weight() != 25 {
		t.Errorf("Weight() = %v, want 25", r.Weight())
	}
	cand := 0
	for range 100 {
		if r.Decide(get(t), nil, "/x", nil).Side == Candidate {
			cand++
		}
	}
	if cand != 25 {
		t.Errorf("%d of 100 after SetWeight(25)", cand)
	}
	if got := r.State(); got != (Status{Name: "r", Weight: 25, Breaker: "closed"}) {
		t.Errorf("State() = %+v", got)
	}
}

// TestStickyMonotonic: a key never leaves the candidate as the weight rises,
// and the same key always lands on the same side for a given weight.
func TestStickyMonotonic(t *testing.T) {
	r := newRouter(t, Config{Weight: 0, StickyKey: "header:X-User"})
	const keys = 5000
	onCandidate := make([]bool, keys)
	for _, w := range []float64{0, 0.1, 1, 5, 12.5, 30, 50, 75, 99.9, 100} {
		if err := r.SetWeight(w); err != nil {
			t.Fatal(err)
		}
		cand := 0
		for k := range keys {
			user := fmt.Sprintf("user-%d", k)
			d := r.Decide(get(t, "X-User", user), nil, "/x", nil)
			if d.Rule != RuleSticky {
				t.Fatalf("rule %q, want sticky", d.Rule)
			}
			if again := r.Decide(get(t, "X-User", user), nil, "/x", nil); again.Side != d.Side {
				t.Fatalf("weight %v: %s flipped between two requests", w, user)
			}
			if onCandidate[k] && d.Side != Candidate {
				t.Fatalf("weight %v: %s moved back to the reference", w, user)
			}
			onCandidate[k] = d.Side == Candidate
			if onCandidate[k] {
				cand++
			}
		}
		if share := 100 * float64(cand) / keys; math.Abs(share-w) > 2 {
			t.Errorf("weight %v: %.2f %% of keys on the candidate", w, share)
		}
		if (w == 0 && cand != 0) || (w == 100 && cand != keys) {
			t.Errorf("weight %v: %d keys on the candidate", w, cand)
		}
	}
}

type params map[string]string

func (p params) Get(name string) (string, bool) { v, ok := p[name]; return v, ok }

func TestStickyKeys(t *testing.T) {
	tests := []struct {
		key string
		req func() (*http.Request, Params)
	}{
		{"header:X-User", func() (*http.Request, Params) { return get(t, "X-User", "u1"), nil }},
		{"cookie:session", func() (*http.Request, Params) { return get(t, "Cookie", "session=u1"), nil }},
		{"param:id", func() (*http.Request, Params) { return get(t), params{"id": "u1"} }},
		{"client_ip", func() (*http.Request, Params) { r := get(t); r.RemoteAddr = "u1:5555"; return r, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			r := newRouter(t, Config{Weight: 50, StickyKey: tt.key})
			want := sideOf(hashKey("u1") < 0.5)
			for range 5 {
				req, ps := tt.req()
				if d := r.Decide(req, ps, "/x", nil); d.Side != want || d.Rule != RuleSticky {
					t.Fatalf("Decide = %v/%s, want %v/sticky", d.Side, d.Rule, want)
				}
			}
			// Without the key: the weight counter.
			if tt.key == "client_ip" {
				return // a request always has an address
			}
			if d := r.Decide(get(t), params{}, "/x", nil); d.Rule != RuleWeight {
				t.Errorf("no key: rule %q, want weight", d.Rule)
			}
		})
	}
}

func TestStickyCookie(t *testing.T) {
	r := newRouter(t, Config{Weight: 30, StickyCookie: "miffy_canary"})
	for i := range 200 {
		d := r.Decide(get(t), nil, "/x", nil)
		if d.Cookie == nil {
			t.Fatal("no cookie set for a new client")
		}
		a, ok := ParseAssignment(d.Cookie.Value)
		if !ok || (a < 0.3) != (d.Side == Candidate) {
			t.Fatalf("request %d: cookie %q does not match side %v", i, d.Cookie.Value, d.Side)
		}
		// The browser comes back with it: same side, no new cookie.
		for range 3 {
			again := r.Decide(get(t, "Cookie", "miffy_canary="+d.Cookie.Value), nil, "/x", nil)
			if again.Side != d.Side || again.Rule != RuleSticky || again.Cookie != nil {
				t.Fatalf("cookie %s: %v/%s cookie %v, want %v/sticky and no cookie", d.Cookie.Value, again.Side, again.Rule, again.Cookie, d.Side)
			}
		}
	}
	// Stored assignments as maxwells-daemon's: 0.25 < 30 %.
	if d := r.Decide(get(t, "Cookie", "miffy_canary=0.25"), nil, "/x", nil); d.Side != Candidate {
		t.Errorf("cookie 0.25 at 30 %%: %v", d.Side)
	}
	if d := r.Decide(get(t, "Cookie", "miffy_canary=0.75"), nil, "/x", nil); d.Side != Reference {
		t.Errorf("cookie 0.75 at 30 %%: %v", d.Side)
	}
	// An invalid cookie is replaced.
	if d := r.Decide(get(t, "Cookie", "miffy_canary=1.5"), nil, "/x", nil); d.Rule != RuleWeight || d.Cookie == nil {
		t.Errorf("invalid cookie: %s, cookie %v", d.Rule, d.Cookie)
	}
}

func TestOverrideAndHeader(t *testing.T) {
	clk := newClock()
	r := newRouter(t, Config{Weight: 0, CanaryHeader: "x-beta", Breaker: BreakerConfig{MaxErrors: 1}, Now: clk.now})
	tests := []struct {
		name   string
		header []string
		side   Side
		rule   Rule
	}{
		{"override true", []string{"X-Canary", "true"}, Candidate, RuleOverride},
		{"override false beats the header", []string{"X-Canary", "false", "X-Beta", "1"}, Reference, RuleOverride},
		{"override other values ignored", []string{"X-Canary", "TRUE"}, Reference, RuleWeight},
		{"header present, any value", []string{"X-BETA", ""}, Candidate, RuleHeader},
		{"header absent", nil, Reference, RuleWeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := r.Decide(get(t, tt.header...), nil, "/x", nil)
			if d.Side != tt.side || d.Rule != tt.rule {
				t.Errorf("Decide = %v/%s, want %v/%s", d.Side, d.Rule, tt.side, tt.rule)
			}
		})
	}

	// Trip the breaker: the header rule yields, the override does not.
	r.Report(Decision{Side: Candidate}, Outcome{Side: Candidate, Status: 500})
	if s := r.Breaker().State(); s != Open {
		t.Fatalf("breaker %v, want open", s)
	}
	if d := r.Decide(get(t, "X-Beta", "1"), nil, "/x", nil); d.Side != Reference || d.Rule != RuleBreaker {
		t.Errorf("header with open breaker: %v/%s, want reference/breaker", d.Side, d.Rule)
	}
	if d := r.Decide(get(t, "X-Canary", "true"), nil, "/x", nil); d.Side != Candidate || d.Rule != RuleOverride {
		t.Errorf("override with open breaker: %v/%s, want candidate/override", d.Side, d.Rule)
	}
}

func TestDecisionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r := newRouterIn(t, Config{Name: "shop", Weight: 50}, m)
	for range 10 {
		r.Decide(get(t), nil, "/x", nil)
	}
	r.Decide(get(t, "X-Canary", "true"), nil, "/x", nil)
	if got := testutil.ToFloat64(m.decisions.WithLabelValues("shop", "candidate", "weight")); got != 5 {
		t.Errorf("decisions{candidate,weight} = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.decisions.WithLabelValues("shop", "candidate", "override")); got != 1 {
		t.Errorf("decisions{candidate,override} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.weight.WithLabelValues("shop")); got != 50 {
		t.Errorf("weight gauge = %v, want 50", got)
	}
}

// TestZeroConfig: the router invents no defaults. Without an override
// header no header overrides; without a body cap the decision service
// gets no body.
func TestZeroConfig(t *testing.T) {
	r, err := NewRouter(Config{Name: "z"}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if d := r.Decide(get(t, "X-Canary", "true"), nil, "/x", nil); d.Side != Reference || d.Rule != RuleWeight {
		t.Errorf("X-Canary with no override_header: %v/%s, want reference/weight", d.Side, d.Rule)
	}
	if n := r.BodyLimit(); n != 0 {
		t.Errorf("BodyLimit without a decision service = %d", n)
	}
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL)
	r2, err := NewRouter(Config{Name: "z", DecisionURL: base}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Close)
	if n := r2.BodyLimit(); n != 0 {
		t.Errorf("BodyLimit with decision_max_body_bytes = 0: %d", n)
	}
	r2.Decide(httptest.NewRequest(http.MethodPost, "/ok", strings.NewReader("body")), nil, "/ok", nil)
	if got := sc.calls()[0]; got.body != "" {
		t.Errorf("sidecar got body %q, want none", got.body)
	}
}
