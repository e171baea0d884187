package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzerolog"

	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/tally"
)

// maxBuckets bounds the tally buckets kept per route (one per tally
// interval of the current stage, about 25 KiB each); past it the oldest
// go. With the default tally_interval (10s) that is almost 3 hours.
const maxBuckets = 1024

// maxUnconfigured bounds the active rollouts of routes not in the config
// that a controller keeps, to pause them.
const maxUnconfigured = 1024

// Controller judges every active rollout each EvaluateEvery and, while it
// holds the lease, acts: it writes its decisions to the rollout topic and
// the weights to the control topic. Every controller follows the rollout,
// control and tally topics, so that one that takes the lease over acts at
// once from where the last one stopped.
type Controller struct {
	cfg    Config
	opts   []kgo.Opt
	log    zerolog.Logger
	m      metrics
	routes []Route
	// configured are the routes by name: only their commands, overrides
	// and metrics are kept (another route's records could be anything).
	configured map[string]bool
	byName     map[string]Route

	// leaseOpts are added to the lease client's options (tests: a static
	// member, which leaves no group when closed, dies like a SIGKILL).
	leaseOpts []kgo.Opt

	mu       sync.Mutex
	states   map[string]State
	pending  map[string][]pendingCommand
	applied  int64         // offset of the latest rollout record read; -1: none
	progress chan struct{} // closed and replaced as rollout and control records are read
	// controlRead is, by partition, the offset of the latest control
	// record read.
	controlRead map[int32]int64
	fence       Fence
	// fenceOffset is the offset of the record that raised the fence to
	// its generation.
	fenceOffset int64
	// historyEnd is the rollout topic's end when the controller started:
	// records before it may have been written under another config (the
	// steps changed: remap); those after it must fit the config.
	historyEnd int64
	desired    map[string]desiredRecord
	evidence   map[string]*routeEvidence

	// actMu is held while the controller acts; the lease callbacks take it
	// so that a controller losing its lease has stopped acting when they
	// return.
	actMu sync.Mutex
	held  bool
	gen   int32 // the group generation of the assignment
	// token fences the decisions (Decision.Generation): set at the first
	// evaluation of a lease to the generation or, if higher, one more
	// than the highest read (a group deleted and made again starts its
	// generations anew); 0 until then.
	token int32
	holds map[string]string // route: the hold last recorded (stage, since, kind)
	kick  chan struct{}

	ready atomic.Bool // the rollout and control topics read to their ends at start
	// heldGen is the generation at which the controller last held the
	// lease (0: not, or lost since), for leaseBalancer.
	heldGen atomic.Int32
}

type pendingCommand struct {
	off int64
	cmd Command
}

type desiredRecord struct {
	d  control.Desired
	at time.Time
	// ours: written by a rollout controller (header setByHeader), not by
	// hand (`miffy ctl -fleet`).
	ours bool
}

// setByHeader marks the control records a rollout controller writes; its
// value is the controller's id. Instances ignore headers.
const setByHeader = "miffy-rollout-controller"

type routeEvidence struct {
	buckets map[int64]*tally.Tally // by the tally's start, truncated to the tally interval
	last    time.Time
}

// New returns a controller for cfg's routes; opts are the Kafka client
// options (brokers, SASL, TLS). Run starts it.
func New(cfg Config, opts []kgo.Opt, log zerolog.Logger, reg prometheus.Registerer) (*Controller, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg, opts: opts, log: log, m: newMetrics(reg), routes: cfg.Routes,
		states: map[string]State{}, pending: map[string][]pendingCommand{}, applied: -1, controlRead: map[int32]int64{},
		progress: make(chan struct{}), desired: map[string]desiredRecord{}, evidence: map[string]*routeEvidence{},
		holds: map[string]string{}, kick: make(chan struct{}, 1), configured: map[string]bool{}, byName: map[string]Route{},
	}
	for _, r := range cfg.Routes {
		c.evidence[r.Name] = &routeEvidence{buckets: map[int64]*tally.Tally{}}
		c.configured[r.Name] = true
		c.byName[r.Name] = r
	}
	return c, nil
}

