package control

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fixture: a shadow route "search" and a canary route "shop" at weight 10.
type fixture struct {
	m      *Manager
	proxy  *shadow.Proxy
	builds int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	build := func(ov map[string]Desired, prev *shadow.Table) (*shadow.Table, error) {
		f.builds++
		ref := mustURL(t, "http://ref.invalid")
		mk := func(name, pattern string) *shadow.Route {
			r := &shadow.Route{Name: name, Pattern: pattern, Reference: ref, Candidate: mustURL(t, "http://cand.invalid"), Comparer: cmp, Sample: 1}
			o := ov[name]
			if o.Reference != nil {
				r.Reference = mustURL(t, *o.Reference)
			}
			if o.Paused != nil {
				r.Paused = *o.Paused
			}
			return r
		}
		search, shop := mk("search", "/s/{q}"), mk("shop", "/shop/{*rest}")
		router, err := canary.NewRouter(canary.Config{Name: "shop", Weight: 10}, nil, zerolog.Nop())
		if err != nil {
			return nil, err
		}
		shop.Canary = router
		if w := ov["shop"].Weight; w != nil {
			router.SetWeight(*w)
		}
		return shadow.NewTable(ref, []*shadow.Route{search, shop})
	}
	table, err := build(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	f.proxy = shadow.New(shadow.Config{}, table, nil, nil, zerolog.Nop(), reg)
	t.Cleanup(func() { f.proxy.Close(t.Context()) })
	counters := func(route string) map[string]int64 {
		if route == "shop" {
			return map[string]int64{"served_candidate": 3}
		}
		return nil
	}
	f.m = NewManager(build, f.proxy, zerolog.Nop(), reg, counters)
	return f
}

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	f := newFixture(t)
	before := f.proxy.Table()

	st, err := f.m.Apply(Change{Route: "shop", Desired: Desired{Weight: ptr(25.0)}}, "admin", "test")
	if err != nil || st.Weight == nil || *st.Weight != 25 {
		t.Fatalf("set weight: %+v %v", st, err)
	}
	if f.proxy.Table() != before {
		t.Error("a weight change rebuilt the table (it must change the live route)")
	}

	st, err = f.m.Apply(Change{Route: "search", Desired: Desired{Reference: ptr("http://other.invalid:8080")}}, "admin", "test")
	if err != nil || st.Reference != "http://other.invalid:8080" {
		t.Fatalf("set reference: %+v %v", st, err)
	}
	if f.proxy.Table() == before {
		t.Error("an upstream change did not swap the table")
	}
	// The weight override survives the rebuild.
	for _, r := range f.m.Routes() {
		if r.Name == "shop" && (r.Weight == nil || *r.Weight != 25) {
			t.Errorf("weight after rebuild: %v", r.Weight)
		}
	}
	if o := f.m.Override("search"); o.Reference == nil {
		t.Errorf("override not kept: %+v", o)
	}

	if _, err := f.m.Apply(Change{Route: "search", Clear: true}, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	if o := f.m.Override("search"); !o.empty() {
		t.Errorf("clear left %+v", o)
	}
	if got := f.m.Routes()[0].Reference; got != "http://ref.invalid" {
		t.Errorf("after clear the reference is %q", got)
	}
}

func TestApplyRejects(t *testing.T) {
	tests := []struct {
		name string
		c    Change
		want string
	}{
		{"unknown route", Change{Route: "nope", Desired: Desired{Weight: ptr(1.0)}}, "no such route"},
		{"weight on a shadow route", Change{Route: "search", Desired: Desired{Weight: ptr(1.0)}}, "not a canary route"},
		{"weight out of range", Change{Route: "shop", Desired: Desired{Weight: ptr(101.0)}}, "between 0 and 100"},
		{"bad URL", Change{Route: "search", Desired: Desired{Candidate: ptr("ftp://x")}}, "candidate"},
		{"breaker on a shadow route", Change{Route: "search", ResetBreaker: true}, "reset_breaker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.proxy.Table()
			_, err := f.m.Apply(tt.c, "admin", "test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want an error with %q", err, tt.want)
			}
			if f.proxy.Table() != before {
				t.Error("a rejected change swapped the table")
			}
			if got := testutil.ToFloat64(f.m.changes.WithLabelValues("admin", "rejected")); got != 1 {
				t.Errorf("rejected changes = %v", got)
			}
		})
	}
}

