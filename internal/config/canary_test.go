package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const canaryFile = `
[canary]
cooldown = "10s"
socket = "/tmp/miffy-test.sock"
socket_route = "shop"

[metrics]
statsd = "127.0.0.1:8125"

[proxy]
debug_requests = true

[[routes]]
path = "/api/{value}"
trim_prefix = "/api"
reference_host_header = "api.internal"

[[routes]]
path = "/shop/{id}"
name = "shop"
mode = "canary"
weight = 12.5
sticky_key = "param:id"
sticky_cookie = "miffy_canary"
canary_header = "X-Beta"
decision_url = "http://127.0.0.1:7000/decide"
decision_timeout = "250ms"
decision_cache_ttl = "1m"
max_errors = 5
max_error_rate = 0.5
window = "30s"
max_requests = 100
max_rps = 2.5
probes = 3
shadow = true
candidate_host_header = "shop-v2.internal"
`

func TestLoadCanary(t *testing.T) {
	c, err := load(t, canaryFile, "MIFFY_CANARY__PROBES=7")
	if err != nil {
		t.Fatal(err)
	}
	no, all := false, 1.0
	want := Route{
		Path: "/shop/{id}", Name: "shop", Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001",
		// Resolved: what the route leaves out, from [shadow], [publish],
		// [noise] and [canary] (cooldown "10s" in the file).
		AllowSideEffects: &no, Sample: &all, Publish: "mismatches", PublishNoise: &no,
		OverrideHeader: "X-Canary", Cooldown: 10 * time.Second,
		CandidateHostHeader: "shop-v2.internal",
		Mode:                "canary", Weight: 12.5, StickyKey: "param:id", StickyCookie: "miffy_canary", CanaryHeader: "X-Beta",
		DecisionURL: "http://127.0.0.1:7000/decide", DecisionTimeout: 250 * time.Millisecond, DecisionCacheTTL: time.Minute,
		MaxErrors: 5, MaxErrorRate: 0.5, Window: 30 * time.Second, MaxRequests: 100, MaxRPS: 2.5, Probes: 3, Shadow: true,
	}
	if diff := cmp.Diff(want, c.Routes[1]); diff != "" {
		t.Errorf("routes[1] (-want +got)\n%s", diff)
	}
	if r := c.Routes[0]; r.Mode != "shadow" || r.TrimPrefix != "/api" || r.ReferenceHostHeader != "api.internal" {
		t.Errorf("routes[0] = %+v", r)
	}
	wantCanary := Canary{
		OverrideHeader: "X-Canary", ServedByHeader: "X-Miffy-Served-By", DecisionTimeout: time.Second,
		DecisionMaxBodyBytes: 65536, Window: time.Minute, MinRequests: 10, Cooldown: 10 * time.Second, Probes: 7,
		Socket: "/tmp/miffy-test.sock", SocketRoute: "shop",
	}
	if diff := cmp.Diff(wantCanary, c.Canary); diff != "" {
		t.Errorf("[canary] (-want +got)\n%s", diff)
	}
	if c.Metrics.Statsd != "127.0.0.1:8125" || !c.Proxy.DebugRequests || c.Proxy.DebugBodies {
		t.Errorf("metrics.statsd %q, proxy.debug_requests %v, debug_bodies %v", c.Metrics.Statsd, c.Proxy.DebugRequests, c.Proxy.DebugBodies)
	}
	if got := c.CanarySocketRoute(); got != "shop" {
		t.Errorf("CanarySocketRoute() = %q, want shop", got)
	}

	// The effective config loads back to the same.
	path := filepath.Join(t.TempDir(), "masked.toml")
	if err := os.WriteFile(path, []byte(c.Masked()), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(defaults(t), path, nil)
	if err != nil {
		t.Fatalf("loading Masked output: %v\n%s", err, c.Masked())
	}
	if diff := cmp.Diff(c, again); diff != "" {
		t.Errorf("Masked round trip (-want +got)\n%s", diff)
	}
}

func TestValidateCanary(t *testing.T) {
	canaryRoute := func(change func(r *Route)) func(c *Config) {
		return func(c *Config) {
			r := Route{Path: "/a/{id}", Name: "a", Mode: "canary", Weight: 10}
			change(&r)
			c.Routes = []Route{{Path: "/s", Name: "/s", Mode: "shadow"}, {Path: "/t", Name: "/t", Mode: "shadow"}, r}
		}
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // each must appear; nil means valid
	}{
		{"valid canary route", canaryRoute(func(r *Route) { r.StickyKey = "param:id"; r.Weight = 0.1 }), nil},
		{"weight over 100", canaryRoute(func(r *Route) { r.Weight = 150 }), []string{"routes[2].weight: must be between 0 and 100"}},
		{"negative weight", canaryRoute(func(r *Route) { r.Weight = -1 }), []string{"routes[2].weight: must be between 0 and 100"}},
		{"bad mode", canaryRoute(func(r *Route) { r.Mode = "blue-green" }), []string{`routes[2].mode: "blue-green" is not one of "shadow", "canary"`}},
		{"canary keys on a shadow route", func(c *Config) {
			c.Routes = []Route{{Path: "/s", Name: "/s", Mode: "shadow", Weight: 5, Shadow: true}}
		}, []string{`routes[0].weight: only for mode = "canary"`, `routes[0].shadow: only for mode = "canary"`}},
		{"sticky key", canaryRoute(func(r *Route) { r.StickyKey = "query:x" }), []string{"routes[2].sticky_key:"}},
		{"sticky param missing from path", canaryRoute(func(r *Route) { r.StickyKey = "param:user" }), []string{`routes[2].sticky_key: "param:user": the path "/a/{id}" has no parameter "user"`}},
		{"names", canaryRoute(func(r *Route) {
			r.StickyCookie = "a b"
			r.CanaryHeader = "X:Y"
			r.OverrideHeader = "X Y"
		}), []string{"routes[2].sticky_cookie", "routes[2].canary_header", "routes[2].override_header"}},
		{"decision url", canaryRoute(func(r *Route) { r.DecisionURL = "ftp://x" }), []string{"routes[2].decision_url"}},
		{"cache without key", canaryRoute(func(r *Route) { r.DecisionURL = "http://x"; r.DecisionCacheTTL = time.Second }), []string{"routes[2].decision_cache_ttl: decisions are cached per sticky key"}},
		{"limits", canaryRoute(func(r *Route) {
			r.MaxErrors, r.MaxRequests, r.Probes = -1, -1, -1
			r.MaxErrorRate, r.MaxRPS = 2, -1
			r.Window, r.Cooldown = -time.Second, -time.Second
		}), []string{"routes[2].max_errors", "routes[2].max_requests", "routes[2].probes", "routes[2].max_error_rate", "routes[2].max_rps", "routes[2].window", "routes[2].cooldown"}},
		{"forwarding keys", func(c *Config) {
			c.Routes = []Route{{Path: "/s", Name: "/s", Mode: "shadow", TrimPrefix: "api", ReferenceHostHeader: "a b"}}
		}, []string{"routes[0].trim_prefix", "routes[0].reference_host_header"}},
		{"socket route unknown", func(c *Config) { c.Canary.SocketRoute = "nope" }, []string{`canary.socket_route: "nope" is not the name of a route with mode = "canary"`}},
		{"socket without canary route", func(c *Config) { c.Canary.Socket = "/tmp/x.sock" }, []string{"canary.socket:"}},
		{"canary section", func(c *Config) {
			c.Canary.Probes, c.Canary.MinRequests = 0, 0
			c.Canary.Window, c.Canary.Cooldown, c.Canary.DecisionTimeout = 0, 0, 0
			c.Canary.ServedByHeader = ""
		}, []string{"canary.probes", "canary.min_requests", "canary.window", "canary.cooldown", "canary.decision_timeout", "canary.served_by_header"}},
		{"statsd", func(c *Config) { c.Metrics.Statsd = "localhost" }, []string{"metrics.statsd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "")
			if err != nil {
				t.Fatal(err)
			}
			tt.change(c)
			err = c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
