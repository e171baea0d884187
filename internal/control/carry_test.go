package control

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

// carryBuild builds a table as cmd/miffy's buildTable does, as far as
// Carry looks at it: one route per config route, a canary router at the
// route's weight on canary routes, the reference as the route's.
func carryBuild(t *testing.T) func(*config.Config) (*shadow.Table, error) {
	return func(cfg *config.Config) (*shadow.Table, error) {
		var routes []*shadow.Route
		for _, rc := range cfg.Routes {
			r := &shadow.Route{Name: rc.Name, Pattern: rc.Path, Reference: mustURL(t, rc.Reference), Candidate: mustURL(t, rc.Candidate), Sample: 1}
			if rc.Mode == config.ModeCanary {
				router, err := canary.NewRouter(canary.Config{Name: rc.Name, Weight: rc.Weight}, nil, zerolog.Nop())
				if err != nil {
					return nil, err
				}
				r.Canary = router
			}
			routes = append(routes, r)
		}
		return shadow.NewTable(mustURL(t, "http://ref.invalid"), routes)
	}
}

func carryConfig(weight float64, probes int) *config.Config {
	return &config.Config{Routes: []config.Route{
		{Name: "search", Path: "/s/{q}", Reference: "http://ref.invalid", Candidate: "http://cand.invalid", Mode: config.ModeShadow},
		{Name: "shop", Path: "/shop/{*rest}", Reference: "http://ref.invalid", Candidate: "http://cand.invalid", Mode: config.ModeCanary, Weight: weight, Probes: probes},
	}}
}

// TestCarry: a rebuild keeps a canary route's live router (its counter and
// breaker) while the route's settings are as they were, including across
// a reload with the same route; a changed route gets a new router. The
// overrides (upstreams, paused, weight) are applied on top.
func TestCarry(t *testing.T) {
	c := &Carry{Build: carryBuild(t)}
	t0, err := c.Builder(carryConfig(10, 1))(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	shop0 := findRoute(t0, "shop").Canary

	// Overrides only: the router is kept, its weight set; the paused and
	// the upstream overrides reach the routes.
	ov := map[string]Desired{
		"shop":   {Weight: ptr(40.0)},
		"search": {Paused: ptr(true), Candidate: ptr("http://v2.invalid")},
	}
	t1, err := c.Builder(carryConfig(10, 1))(ov, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := findRoute(t1, "shop").Canary; got != shop0 || got.Weight() != 40 {
		t.Errorf("same settings, weight override: router kept %v, weight %v; want the same router at 40", got == shop0, got.Weight())
	}
	search := findRoute(t1, "search")
	if !search.Paused || search.Candidate.String() != "http://v2.invalid" {
		t.Errorf("search: paused %v, candidate %s; want paused, http://v2.invalid", search.Paused, search.Candidate)
	}

	// A reload with the same route keeps it; with the route changed, a new
	// router at the file's weight.
	t2, err := c.Builder(carryConfig(10, 1))(nil, t1)
	if err != nil {
		t.Fatal(err)
	}
	if got := findRoute(t2, "shop").Canary; got != shop0 || got.Weight() != 10 {
		t.Errorf("reload, same route: router kept %v, weight %v; want the same router at the file's 10", got == shop0, got.Weight())
	}
	t3, err := c.Builder(carryConfig(10, 2))(nil, t2)
	if err != nil {
		t.Fatal(err)
	}
	if got := findRoute(t3, "shop").Canary; got == shop0 || got.Weight() != 10 {
		t.Errorf("reload, route changed: router kept %v, weight %v; want a new router at 10", got == shop0, got.Weight())
	}
}
