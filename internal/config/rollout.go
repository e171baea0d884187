package config

import (
	"fmt"
	"time"
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
		v.routeRollout(key+".", c.resolvedRollout(*r.Rollout))
	}
	if some && c.Control.Topic == "" {
		v.errorf("control.topic: required by routes with a rollout (the controller sets their weights through it)")
	}
}

// routeRollout checks a route's rollout, [rollout]'s values in its unset
// keys; errors name the key under prefix (e.g. "routes[2].rollout.").
func (v *validator) routeRollout(prefix string, ro *RouteRollout) {
	if len(ro.Steps) == 0 {
		v.errorf("%ssteps: required, the candidate weights in percent, rising and ending at 100 (e.g. [1, 5, 25, 50, 100])", prefix)
	}
	for i, s := range ro.Steps {
		switch {
		case !(s > 0 && s <= 100):
			v.errorf("%ssteps[%d]: %v is not a weight above 0 and at most 100", prefix, i, s)
		case i > 0 && !(s > ro.Steps[i-1]):
			v.errorf("%ssteps[%d]: %v does not rise above steps[%d] (%v)", prefix, i, s, i-1, ro.Steps[i-1])
		}
	}
	if n := len(ro.Steps); n > 0 && ro.Steps[n-1] != 100 {
		v.errorf("%ssteps: must end at 100 (ends at %v)", prefix, ro.Steps[n-1])
	}
	v.positive(prefix+"interval", ro.Interval)
	v.nonNegative(prefix+"max_inconclusive", ro.MaxInconclusive)
}
