package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestZeros: a key set to zero either means what config.default.toml says
// (and Load keeps the zero for the package, whose field says the same) or
// is refused naming the key. None validates and then turns into a default
// somewhere else.
func TestZeros(t *testing.T) {
	tests := []struct {
		file string
		want string // the error; "" when the zero is valid
		got  func(c *Config) any
	}{
		{"[shadow]\nmax_body_bytes = 0", "shadow.max_body_bytes: 0 is less than 1", nil},
		{"[proxy]\nread_header_timeout = \"0s\"", "proxy.read_header_timeout: 0s must be more than 0s", nil},
		{"[proxy]\nidle_timeout = \"0s\"", "proxy.idle_timeout: 0s must be more than 0s", nil},
		{"[canary]\ndecision_max_body_bytes = 0", "canary.decision_max_body_bytes: 0 is less than 1", nil},
		{"[kafka]\ndelivery_timeout = \"500ms\"", "kafka.delivery_timeout: want 0s (no limit) or at least 1s, got 500ms", nil},
		{"[compare]\ncanonicalize_timeout = \"0s\"", "compare.canonicalize_timeout: must be more than 0s", nil},
		{"[noise]\nrelative = 0", "noise.relative: 0 is not more than 0 and at most 1", nil},
		{"[noise]\nabsolute = 0", "noise.absolute: 0 is not more than 0 and at most 1", nil},
		// Zeros that mean something: no idle limit, exact ties, no body
		// bytes in records, no retry limit.
		{"[proxy]\nupstream_idle_timeout = \"0s\"", "", func(c *Config) any { return c.Proxy.UpstreamIdleTimeout }},
		{"[report]\nlatency_tie = \"0s\"", "", func(c *Config) any { return c.Report.LatencyTie }},
		{"[publish]\nmax_body_bytes = 0", "", func(c *Config) any { return c.Publish.MaxBodyBytes }},
		{"[kafka]\ndelivery_timeout = \"0s\"", "", func(c *Config) any { return c.Kafka.DeliveryTimeout }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := load(t, tt.file)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := reflect.ValueOf(tt.got(c)); !got.IsZero() {
				t.Errorf("loaded %v, want the zero kept", got)
			}
		})
	}
}

// TestDefaultsHaveNoAccidentalZero: every number and duration the embedded
// defaults leave at zero is one whose zero config.default.toml documents.
func TestDefaultsHaveNoAccidentalZero(t *testing.T) {
	c, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	documented := []string{
		"Proxy.MaxRequestBodyBytes", // 0 = no limit
		"Compare.FloatTolerance",    // 0 = exact
		"Kafka.DeliveryTimeout",     // "0s" = retry until shutdown
		"Canary.DecisionCacheTTL",   // "0s" = not kept
		"Control.StaleAfter",        // "0s" = off
	}
	var zeros []string
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			name := prefix + f.Name
			switch fv.Kind() {
			case reflect.Struct:
				walk(name+".", fv)
			case reflect.Int, reflect.Int64, reflect.Float64:
				if fv.IsZero() && !slices.Contains(documented, name) {
					zeros = append(zeros, name)
				}
			}
		}
	}
	walk("", reflect.ValueOf(*c))
	if len(zeros) > 0 {
		t.Errorf("zero in the defaults, not documented as meaning zero: %v", zeros)
	}
}

// TestResolve: after Load a route holds every value that applies to it;
// the [canary] defaults fill what a canary route leaves at zero.
func TestResolve(t *testing.T) {
	c, err := load(t, `
[shadow]
sample = 0.25
[canary]
window = "2m"
decision_cache_ttl = "5s"
[[routes]]
path = "/a"
[[routes]]
path = "/c"
mode = "canary"
cooldown = "1s"
[[routes]]
path = "/k"
mode = "canary"
sticky_key = "header:X-User"
`)
	if err != nil {
		t.Fatal(err)
	}
	quarter, no := 0.25, false
	base := Route{Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001", AllowSideEffects: &no, Sample: &quarter, Publish: "mismatches", PublishNoise: &no}
	shadowRoute, canaryRoute, keyed := base, base, base
	shadowRoute.Path, shadowRoute.Name, shadowRoute.Mode = "/a", "/a", ModeShadow
	canaryRoute.Path, canaryRoute.Name, canaryRoute.Mode = "/c", "/c", ModeCanary
	canaryRoute.OverrideHeader, canaryRoute.DecisionTimeout, canaryRoute.Window, canaryRoute.Cooldown, canaryRoute.Probes = "X-Canary", time.Second, 2*time.Minute, time.Second, 5
	keyed.Path, keyed.Name, keyed.Mode, keyed.StickyKey = "/k", "/k", ModeCanary, "header:X-User"
	keyed.OverrideHeader, keyed.DecisionTimeout, keyed.Window, keyed.Cooldown, keyed.Probes = "X-Canary", time.Second, 2*time.Minute, 30*time.Second, 5
	keyed.DecisionCacheTTL = 5 * time.Second // only where a sticky key keys the cache
	want := []Route{shadowRoute, canaryRoute, keyed}
	if diff := cmp.Diff(want, c.Routes); diff != "" {
		t.Errorf("routes (-want +got)\n%s", diff)
	}
	again := *c
	again.Routes = slices.Clone(c.Routes)
	again.Resolve()
	if diff := cmp.Diff(c.Routes, again.Routes); diff != "" {
		t.Errorf("Resolve twice changed routes (-once +twice)\n%s", diff)
	}
	if err := again.Validate(); err != nil {
		t.Errorf("Validate after Resolve: %v", err)
	}
}