// ID is the controller's id, as its decisions name it.
func (c *Controller) ID() string { return c.cfg.ID }

// Leader reports whether the controller holds the lease and acts.
func (c *Controller) Leader() bool {
	c.actMu.Lock()
	defer c.actMu.Unlock()
	return c.held
}

// Ready fails until the rollout and control topics have been read to
// their ends at start (for /readyz).
func (c *Controller) Ready(context.Context) error {
	if !c.ready.Load() {
		return fmt.Errorf("rollout topic %q, control topic %q: not read to their ends yet", c.cfg.Topic, c.cfg.ControlTopic)
	}
	return nil
}

// State returns a route's rollout as read from the rollout topic.
func (c *Controller) State(route string) State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.states[route]; ok {
		return st
	}
	return newState()
}

// leaseTiming bounds how long a controller cut off from the group
// coordinator may go on acting. The coordinator gives the lease to another
// LeaseTimeout after the last heartbeat it received. The cut-off
// controller sends its next heartbeat at most heartbeat later, retries it
// for at most retry, the last try taking at most dial + request; then it
// knows the lease lost (OnPartitionsLost), and stops acting once an
// evaluation under way ends, at most act after it began. stopBy sums
// these: 0.675 × LeaseTimeout, well before another controller may start.
type leaseTiming struct {
	heartbeat, retry, dial, request, act time.Duration
}

func leaseTimingFor(lease time.Duration) leaseTiming {
	return leaseTiming{heartbeat: lease / 10, retry: lease / 4, dial: lease / 10, request: lease / 10, act: lease / 8}
}

// stopBy is the longest a controller cut off after its last heartbeat
// may go on acting.
func (t leaseTiming) stopBy() time.Duration {
	return t.heartbeat + t.retry + t.dial + t.request + t.act
}

// leaseClient is the member of the lease group: it holds the lease while
// partition 0 of the lease topic is assigned to it.
func (c *Controller) leaseClient(base []kgo.Opt) (*kgo.Client, error) {
	tm := leaseTimingFor(c.cfg.LeaseTimeout)
	return kgo.NewClient(append(append(append([]kgo.Opt{}, base...),
		kgo.ConsumerGroup(c.cfg.LeaseTopic), kgo.ConsumeTopics(c.cfg.LeaseTopic),
		kgo.SessionTimeout(c.cfg.LeaseTimeout), kgo.RebalanceTimeout(c.cfg.LeaseTimeout),
		kgo.HeartbeatInterval(tm.heartbeat), kgo.RetryTimeout(tm.retry),
		kgo.RequestTimeoutOverhead(tm.request), kgo.DialTimeout(tm.dial),
		kgo.Balancers(leaseBalancer{held: c.heldGen.Load}), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(c.assigned), kgo.OnPartitionsRevoked(c.revoked), kgo.OnPartitionsLost(c.lost),
	), c.leaseOpts...)...)
}

// createTopics creates the rollout, lease and control topics if they are
// missing, and checks that the rollout topic has the one order the fence
// needs.
func (c *Controller) createTopics(ctx context.Context, cl *kgo.Client) error {
	if err := errors.Join(CreateTopic(ctx, cl, c.cfg.Topic), CreateTopic(ctx, cl, c.cfg.LeaseTopic),
		control.CreateTopic(ctx, cl, c.cfg.ControlTopic)); err != nil {
		return err
	}
	return checkTopic(ctx, cl, c.cfg.Topic)
}

