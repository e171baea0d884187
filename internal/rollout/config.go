package rollout

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/miffy-proxy/miffy/internal/verdict"
)

// Config configures a Controller: the [rollout] section, the routes'
// [routes.rollout] tables, and the topics it reads and writes.
type Config struct {
	// Topic is the rollout topic ([rollout] topic): decisions and
	// commands. Required.
	Topic string
	// LeaseTopic names the one-partition topic whose consumer group
	// elects the acting controller ([rollout] lease_topic); the group is
	// named after it. Required.
	LeaseTopic string
	// LeaseTimeout is the group session timeout: how long a controller
	// that died without leaving keeps the lease. If zero, 10s.
	LeaseTimeout time.Duration
	// EvaluateEvery is the time between two evaluations of every
	// rollout ([rollout] evaluate_every). If zero, 10s.
	EvaluateEvery time.Duration
	// ControlTopic is the control topic every instance follows ([control]
	// topic), where the weights are written. Required.
	ControlTopic string
	// TallyTopic is where the instances publish their tallies ([report]
	// tally_topic). Required.
	TallyTopic string
	// TallyInterval is the instances' [report] tally_interval: no tally
	// for 3 of them means no evidence. If zero, 10s.
	TallyInterval time.Duration
	// ID names this controller in its decisions. If empty,
	// hostname-pid.
	ID string
	// Routes are the routes with a rollout.
	Routes []Route
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Route is one route's rollout, complete and valid (the config layer
// resolves and checks it: [routes.rollout]).
type Route struct {
	// Name of the canary route.
	Name string
	// Steps are the candidate weights in percent, rising, the last 100.
	Steps []float64
	// Interval is the least time at each stage before it advances.
	Interval time.Duration
	// ShadowFirst starts at stage 0 (weight 0, shadow only) until the
	// shadow verdict passes; without it stage 0 is passed at once.
	ShadowFirst bool
	// MaxInconclusive is how long a stage may stay inconclusive (or
	// without evidence) before the rollout pauses. Zero: no limit.
	MaxInconclusive time.Duration
	// Limits are the route's verdict limits ([verdict] with its own
	// keys in place).
	Limits verdict.Limits
}

// Weight is the candidate weight of stage i: 0 for stage 0, else
// Steps[i-1].
func (r Route) Weight(stage int) float64 {
	if stage <= 0 || len(r.Steps) == 0 {
		return 0
	}
	return r.Steps[min(stage, len(r.Steps))-1]
}

// stageAtOrBelow is the highest stage whose weight is at or below w (0:
// stage 0).
func (r Route) stageAtOrBelow(w float64) int {
	stage := 0
	for i := 1; i <= r.Last(); i++ {
		if r.Weight(i) <= w {
			stage = i
		}
	}
	return stage
}

// Last is the index of the last stage (weight 100).
func (r Route) Last() int { return len(r.Steps) }

func (c *Config) defaults() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = cmp.Or(host, "controller") + "-" + strconv.Itoa(os.Getpid())
	}
	var errs []error
	// The config layer resolves these ([rollout], [report]); no default here.
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"rollout.lease_timeout", c.LeaseTimeout}, {"rollout.evaluate_every", c.EvaluateEvery}, {"report.tally_interval", c.TallyInterval}} {
		if k.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", k.key, k.d))
		}
	}
	for key, v := range map[string]string{"rollout.topic": c.Topic, "rollout.lease_topic": c.LeaseTopic, "control.topic": c.ControlTopic, "report.tally_topic": c.TallyTopic} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required by the rollout controller", key))
		}
	}
	seen := map[string]bool{}
	for _, r := range c.Routes {
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("rollout route %q: given twice", r.Name))
		}
		seen[r.Name] = true
	}
	return errors.Join(errs...)
}
