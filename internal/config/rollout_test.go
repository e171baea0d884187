package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const rolloutFile = `
[control]
topic = "miffy-control"

[rollout]
interval = "2m"

[[routes]]
path = "/shop/{*rest}"
name = "shop"
mode = "canary"
shadow = true
verdict = { min_compared = 50 }
[routes.rollout]
steps = [1, 5, 25, 50, 100]
interval = "5m"
shadow_first = false

[[routes]]
path = "/cart/{*rest}"
name = "cart"
mode = "canary"
shadow = true
[routes.rollout]
steps = [10, 100]
`

func TestLoadRollout(t *testing.T) {
	c, err := load(t, rolloutFile)
	if err != nil {
		t.Fatal(err)
	}
	no, yes := false, true
	want := []*RouteRollout{
		{Steps: []float64{1, 5, 25, 50, 100}, Interval: 5 * time.Minute, ShadowFirst: &no, MaxInconclusive: 30 * time.Minute},
		{Steps: []float64{10, 100}, Interval: 2 * time.Minute, ShadowFirst: &yes, MaxInconclusive: 30 * time.Minute},
	}
	var got []*RouteRollout
	for _, r := range c.Routes {
		if r.Rollout != nil {
			got = append(got, r.Rollout)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved rollouts (-want +got):\n%s", diff)
	}
	if got := c.Verdict.With(c.Routes[0].Verdict).MinCompared; got != 50 {
		t.Errorf("shop's min_compared = %d, want its own 50", got)
	}
}

func TestValidateRollout(t *testing.T) {
	route := func(change func(r *RouteRollout)) func(c *Config) {
		return func(c *Config) {
			rr := &RouteRollout{Steps: []float64{1, 5, 100}}
			change(rr)
			c.Control.Topic = "miffy-control"
			c.Routes = []Route{{Path: "/s", Name: "/s", Mode: "shadow"}, {Path: "/a/{id}", Name: "a", Mode: "canary", Shadow: true, Rollout: rr}}
		}
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // each must appear; nil means valid
	}{
		{"valid", route(func(r *RouteRollout) {}), nil},
		{"no steps", route(func(r *RouteRollout) { r.Steps = nil }), []string{"routes[1].rollout.steps: required"}},
		{"steps fall", route(func(r *RouteRollout) { r.Steps = []float64{5, 1, 100} }), []string{"routes[1].rollout.steps[1]: 1 does not rise above steps[0] (5)"}},
		{"steps out of range", route(func(r *RouteRollout) { r.Steps = []float64{0, 150} }), []string{"routes[1].rollout.steps[0]: 0 is not a weight", "routes[1].rollout.steps[1]: 150 is not a weight", "routes[1].rollout.steps: must end at 100 (ends at 150)"}},
		{"steps do not end at 100", route(func(r *RouteRollout) { r.Steps = []float64{1, 50} }), []string{"routes[1].rollout.steps: must end at 100 (ends at 50)"}},
		{"negative durations", route(func(r *RouteRollout) { r.Interval, r.MaxInconclusive = -time.Second, -time.Second }), []string{"routes[1].rollout.interval: -1s must be more than 0s", "routes[1].rollout.max_inconclusive: -1s is negative"}},
		{"shadow route", func(c *Config) {
			c.Control.Topic = "miffy-control"
			c.Routes = []Route{{Path: "/s", Name: "/s", Mode: "shadow", Rollout: &RouteRollout{Steps: []float64{100}}}}
		}, []string{`routes[0].rollout: only for mode = "canary"`}},
		{"canary route without shadow", func(c *Config) {
			route(func(r *RouteRollout) {})(c)
			c.Routes[1].Shadow = false
		}, []string{"routes[1].rollout: needs shadow = true"}},
		{"no control topic", func(c *Config) {
			route(func(r *RouteRollout) {})(c)
			c.Control.Topic = ""
		}, []string{"control.topic: required by routes with a rollout"}},
		{"section", func(c *Config) {
			c.Rollout.Topic, c.Rollout.LeaseTopic = "miffy-tallies", ""
			c.Rollout.LeaseTimeout, c.Rollout.EvaluateEvery, c.Rollout.Interval, c.Rollout.MaxInconclusive = 100*time.Millisecond, 0, 0, -1
		}, []string{`rollout.topic: must differ from report.tally_topic ("miffy-tallies")`, "rollout.lease_topic:", "rollout.lease_timeout: 100ms is less than 1s",
			"rollout.evaluate_every:", "rollout.interval:", "rollout.max_inconclusive:"}},
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
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
