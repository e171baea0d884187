package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWarnings(t *testing.T) {
	const upstreams = "reference = \"http://ref.internal\"\ncandidate = \"http://cand.internal\"\n"
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"nothing to warn about", upstreams + "routes = [{ path = \"/api/{*rest}\", methods = [\"get\", \"POST\", \"PROPFIND\"] }]\n", nil},
		{"no routes", upstreams, []string{
			`routes: none configured; every request goes to the reference and nothing is shadowed (routes = [{ path = "/{*rest}" }] shadows everything)`,
		}},
		{"unknown methods", upstreams + "routes = [{ path = \"/a\", methods = [\"GETT\", \"GET\", \"FROBNICATE\"] }]\n", []string{
			`routes[0].methods[0]: "GETT" is not a standard HTTP method; the route matches it only if a client sends exactly that (did you mean "GET"?)`,
			`routes[0].methods[2]: "FROBNICATE" is not a standard HTTP method; the route matches it only if a client sends exactly that`,
		}},
		{"demo upstreams left in place", "routes = [{ path = \"/a\" }]\n", []string{
			`reference: "http://127.0.0.1:3000" is the demo's default; clients are answered from it (set reference to your service's URL)`,
			`candidate: "http://127.0.0.1:3001" is the demo's default; copies of routed requests go to it (set candidate to the version under test)`,
		}},
		{"demo candidate unused: every route names its own", "routes = [{ path = \"/a\", candidate = \"http://c\" }]\nreference = \"http://r\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Warnings(defaults(t))); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNearest(t *testing.T) {
	known := []string{"timeout", "max_in_flight", "sample", "bootstrap.servers"}
	tests := []struct{ in, want string }{
		{"timout", "timeout"},
		{"TIMEOUT", "timeout"},
		{"max_inflight", "max_in_flight"},
		{"bootstrap.server", "bootstrap.servers"},
		{"zzz", ""},
		{"timeout", ""}, // a known name needs no hint
	}
	for _, tt := range tests {
		if got := nearest(tt.in, known); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
