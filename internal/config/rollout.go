package config

import (
	"fmt"
	"time"

	"github.com/miffy-proxy/miffy/internal/rollout"
)

// Rollout is the [rollout] section: the controller (`miffy rollout`) and
// the defaults of the routes' [routes.rollout] tables.
type Rollout struct {
	// Topic holds the decisions and the operators' commands.
	Topic string `koanf:"topic"`
	// LeaseTopic is the one-partition topic whose consumer group (named
	// after it) elects the one controller that acts.
	LeaseTopic string `koanf:"lease_topic"`
	// LeaseTimeout is the group session timeout: how long a controller
	// that died keeps the lease.
	LeaseTimeout  time.Duration `koanf:"lease_timeout"`
	EvaluateEvery time.Duration `koanf:"evaluate_every"`
	// ControllerID names the controller in its decisions; empty:
	// hostname-pid.
	ControllerID string `koanf:"controller_id"`
	// Defaults of [routes.rollout].
	Interval        time.Duration `koanf:"interval"`
	ShadowFirst     bool          `koanf:"shadow_first"`
	MaxInconclusive time.Duration `koanf:"max_inconclusive"`
}

// RouteRollout is a route's [routes.rollout] table; zero and unset keys
// take [rollout]'s.
type RouteRollout struct {
	Steps           []float64     `koanf:"steps"`
	Interval        time.Duration `koanf:"interval"`
	ShadowFirst     *bool         `koanf:"shadow_first"`
	MaxInconclusive time.Duration `koanf:"max_inconclusive"`
}

// RolloutRoutes returns the rollouts of the routes that have one, with
// [rollout]'s defaults and the route's verdict limits filled in.
func (c *Config) RolloutRoutes() []rollout.Route {
	var out []rollout.Route
	for i := range c.Routes {
		if r, ok := c.rolloutRoute(i); ok {
			out = append(out, r)
		}
	}
	return out
}

func (c *Config) rolloutRoute(i int) (rollout.Route, bool) {
	rc := c.Routes[i]
	if rc.Rollout == nil {
		return rollout.Route{}, false
	}
	ro := c.resolvedRollout(*rc.Rollout)
	return rollout.Route{
		Name:            rc.Name,
		Steps:           ro.Steps,
		Interval:        ro.Interval,
		ShadowFirst:     *ro.ShadowFirst,
		MaxInconclusive: ro.MaxInconclusive,
		Limits:          c.Verdict.With(rc.Verdict),
	}, true
}

// resolvedRollout is ro with [rollout]'s values in its unset keys (for
// Resolve, and for Validate, which runs before it).
func (c *Config) resolvedRollout(ro RouteRollout) *RouteRollout {
	ro.Interval = orDefault(ro.Interval, c.Rollout.Interval)
	ro.MaxInconclusive = orDefault(ro.MaxInconclusive, c.Rollout.MaxInconclusive)
	if ro.ShadowFirst == nil {
		ro.ShadowFirst = ptr(c.Rollout.ShadowFirst)
	}
	return &ro
}

// rollout checks [rollout] and the routes' rollouts.
func (v *validator) rollout(c *Config) {
	ro := c.Rollout
	v.topic("rollout.topic", ro.Topic)
	v.topic("rollout.lease_topic", ro.LeaseTopic)
	others := map[string]string{"kafka.topic": c.Kafka.Topic, "report.tally_topic": c.Report.TallyTopic, "control.topic": c.Control.Topic}
	for key, t := range map[string]string{"rollout.topic": ro.Topic, "rollout.lease_topic": ro.LeaseTopic} {
		for other, ot := range others {
			if t != "" && t == ot {
				v.errorf("%s: must differ from %s (%q)", key, other, t)
			}
		}
	}
	if ro.Topic != "" && ro.Topic == ro.LeaseTopic {
		v.errorf("rollout.lease_topic: must differ from rollout.topic (%q)", ro.Topic)
	}
	if ro.LeaseTimeout < time.Second {
		v.errorf("rollout.lease_timeout: %s is less than 1s (brokers allow 6s and more by default: group.min.session.timeout.ms)", ro.LeaseTimeout)
	}
	v.positive("rollout.evaluate_every", ro.EvaluateEvery)
	v.positive("rollout.interval", ro.Interval)
	v.nonNegative("rollout.max_inconclusive", ro.MaxInconclusive)
	some := false
	for i, r := range c.Routes {
		if r.Rollout == nil {
			continue
		}
		key := fmt.Sprintf("routes[%d].rollout", i)
		if r.Mode != ModeCanary {
			v.errorf("%s: only for mode = \"canary\" (the rollout sets the candidate's weight)", key)
			continue
		}
		some = true
		if !r.Shadow {
			v.errorf("%s: needs shadow = true on the route: every stage is judged on the shadow verdict (the candidate's answers compared with the reference's)", key)
		}
		if rr, _ := c.rolloutRoute(i); ro.Interval > 0 {
			v.prefixed("", rr.Validate(key+"."))
		}
	}
	if some && c.Control.Topic == "" {
		v.errorf("control.topic: required by routes with a rollout (the controller sets their weights through it)")
	}
}