// Run follows the topics, competes for the lease and acts while it holds
// it, until ctx is done; then it leaves the group.
func (c *Controller) Run(ctx context.Context) error {
	kl := c.log.With().Str("component", "kafka").Logger().Level(max(c.log.GetLevel(), zerolog.WarnLevel))
	base := append(append([]kgo.Opt{}, c.opts...), kgo.WithLogger(kzerolog.New(&kl)))
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	if err := c.createTopics(ctx, cl); err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	follow := func(topic string, at kgo.Offset, each func(*kgo.Record)) error {
		fc, err := kgo.NewClient(append(append([]kgo.Opt{}, base...), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(at), kgo.MetadataMinAge(250*time.Millisecond))...)
		if err != nil {
			return fmt.Errorf("creating the Kafka client for %s: %w", topic, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer fc.Close()
			c.follow(ctx, fc, topic, each)
		}()
		return nil
	}
	ends, err := endOffsets(ctx, kadm.NewClient(cl), c.cfg.Topic)
	if err != nil {
		return fmt.Errorf("reading the rollout topic %s: %w", c.cfg.Topic, err)
	}
	c.mu.Lock()
	c.historyEnd = ends[0]
	c.mu.Unlock()
	if err := follow(c.cfg.Topic, kgo.NewOffset().AtStart(), c.readRollout); err != nil {
		return err
	}
	if err := follow(c.cfg.ControlTopic, kgo.NewOffset().AtStart(), c.readControl); err != nil {
		return err
	}
	if err := c.catchUp(ctx, cl); err != nil {
		return err
	}
	c.ready.Store(true)
	if err := follow(c.cfg.TallyTopic, kgo.NewOffset().AfterMilli(c.talliesFrom().UnixMilli()), c.readTally); err != nil {
		return err
	}

	lease, err := c.leaseClient(base)
	if err != nil {
		return fmt.Errorf("creating the lease client: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			lease.PollFetches(ctx) // the lease topic holds nothing; polling keeps the member in the group
		}
	}()
	c.log.Info().Str("controller", c.cfg.ID).Str("lease_topic", c.cfg.LeaseTopic).Int("routes", len(c.routes)).Msg("rollout controller running")

	tick := time.NewTicker(c.cfg.EvaluateEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			c.evaluate(ctx, cl)
		case <-c.kick:
			c.evaluate(ctx, cl)
		}
	}
	c.heldGen.Store(0)
	c.stopActing("shutting down")
	cancel()
	lease.Close() // leaves the group: another controller takes over at once
	return nil
}

// follow reads a topic until ctx is done.
func (c *Controller) follow(ctx context.Context, cl *kgo.Client, topic string, each func(*kgo.Record)) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, context.Canceled) {
				c.log.Warn().Err(err).Str("topic", topic).Msg("reading a topic; retrying")
			}
		})
		fs.EachRecord(each)
	}
}

// readRollout applies one record of the rollout topic.
func (c *Controller) readRollout(r *kgo.Record) {
	v, err := Decode(r.Value)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		c.applied = r.Offset
		close(c.progress)
		c.progress = make(chan struct{})
	}()
	if err != nil {
		c.log.Warn().Err(err).Int64("offset", r.Offset).Msg("skipping an unreadable record on the rollout topic")
		return
	}
	switch {
	case v.Decision != nil:
		d := *v.Decision
		st, ok := c.states[d.Route]
		if !ok {
			st = newState()
		}
		if err := c.fits(d, r.Offset); err != nil {
			c.log.Warn().Err(err).Str("route", d.Route).Int64("offset", r.Offset).Str("controller", d.Controller).
				Msg("ignoring a rollout decision that does not fit the route's rollout")
			return
		}
		before := c.fence.Generation()
		if !c.fence.Admit(&d) {
			c.log.Warn().Str("route", d.Route).Int32("generation", d.Generation).Int32("latest", c.fence.Generation()).Str("controller", d.Controller).
				Msg("ignoring a decision of a controller that had lost its lease")
			return
		}
		if d.Generation > before {
			c.fenceOffset = r.Offset
		}
		st.apply(d)
		if !c.configured[d.Route] {
			// A route not (or no longer) configured: its decision raised
			// the fence; its state is kept only while it is active, for
			// the pause that says it is held.
			if _, had := c.states[d.Route]; st.Active() && (had || len(c.states) < maxUnconfigured+len(c.configured)) {
				c.states[d.Route] = st
			} else {
				delete(c.states, d.Route)
			}
			return
		}
		c.states[d.Route] = st
		c.pending[d.Route] = slices.DeleteFunc(c.pending[d.Route], func(p pendingCommand) bool { return p.off <= st.Answered })
		c.m.step.WithLabelValues(d.Route).Set(float64(st.Step))
		c.m.weight.WithLabelValues(d.Route).Set(st.Weight)
	case v.Command != nil:
		cmd := *v.Command
		st, ok := c.states[cmd.Route]
		if c.configured[cmd.Route] && (!ok || r.Offset > st.Answered) && cmd.Validate() == nil {
			c.pending[cmd.Route] = append(c.pending[cmd.Route], pendingCommand{off: r.Offset, cmd: cmd})
		}
	}
}

