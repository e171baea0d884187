package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/demo"
	"github.com/miffy-proxy/miffy/internal/rollout"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// The rollout demo, short enough to watch: shadow first, then these
// steps, each held at least -interval; the demo sends demoRate requests a
// second and judges them on lowered limits (a pass needs about a hundred
// compared requests instead of thousands).
var demoSteps = []float64{10, 50, 100}

const (
	demoRate          = 40
	demoEvaluateEvery = time.Second
	demoLeaseTimeout  = 6 * time.Second // kfake's least group session timeout
	demoMinCompared   = 100
	demoMaxRate       = 0.05
	// The demo's upstreams answer in well under a millisecond, where a
	// p99 ratio is noise: a loose latency limit keeps the demo about
	// content.
	demoMaxLatencyRatio = 5
	demoControlTopic    = "miffy-control"
)

// demoRolloutConfig makes the demo route a canary route with a rollout
// (shadow first, demoSteps, each held at least interval), serving at
// weight 0 until the controller says otherwise, shadowing what the
// reference serves, judged on the demo's lowered limits; the instance
// follows the control topic the controller writes.
func demoRolloutConfig(cfg *config.Config, interval time.Duration) {
	cfg.Control.Topic = demoControlTopic
	cfg.Rollout.EvaluateEvery, cfg.Rollout.LeaseTimeout = demoEvaluateEvery, demoLeaseTimeout
	cfg.Rollout.ControllerID = "demo-controller"
	r := &cfg.Routes[0]
	r.Mode, r.Shadow, r.Weight = config.ModeCanary, true, 0
	shadowFirst := true
	r.Rollout = &config.RouteRollout{Steps: demoSteps, Interval: interval, ShadowFirst: &shadowFirst, MaxInconclusive: 20 * interval}
	minCompared, rate, ratio := int64(demoMinCompared), demoMaxRate, float64(demoMaxLatencyRatio)
	r.Verdict = verdict.Override{MinCompared: &minCompared, MaxRegressionRate: &rate, MaxCandidateErrorRate: &rate, MaxLatencyRatio: &ratio}
}

// demoRollout is the rollout demo's controller and traffic.
type demoRollout struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    zerolog.Logger
}

// startDemoRollout starts a rollout controller for cfg's rollouts (as
// miffy rollout does), until ctx is done or stop.
func startDemoRollout(ctx context.Context, cfg *config.Config, opts []kgo.Opt, log zerolog.Logger) (*demoRollout, error) {
	ctl, err := rollout.New(rolloutConfig(cfg, rolloutRoutes(cfg)), opts, log, prometheus.NewRegistry())
	if err != nil {
		return nil, fmt.Errorf("the demo's rollout controller: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &demoRollout{ctx: ctx, cancel: cancel, log: log}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := ctl.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("the demo's rollout controller stopped")
		}
	}()
	return d, nil
}

// traffic sends the demo's requests to the proxy until stop.
func (d *demoRollout) traffic(proxy string) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		answered, failed := demo.Traffic(d.ctx, proxy, demoRate)
		d.log.Info().Int("answered", answered).Int("failed", failed).Msg("the demo's traffic stopped")
	}()
}

// stop stops the controller and the traffic, and waits for them.
func (d *demoRollout) stop() {
	d.cancel()
	d.wg.Wait()
}

func printDemoRolloutHelp(w io.Writer, route, brokerAddr, candAddr, pageURL string, interval time.Duration) {
	steps := make([]string, len(demoSteps))
	for i, s := range demoSteps {
		steps[i] = weightText(s)
	}
	watch := "(the report page is off)"
	if pageURL != "" {
		watch = pageURL + "#/rollout/" + url.PathEscape(route)
	}
	fmt.Fprintf(w, `
Rollout (-rollout): a controller rolls %[1]s out: shadow only until the candidate answers
like the reference, then %[2]s of the requests, each step held at least %[3]s and judged on
its own evidence (at least %[4]d compared, under %[5]s regressions and candidate errors,
candidate p99 under %[10]d × the reference's).
The demo sends %[6]d requests a second to the agreeing values (1 to 3).
  watch       %[7]s
  status      miffy ctl rollout -brokers %[8]s status '%[1]s'
Make the candidate bad before it reaches 100 %% (a wrong "square" on 30 %% of its answers,
still 200 and fast), and watch the rollout roll back to 0 %%:
  curl -s -X POST http://%[9]s/demo/bad
Then make it good again and resume (it starts again from shadow only; so does a
rollout that reached 100 %%):
  curl -s -X POST http://%[9]s/demo/good
  miffy ctl rollout -brokers %[8]s resume '%[1]s'
`, route, strings.Join(steps, ", "), interval, demoMinCompared, weightText(100*demoMaxRate), demoRate, watch, brokerAddr, candAddr, demoMaxLatencyRatio)
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