func TestReloadRejectedKeepsServing(t *testing.T) {
	f := newFixture(t)
	before := f.proxy.Table()
	err := f.m.Reload(func() (Builder, error) { return nil, errors.New("routes[1].path: bad") }, 1)
	if err == nil || f.proxy.Table() != before {
		t.Fatalf("Reload = %v; table swapped %v", err, f.proxy.Table() != before)
	}
	if got := testutil.ToFloat64(f.m.reloads.WithLabelValues("rejected")); got != 1 {
		t.Errorf("rejected reloads = %v", got)
	}
}

func TestAdminHandler(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(AdminHandler(f.m, "tok"))
	defer srv.Close()
	call := func(method, token, body string) int {
		req, _ := http.NewRequest(method, srv.URL+"/admin/routes", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name, method, token, body string
		want                      int
	}{
		{"no token", "GET", "", "", 401},
		{"wrong token", "GET", "nope", "", 401},
		{"list", "GET", "tok", "", 200},
		{"change", "POST", "tok", `{"route":"shop","weight":5}`, 200},
		{"unknown route", "POST", "tok", `{"route":"x","weight":5}`, 404},
		{"unknown field", "POST", "tok", `{"route":"shop","wieght":5}`, 400},
		{"not JSON", "POST", "tok", `weight=5`, 400},
		{"change without token", "POST", "", `{"route":"shop","weight":50}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(tt.method, tt.token, tt.body); got != tt.want {
				t.Errorf("%s with token %q: %d, want %d", tt.method, tt.token, got, tt.want)
			}
		})
	}
	if w := f.m.Routes()[1].Weight; w == nil || *w != 5 {
		t.Errorf("weight %v, want 5 (the unauthenticated change must not apply)", w)
	}
}

// TestHeldUntilSynced: until the control topic has been read, canary
// routes stay at weight 0 through reloads and table rebuilds, unless a
// weight is set at runtime; resync restores the configured weight.
func TestHeldUntilSynced(t *testing.T) {
	shopWeight := func(f *fixture) float64 {
		t.Helper()
		for _, r := range f.proxy.Table().Routes() {
			if r.Name == "shop" {
				return r.Canary.Weight()
			}
		}
		t.Fatal("no route shop")
		return 0
	}
	reload := func(f *fixture) {
		t.Helper()
		if err := f.m.Reload(func() (Builder, error) { return f.m.build, nil }, 1); err != nil {
			t.Fatal(err)
		}
	}

	f := newFixture(t)
	f.m.safeState()
	if w := shopWeight(f); w != 0 {
		t.Fatalf("after safeState: weight %v, want 0", w)
	}
	reload(f)
	if w := shopWeight(f); w != 0 {
		t.Errorf("a reload while held: weight %v, want 0", w)
	}
	if _, err := f.m.Apply(Change{Route: "search", Desired: Desired{Reference: ptr("http://other.invalid")}}, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	if w := shopWeight(f); w != 0 {
		t.Errorf("a rebuild while held: weight %v, want 0", w)
	}
	f.m.resync()
	if w := shopWeight(f); w != 10 {
		t.Errorf("after resync: weight %v, want the configured 10", w)
	}
	reload(f)
	if w := shopWeight(f); w != 10 {
		t.Errorf("a reload after resync: weight %v, want 10", w)
	}

	// A weight set at runtime while held is an operator's choice: kept.
	f = newFixture(t)
	f.m.safeState()
	if _, err := f.m.Apply(Change{Route: "shop", Desired: Desired{Weight: ptr(30.0)}}, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	reload(f)
	if w := shopWeight(f); w != 30 {
		t.Errorf("a reload while held after set-weight 30: weight %v, want 30", w)
	}
}

// TestRoutesCounters: each route's counters are what the proxy's own
// counter source gives for it, by the route's name.
func TestRoutesCounters(t *testing.T) {
	f := newFixture(t)
	got := map[string]map[string]int64{}
	for _, st := range f.m.Routes() {
		got[st.Name] = st.Counters
	}
	want := map[string]map[string]int64{"search": nil, "shop": {"served_candidate": 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters by route (-want +got):\n%s", diff)
	}
}