// fits reports a decision (at offset off) that cannot be one of a
// controller's: a weight outside 0..100 or a negative step; and, once
// read past the history at start (written under this config), a step
// beyond the route's last stage (unless paused) or a weight neither the
// step's nor 0 (unless a pause, which holds the weight the fleet had).
// Under c.mu.
func (c *Controller) fits(d Decision, off int64) error {
	if d.Step < 0 || !(d.Weight >= 0 && d.Weight <= 100) {
		return fmt.Errorf("stage %d, weight %v: out of range", d.Step, d.Weight)
	}
	r, ok := c.byName[d.Route]
	if !ok || off < c.historyEnd {
		return nil
	}
	if d.Step > r.Last() && !d.Paused {
		return fmt.Errorf("stage %d is beyond the last stage %d of steps %v", d.Step, r.Last(), r.Steps)
	}
	if d.Weight != 0 && (d.Step > r.Last() || d.Weight != r.Weight(d.Step)) && !(d.Paused && d.Decision == Pause) {
		return fmt.Errorf("weight %v is neither stage %d's of steps %v nor 0", d.Weight, d.Step, r.Steps)
	}
	return nil
}

// readControl notes a route's latest desired state on the control topic.
func (c *Controller) readControl(r *kgo.Record) {
	route := string(r.Key)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		c.controlRead[r.Partition] = r.Offset
		close(c.progress)
		c.progress = make(chan struct{})
	}()
	if len(r.Value) == 0 {
		delete(c.desired, route)
		return
	}
	if !c.configured[route] {
		return
	}
	var d control.Desired
	if err := json.Unmarshal(r.Value, &d); err != nil {
		return
	}
	ours := false
	for _, h := range r.Headers {
		ours = ours || h.Key == setByHeader
	}
	c.desired[route] = desiredRecord{d: d, at: r.Timestamp, ours: ours}
}

// readTally adds one tally to its route's evidence.
func (c *Controller) readTally(r *kgo.Record) {
	t, err := tally.Decode(r.Value)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ev, ok := c.evidence[t.Route]
	if !ok {
		return
	}
	// A tally's end counts no later than when it was read: one dated in
	// the future must not pass for evidence arriving for ever.
	end := t.End
	if now := c.cfg.Now(); end.After(now) {
		end = now
	}
	if end.After(ev.last) {
		ev.last = end
	}
	// Only the current stage's evidence is ever judged: none is kept
	// while the rollout is paused or done (a resume starts afresh).
	if st, ok := c.states[t.Route]; ok && (!st.Active() || t.Start.Before(st.Since)) {
		return
	}
	key := t.Start.Truncate(c.cfg.TallyInterval).UnixNano()
	b, ok := ev.buckets[key]
	if !ok {
		if len(ev.buckets) >= maxBuckets {
			delete(ev.buckets, slices.Min(mapsKeys(ev.buckets)))
		}
		b = tally.New(t.Route, "")
		ev.buckets[key] = b
	}
	b.Merge(t)
}

func mapsKeys(m map[int64]*tally.Tally) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// stageEvidence merges a route's tallies of intervals that began at or
// after since (by bucket: a bucket counts whole or not at all), and drops
// older ones: a stage's since only moves forward.
func (c *Controller) stageEvidence(route string, since time.Time) Evidence {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.evidence[route]
	if ev == nil {
		return Evidence{}
	}
	out := Evidence{LastTally: ev.last}
	for key, b := range ev.buckets {
		if key < since.UnixNano() {
			delete(ev.buckets, key)
			continue
		}
		if out.Tally == nil {
			out.Tally = tally.New(route, "")
		}
		out.Tally.Merge(b)
	}
	return out
}

// talliesFrom is where the tally topic is read from: the start of the
// earliest active stage (less two tally intervals), else now.
func (c *Controller) talliesFrom() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := c.cfg.Now()
	for _, st := range c.states {
		if st.Active() && st.Since.Before(from) {
			from = st.Since
		}
	}
	return from.Add(-2 * c.cfg.TallyInterval)
}

// catchUp waits until the rollout topic and the control topic have been
// read to their ends as they are now: the controller acts on every
// decision and command and on every weight set by hand before it (a
// weight set by hand pauses the rollout; the overrides it writes back are
// the latest).
func (c *Controller) catchUp(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	rEnds, err := endOffsets(ctx, adm, c.cfg.Topic)
	if err != nil {
		return fmt.Errorf("reading the rollout topic %s: %w", c.cfg.Topic, err)
	}
	if err := c.waitApplied(ctx, rEnds[0]-1); err != nil {
		return err
	}
	return c.catchUpControl(ctx, adm)
}

// catchUpControl waits until the control topic has been read to its end
// as it is now.
func (c *Controller) catchUpControl(ctx context.Context, adm *kadm.Client) error {
	cEnds, err := endOffsets(ctx, adm, c.cfg.ControlTopic)
	if err != nil {
		return fmt.Errorf("reading the control topic %s: %w", c.cfg.ControlTopic, err)
	}
	return c.waitFor(ctx, func() bool {
		for p, end := range cEnds {
			if !c.controlReadTo(p, end-1) {
				return false
			}
		}
		return true
	})
}

// endOffsets lists a topic's end offsets by partition (none if the topic
// is missing).
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	if err := ends.Error(); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, err
	}
	return out, nil
}

// controlReadTo says, under c.mu, whether the control record at off of
// partition p has been read (off < 0: nothing to read).
func (c *Controller) controlReadTo(p int32, off int64) bool {
	read, ok := c.controlRead[p]
	return off < 0 || ok && read >= off
}

// waitApplied waits until the rollout record at off has been read.
func (c *Controller) waitApplied(ctx context.Context, off int64) error {
	return c.waitFor(ctx, func() bool { return c.applied >= off })
}

// waitFor waits until cond, called under c.mu, holds.
func (c *Controller) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		done, ch := cond(), c.progress
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// assigned takes the lease when the lease topic's partition is ours.
func (c *Controller) assigned(_ context.Context, cl *kgo.Client, m map[string][]int32) {
	if !slices.Contains(m[c.cfg.LeaseTopic], 0) {
		return
	}
	_, gen := cl.GroupMetadata()
	c.heldGen.Store(gen)
	c.actMu.Lock()
	c.held, c.gen, c.token = true, gen, 0
	c.holds = map[string]string{}
	c.actMu.Unlock()
	c.m.leader.Set(1)
	c.log.Info().Str("controller", c.cfg.ID).Int32("generation", gen).Msg("holding the rollout lease: acting for the fleet")
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// revoked gives the lease up; it returns once the controller has stopped
// acting (an evaluation under way ends first).
func (c *Controller) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if slices.Contains(m[c.cfg.LeaseTopic], 0) {
		c.stopActing("lease revoked")
	}
}

// lost gives the lease up after the group session was lost: the
// controller does not ask for it back.
func (c *Controller) lost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	c.heldGen.Store(0)
	c.revoked(ctx, cl, m)
}

func (c *Controller) stopActing(why string) {
	c.actMu.Lock()
	was := c.held
	c.held = false
	c.actMu.Unlock()
	c.m.leader.Set(0)
	if was {
		c.log.Info().Str("controller", c.cfg.ID).Str("why", why).Msg("stopped acting for the fleet")
	}
}

// evaluate judges every rollout once and acts, if the controller holds the
// lease.
func (c *Controller) evaluate(parent context.Context, cl *kgo.Client) {
	c.actMu.Lock()
	defer c.actMu.Unlock()
	if !c.held {
		return
	}
	// Bounded, so that a revoke or a loss waits for at most this long
	// (see leaseTiming).
	ctx, cancel := context.WithTimeout(parent, leaseTimingFor(c.cfg.LeaseTimeout).act)
	defer cancel()
	if err := c.catchUp(ctx, cl); err != nil {
		c.log.Warn().Err(err).Msg("cannot read the rollout and control topics to their ends; not acting this time")
		return
	}
	c.mu.Lock()
	maxGen, maxOff := c.fence.Generation(), c.fenceOffset
	c.mu.Unlock()
	if c.token == 0 && maxGen == math.MaxInt32 {
		// One more would wrap: a record forged or gone wrong.
		c.log.Error().Str("topic", c.cfg.Topic).Int64("offset", maxOff).Int32("generation", maxGen).
			Msg("a rollout decision carries the highest generation there is: not acting (remove the record, or give rollout.topic a new topic)")
		return
	}
	if c.token == 0 {
		c.token = max(c.gen, maxGen+1)
	}
	if maxGen > c.token {
		c.log.Warn().Int32("generation", c.token).Int32("latest", maxGen).Msg("a controller that took the lease later has decided: not acting")
		return
	}
	now := c.cfg.Now()
	for _, r := range c.routes {
		if err := c.evaluateRoute(ctx, cl, r, now); err != nil {
			c.log.Error().Err(err).Str("route", r.Name).Msg("rollout: acting failed; trying again at the next evaluation")
		}
	}
	c.pauseUnconfigured(ctx, cl, now)
}

// pauseUnconfigured pauses the active rollouts of routes no longer in the
// config: their weight stays where it is, and the decision says so.
func (c *Controller) pauseUnconfigured(ctx context.Context, cl *kgo.Client, now time.Time) {
	c.mu.Lock()
	var gone []State
	var names []string
	for name, st := range c.states {
		if !c.configured[name] && st.Active() {
			gone, names = append(gone, st), append(names, name)
		}
	}
	c.mu.Unlock()
	for i, st := range gone {
		d := Decision{Route: names[i], Decision: Pause, Step: st.Step, Weight: st.Weight, Time: now, Since: st.Since, Paused: true,
			Reasons: []string{fmt.Sprintf("no longer in the config; held at %s %% (stage %d): rollout paused; set the weight by hand or configure the route again", pctW(st.Weight), st.Step)}}
		c.log.Error().Str("route", names[i]).Float64("weight", st.Weight).Int("step", st.Step).
			Msg("rollout of a route no longer in the config: paused, its weight held where it is")
		if err := c.decide(ctx, cl, d, st); err != nil {
			c.log.Error().Err(err).Str("route", names[i]).Msg("rollout: acting failed; trying again at the next evaluation")
		}
	}
}

func (c *Controller) evaluateRoute(ctx context.Context, cl *kgo.Client, r Route, now time.Time) error {
	st := c.State(r.Name)
	if !st.Started {
		return c.decide(ctx, cl, start(r, now), st)
	}
	// The steps changed since the state was written: go on at the stage
	// remap finds, its weight written instead of the state's (unless a
	// weight was set by hand: that pauses the rollout, below).
	c.mu.Lock()
	des, haveDes := c.desired[r.Name]
	c.mu.Unlock()
	if !(haveDes && !des.ours && des.d.Weight != nil && *des.d.Weight != st.Weight) {
		if moved, ok := remap(r, st, now); ok {
			return c.decide(ctx, cl, moved, st)
		}
	}
	// A failing verdict rolls back first, before any command is
	// answered: commands never hold a rollback off.
	rolledBack := false
	var j judgement
	if st.Active() {
		if j = judge(r, st, c.stageEvidence(r.Name, st.Since), now, c.cfg.TallyInterval); j.Decision.Decision == Rollback {
			if err := c.decide(ctx, cl, j.Decision, st); err != nil {
				return err
			}
			st, rolledBack = c.State(r.Name), true
		}
	}
	c.mu.Lock()
	cmds := slices.Clone(c.pending[r.Name])
	c.mu.Unlock()
	for _, p := range cmds {
		d := answer(r, st, p.cmd, p.off, now)
		if rolledBack && p.cmd.Command == Resume {
			d = staleResume(r, st, p.cmd, p.off, now)
		}
		if err := c.decide(ctx, cl, d, st); err != nil {
			return err
		}
		st = c.State(r.Name)
	}
	c.mu.Lock()
	des, haveDes = c.desired[r.Name]
	c.mu.Unlock()
	differs := !haveDes || des.d.Weight == nil || *des.d.Weight != st.Weight
	switch {
	case differs && haveDes && !des.ours && des.d.Weight != nil:
		// Set by hand (`miffy ctl -fleet`): that pauses an active
		// rollout; a paused or finished one leaves it be.
		if st.Active() {
			return c.decide(ctx, cl, manual(r, st, *des.d.Weight, des.at, now), st)
		}
	case differs:
		// Never written, written before the latest decision (the last
		// controller stopped in between), or cleared by hand (`ctl
		// -fleet clear` hands the weight back): the decision stands.
		if err := c.publishWeight(ctx, cl, r.Name, st.Weight); err != nil {
			return err
		}
	}
	if !st.Active() {
		return nil
	}
	if len(cmds) > 0 {
		// Judged afresh on the state the commands left.
		j = judge(r, st, c.stageEvidence(r.Name, st.Since), now, c.cfg.TallyInterval)
	}
	if j.Decision.Decision == Hold {
		// A hold is recorded once per stage and kind, and only once the
		// stage's interval is over (before, a stage gathering evidence
		// is no news).
		key := fmt.Sprint(st.Step, "/", st.Since.UnixNano(), "/", j.hold)
		if j.hold == holdWaiting || c.holds[r.Name] == key || now.Sub(st.Since) < r.Interval {
			c.m.decisions.WithLabelValues(r.Name, Hold).Inc()
			return nil
		}
		c.holds[r.Name] = key
	}
	return c.decide(ctx, cl, j.Decision, st)
}

// decide records d on the rollout topic, then writes its weight to the
// control topic if it changed, and waits until it has read d back.
func (c *Controller) decide(ctx context.Context, cl *kgo.Client, d Decision, prev State) error {
	d.Controller, d.Generation = c.cfg.ID, c.token
	b, err := d.Encode()
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: c.cfg.Topic, Key: []byte(d.Route), Value: b}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("writing the decision to %s: %w", c.cfg.Topic, err)
	}
	if c.configured[d.Route] {
		c.m.decisions.WithLabelValues(d.Route, d.Decision).Inc()
	}
	c.log.Info().Str("route", d.Route).Str("decision", d.Decision).Int("step", d.Step).Float64("weight", d.Weight).
		Strs("reasons", d.Reasons).Msg("rollout decision")
	if !prev.Started || d.Weight != prev.Weight {
		if err := c.publishWeight(ctx, cl, d.Route, d.Weight); err != nil {
			return err
		}
	}
	return c.waitApplied(ctx, rec.Offset)
}

// publishWeight writes a route's weight to the control topic, keeping the
// route's other overrides, marked as the controller's (setByHeader).
func (c *Controller) publishWeight(ctx context.Context, cl *kgo.Client, route string, w float64) error {
	// Read to the end first: the record replaces the route's latest, so
	// it must carry every override written before it.
	if err := c.catchUpControl(ctx, kadm.NewClient(cl)); err != nil {
		return err
	}
	c.mu.Lock()
	latest, ok := c.desired[route]
	c.mu.Unlock()
	d := latest.d
	if ok && !latest.ours && d.Weight != nil && *d.Weight != w && w != 0 {
		// Set by hand since the controller last looked: it stands, and
		// pauses the rollout at the next evaluation (a weight 0 is
		// written over it all the same: the safe side).
		c.log.Warn().Str("route", route).Float64("weight", *d.Weight).Float64("rollout_weight", w).
			Msg("a weight set by hand arrived: not writing the rollout's over it")
		return nil
	}
	d.Weight = &w
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: c.cfg.ControlTopic, Key: []byte(route), Value: b,
		Headers: []kgo.RecordHeader{{Key: setByHeader, Value: []byte(c.cfg.ID)}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("writing the weight to the control topic %s: %w", c.cfg.ControlTopic, err)
	}
	// Read back before going on, so that the next evaluation does not
	// take the record before it for the route's latest.
	return c.waitFor(ctx, func() bool { return c.controlReadTo(rec.Partition, rec.Offset) })
}
