package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// These tests run real controllers against kfake over TCP, fed by a fleet
// that publishes tallies as instances do (the wiring with real instances
// is cmd/miffy's TestRollout*). Intervals are short; the tests wait on the
// controllers' state, never on a fixed time.

const (
	tTallies = "miffy-tallies"
	tControl = "miffy-control"
	tRollout = "miffy-rollouts"
	tLease   = "miffy-rollout-lease"
)

// cluster starts kfake with group sessions as short as the tests' leases.
func cluster(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation()}
}

// fleet publishes the tallies of a fleet serving route "shop" every 50ms:
// 50 compared requests and 50 served by each side, judged by mode.
type fleet struct {
	mode atomic.Value // "good", "slow", "bad", "few", "none"
}

func startFleet(t *testing.T, opts []kgo.Opt, mode string) *fleet {
	t.Helper()
	f := &fleet{}
	f.mode.Store(mode)
	cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.DefaultProduceTopic(tTallies))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if b := f.tally(last, now); b != nil {
					cl.Produce(ctx, &kgo.Record{Key: []byte("shop"), Value: b}, nil)
				}
				last = now
			}
		}
	}()
	return f
}

func (f *fleet) tally(start, end time.Time) []byte {
	mode := f.mode.Load().(string)
	n, regressions, cand := int64(50), int64(0), 10.0
	switch mode {
	case "none":
		return nil
	case "few":
		n = 1
	case "bad":
		regressions = 10
	case "slow":
		cand = 40
	}
	t := evidence{n: n, regressions: regressions, refMS: 10, candMS: cand, served: true}.tally()
	t.Instance, t.Endpoint, t.Start, t.End = "i1", "shop", start, end
	b, _ := json.Marshal(t)
	return b
}

func testConfig(id string) Config {
	return Config{
		Topic: tRollout, LeaseTopic: tLease, LeaseTimeout: time.Second, EvaluateEvery: 50 * time.Millisecond,
		ControlTopic: tControl, TallyTopic: tTallies, TallyInterval: 50 * time.Millisecond, ID: id,
		Routes: []Route{{
			Name: "shop", Steps: []float64{1, 50, 100}, Interval: 300 * time.Millisecond, ShadowFirst: true, MaxInconclusive: time.Second,
			Limits: verdict.Limits{MinCompared: 100, MaxRegressionRate: 0.05, MaxCandidateErrorRate: 0.05, MaxLatencyRatio: 1.5, Confidence: 0.95},
		}},
	}
}

type running struct {
	c      *Controller
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startController runs a controller until the test ends; static makes it
// a static group member, which leaves no group when it stops: stopping it
// is then a death (as SIGKILL), not a handover.
func startController(t *testing.T, opts []kgo.Opt, cfg Config, static bool) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := New(cfg, opts, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if static {
		c.leaseOpts = []kgo.Opt{kgo.InstanceID(cfg.ID)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s")
		}
	})
}

// waitState waits until a controller's view of the route satisfies cond.
func waitState(t *testing.T, c *Controller, within time.Duration, what string, cond func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := c.State("shop")
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (state %+v)", what, within, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// decisions reads the route's decisions from the rollout topic.
func decisions(t *testing.T, opts []kgo.Opt) []Decision {
	t.Helper()
	vals, _, err := History(t.Context(), opts, tRollout)
	if err != nil {
		t.Fatal(err)
	}
	var out []Decision
	for _, v := range vals {
		if v.Decision != nil {
			out = append(out, *v.Decision)
		}
	}
	return out
}

// weights reads the weights written to the control topic, in order.
func weights(t *testing.T, opts []kgo.Opt) []float64 {
	t.Helper()
	cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.ConsumeTopics(tControl), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), tControl)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(tControl, 0)
	var out []float64
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for read := int64(0); read < end.Offset; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("reading the control topic: timed out")
		}
		fs.EachRecord(func(r *kgo.Record) {
			var d control.Desired
			json.Unmarshal(r.Value, &d)
			if d.Weight != nil && r.Offset < end.Offset {
				out = append(out, *d.Weight)
			}
			read = r.Offset + 1
		})
	}
	return out
}

func steps(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %d %v", d.Decision, d.Step, d.Weight))
		if testing.Verbose() {
			fmt.Println(d.Time.Format("05.000"), d.Controller, d.Generation, d.Decision, d.Step, d.Since.Format("05.000"), d.Reasons)
		}
	}
	return out
}

// TestRolloutGoodCandidate: shadow, then each step, then 100 %, one
// decision per stage; two controllers run and exactly one acts.
func TestRolloutGoodCandidate(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	a := startController(t, opts, testConfig("a"), false)
	b := startController(t, opts, testConfig("b"), false)
	st := waitState(t, a.c, 15*time.Second, "promoted", func(s State) bool { return s.Done })
	if st.Last != Promote || st.Weight != 100 || st.Step != 3 {
		t.Errorf("final state %+v, want promote at stage 3, weight 100", st)
	}
	ds := decisions(t, opts)
	// The start, then one decision per stage; a hold may be recorded
	// where a stage's interval ended before its evidence sufficed.
	moves := slices.DeleteFunc(slices.Clone(ds[1:]), func(d Decision) bool { return d.Decision == Hold })
	want := []string{"advance 1 1", "advance 2 50", "promote 3 100"}
	if got := steps(moves); ds[0].Decision != Hold || !slices.Equal(got, want) {
		t.Errorf("decisions %s; want the start (hold 0 0), then %s", steps(ds), strings.Join(want, ", "))
	}
	// One acts: the lease stays where it is when the other joins.
	actors := map[string]bool{}
	for _, d := range ds {
		actors[d.Controller] = true
	}
	if len(actors) != 1 {
		t.Errorf("decisions by %v; want one controller", actors)
	}
	if leaders := testutil.ToFloat64(a.c.m.leader) + testutil.ToFloat64(b.c.m.leader); leaders != 1 {
		t.Errorf("leader gauges sum %v; want one controller acting", leaders)
	}
	waitFor(t, func() bool { w := weights(t, opts); return w[len(w)-1] == 100 })
	if got := weights(t, opts); !slices.Equal(slices.Compact(got), []float64{0, 1, 50, 100}) {
		t.Errorf("weights on the control topic %v, want 0, 1, 50, 100 in order", got)
	}
	moves = append([]Decision{ds[0]}, moves...)
	for i := 1; i < len(moves); i++ {
		if gap := moves[i].Time.Sub(moves[i-1].Time); gap < 300*time.Millisecond {
			t.Errorf("%s came %v after the last stage began; want at least the interval (300ms)", steps(moves[i:i+1]), gap)
		}
	}
}

// TestRolloutRollback: a candidate that regresses on a share of requests
// at stage 1, or only gets slower, is rolled back to 0 and stays there.
func TestRolloutRollback(t *testing.T) {
	for _, mode := range []string{"bad", "slow"} {
		t.Run(mode, func(t *testing.T) {
			opts := cluster(t)
			f := startFleet(t, opts, "good")
			a := startController(t, opts, testConfig("a"), false)
			waitState(t, a.c, 10*time.Second, "stage 1", func(s State) bool { return s.Step == 1 })
			f.mode.Store(mode)
			flipped := time.Now()
			st := waitState(t, a.c, 10*time.Second, "rollback", func(s State) bool { return s.Last == Rollback })
			t.Logf("rolled back %v after the candidate turned %s", time.Since(flipped), mode)
			if st.Weight != 0 || !st.Paused {
				t.Errorf("state %+v, want weight 0, paused", st)
			}
			want := "regression rate"
			if mode == "slow" {
				want = "latency p99"
			}
			if !strings.Contains(strings.Join(st.Reasons, "\n"), want) {
				t.Errorf("reasons %q do not name the %s", st.Reasons, want)
			}
			// It stays there: evaluations go on, nothing is decided.
			n := len(decisions(t, opts))
			holds := testutil.ToFloat64(a.c.m.decisions.WithLabelValues("shop", Hold))
			waitFor(t, func() bool { return testutil.ToFloat64(a.c.m.leader) == 1 && time.Since(flipped) > time.Second })
			if got := decisions(t, opts); len(got) != n || testutil.ToFloat64(a.c.m.decisions.WithLabelValues("shop", Hold)) != holds {
				t.Errorf("decisions after the rollback: %v", steps(got[n:]))
			}
			if w := weights(t, opts); w[len(w)-1] != 0 {
				t.Errorf("weights %v, want the last 0", w)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRolloutTooLittleTraffic: holds (recorded once), then pauses with the
// reason after max_inconclusive; without tallies too.
func TestRolloutTooLittleTraffic(t *testing.T) {
	for _, mode := range []string{"few", "none"} {
		t.Run(mode, func(t *testing.T) {
			opts := cluster(t)
			startFleet(t, opts, mode)
			a := startController(t, opts, testConfig("a"), false)
			st := waitState(t, a.c, 10*time.Second, "paused", func(s State) bool { return s.Paused })
			want := "compared"
			if mode == "none" {
				want = "no evidence arriving"
			}
			if st.Last != Pause || st.Step != 0 || !strings.Contains(st.Reasons[0], "max_inconclusive 1s") || !strings.Contains(strings.Join(st.Reasons, "\n"), want) {
				t.Errorf("state %+v, want a pause at stage 0 naming max_inconclusive and %q", st, want)
			}
			got := steps(decisions(t, opts))
			if !slices.Equal(got, []string{"hold 0 0", "hold 0 0", "pause 0 0"}) {
				t.Errorf("decisions %v, want the start, one hold, the pause", got)
			}
		})
	}
}

// TestRolloutTakeover: the acting controller dies mid-rollout without
// leaving the group; the other takes over within the lease timeout and
// goes on from the same stage, no stage skipped or repeated; commands
// sent meanwhile are honoured once.
func TestRolloutTakeover(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	cfgA, cfgB := testConfig("a"), testConfig("b")
	cfgA.Routes[0].Steps = []float64{1, 5, 25, 50, 100}
	cfgB.Routes[0].Steps = cfgA.Routes[0].Steps
	a := startController(t, opts, cfgA, true)
	waitFor(t, func() bool { return a.c.Leader() })
	b := startController(t, opts, cfgB, true)
	waitState(t, b.c, 10*time.Second, "stage 2, seen by b", func(s State) bool { return s.Step == 2 })
	if !a.c.Leader() || b.c.Leader() {
		t.Fatalf("leaders: a %v, b %v; want a only", a.c.Leader(), b.c.Leader())
	}
	// a honours a pause and a resume; b, taking over, must not again.
	for _, cmd := range []string{Pause, Resume} {
		if err := Send(t.Context(), opts, tRollout, Command{Route: "shop", Command: cmd, By: "ops"}); err != nil {
			t.Fatal(err)
		}
		waitState(t, b.c, 10*time.Second, cmd+" by a, seen by b", func(s State) bool { return s.Last == cmd })
	}
	a.stop(t)
	died := time.Now()
	if err := Send(t.Context(), opts, tRollout, Command{Route: "shop", Command: Pause, By: "ops"}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, b.c, 10*time.Second, "b honours the pause", func(s State) bool { return s.Paused })
	took := time.Since(died)
	t.Logf("b acted %v after a died", took)
	if took > 3*time.Second {
		t.Errorf("b took %v to act; want about the lease timeout (1s)", took)
	}
	if st.Controller != "b" || st.Step < 2 {
		t.Errorf("state %+v: want b's pause at stage 2 or later", st)
	}
	if err := Send(t.Context(), opts, tRollout, Command{Route: "shop", Command: Resume, By: "ops"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, b.c, 15*time.Second, "promoted", func(s State) bool { return s.Done })
	var advances []int
	var answered []string
	for _, d := range decisions(t, opts) {
		if d.Decision == Advance || d.Decision == Promote {
			advances = append(advances, d.Step)
		}
		if d.CommandOffset != nil {
			answered = append(answered, d.Decision+" by "+d.Controller)
		}
	}
	want := []string{"pause by a", "resume by a", "pause by b", "resume by b"}
	if !slices.Equal(advances, []int{1, 2, 3, 4, 5}) || !slices.Equal(answered, want) {
		t.Errorf("advances to stages %v, commands answered %v; want 1..5 once each, and %v", advances, answered, want)
	}
}

// TestRolloutManualWeight: a weight written to the control topic by hand
// pauses the rollout, which says so; resume goes on at the stage.
func TestRolloutManualWeight(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	cfg := testConfig("a")
	cfg.Routes[0].ShadowFirst, cfg.Routes[0].Interval = false, time.Minute
	a := startController(t, opts, cfg, false)
	waitState(t, a.c, 10*time.Second, "stage 1", func(s State) bool { return s.Step == 1 })
	waitFor(t, func() bool { w := weights(t, opts); return len(w) > 0 && w[len(w)-1] == 1 })
	w := 30.0
	if err := control.PublishDesired(t.Context(), opts, tControl, "shop", &control.Desired{Weight: &w}); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, a.c, 10*time.Second, "paused", func(s State) bool { return s.Paused })
	if st.Weight != 30 || !strings.Contains(st.Reasons[0], "weight set to 30 % by hand") {
		t.Errorf("state %+v, want paused at weight 30 saying so", st)
	}
	// Paused, the rollout leaves the hand-set weight be; resumed, it
	// writes its stage's weight again.
	holds := testutil.ToFloat64(a.c.m.decisions.WithLabelValues("shop", Hold))
	if err := Send(t.Context(), opts, tRollout, Command{Route: "shop", Command: Resume}); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, a.c, 10*time.Second, "resumed", func(s State) bool { return !s.Paused })
	if st.Weight != 1 || st.Step != 1 {
		t.Errorf("resumed state %+v, want stage 1 at weight 1", st)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(a.c.m.decisions.WithLabelValues("shop", Hold)) > holds })
	w8 := weights(t, opts)
	if i := slices.Index(w8, 30); i < 0 || !slices.Equal(slices.Compact(w8[i:]), []float64{30, 1}) {
		t.Errorf("weights on the control topic %v, want 30 then 1 only", w8)
	}
}

// TestRolloutGroupStartsAnew: decisions of a high generation are on the
// topic (the lease's group was deleted since and starts its generations
// anew); a new controller still acts, its decisions above them.
func TestRolloutGroupStartsAnew(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now()
	b, _ := Decision{Route: "shop", Decision: Hold, Time: now, Since: now, Controller: "old", Generation: 50}.Encode()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: tRollout, Key: []byte("shop"), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	a := startController(t, opts, testConfig("a"), false)
	st := waitState(t, a.c, 10*time.Second, "stage 1", func(s State) bool { return s.Step == 1 })
	if st.Controller != "a" || st.Generation != 51 {
		t.Errorf("state %+v, want a's decision at generation 51", st)
	}
}

// produce writes values to a topic and returns the offset of the last.
func produce(t *testing.T, opts []kgo.Opt, topic string, key string, vals ...[]byte) int64 {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var off int64
	for _, v := range vals {
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		off = r.Offset
	}
	return off
}

// TestRolloutCatchUpReadsControl: catching up waits for the control topic
// too, so a weight set by hand before the controller started is known
// before it acts.
func TestRolloutCatchUpReadsControl(t *testing.T) {
	opts := cluster(t)
	w := 0.0
	if err := control.PublishDesired(t.Context(), opts, tControl, "shop", &control.Desired{Weight: &w}); err != nil {
		t.Fatal(err)
	}
	c, err := New(testConfig("a"), opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := c.catchUp(ctx, cl); err == nil {
		t.Fatal("catchUp returned before the control record was read")
	}
	b, _ := json.Marshal(control.Desired{Weight: &w})
	c.readControl(&kgo.Record{Topic: tControl, Key: []byte("shop"), Value: b, Partition: 0, Offset: 0})
	if err := c.catchUp(t.Context(), cl); err != nil {
		t.Fatalf("catchUp after the control record was read: %v", err)
	}
}

// TestRolloutRestartSeesManualWeight: a controller that starts after an
// operator set weight 0 by hand on a rollout at stage 1 pauses it, and
// never writes the stage's weight over the hand-set one.
func TestRolloutRestartSeesManualWeight(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	now := time.Now()
	b, _ := Decision{Route: "shop", Decision: Advance, Step: 1, Weight: 1, Time: now, Since: now, Controller: "old", Generation: 1}.Encode()
	produce(t, opts, tRollout, "shop", b)
	w := 0.0
	if err := control.PublishDesired(t.Context(), opts, tControl, "shop", &control.Desired{Weight: &w}); err != nil {
		t.Fatal(err)
	}
	a := startController(t, opts, testConfig("a"), false)
	st := waitState(t, a.c, 10*time.Second, "paused", func(s State) bool { return s.Paused })
	if st.Last != Pause || st.Weight != 0 || !strings.Contains(st.Reasons[0], "by hand") {
		t.Errorf("state %+v, want a pause at weight 0 naming the hand-set weight", st)
	}
	if got := weights(t, opts); !slices.Equal(got, []float64{0}) {
		t.Errorf("weights on the control topic %v, want the hand-set 0 only", got)
	}
}

// TestRolloutCommandsDoNotHoldRollbackOff: resume sent again and again
// while the candidate turns bad: the rollout is still rolled back.
func TestRolloutCommandsDoNotHoldRollbackOff(t *testing.T) {
	opts := cluster(t)
	f := startFleet(t, opts, "good")
	a := startController(t, opts, testConfig("a"), false)
	waitState(t, a.c, 10*time.Second, "stage 1", func(s State) bool { return s.Step == 1 })
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		b, _ := Command{Route: "shop", Command: Resume, By: "script"}.Encode()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				cl.ProduceSync(ctx, &kgo.Record{Topic: tRollout, Key: []byte("shop"), Value: b})
			}
		}
	}()
	f.mode.Store("bad")
	waitFor(t, func() bool { return testutil.ToFloat64(a.c.m.decisions.WithLabelValues("shop", Rollback)) > 0 })
	cancel()
	// Up to the rollback, every resume left the stage's since alone
	// (those after it start the rollout again, rightly).
	var since time.Time
	for _, d := range decisions(t, opts) {
		if d.Decision == Rollback {
			break
		}
		if d.Decision == Advance && d.Step == 1 {
			since = d.Since
		}
		if d.Decision == Resume && !d.Since.Equal(since) {
			t.Errorf("a resume of the active stage moved its since from %v: %+v", since, d)
			break
		}
	}
}

// TestRolloutTopic: the controller creates the rollout topic kept forever,
// and refuses to start on one of several partitions, naming the key.
func TestRolloutTopic(t *testing.T) {
	opts := cluster(t)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := CreateTopic(t.Context(), cl, tRollout); err != nil {
		t.Fatal(err)
	}
	rcs, err := adm.DescribeTopicConfigs(t.Context(), tRollout)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(tRollout, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" || c.Key == "retention.bytes" {
			got[c.Key] = c.MaybeValue()
		}
	}
	if diff := cmp.Diff(map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}, got); diff != "" {
		t.Errorf("rollout topic retention (-want +got):\n%s", diff)
	}

	if _, err := adm.CreateTopic(t.Context(), 2, -1, nil, "two-partitions"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("a")
	cfg.Topic = "two-partitions"
	c, err := New(cfg, opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Run(ctx); err == nil || !strings.Contains(err.Error(), "rollout.topic") || !strings.Contains(err.Error(), "2 partitions") {
		t.Errorf("Run on a rollout topic of 2 partitions: %v; want an error naming rollout.topic", err)
	}
}

// TestRolloutRouteRemoved: a route whose rollout is active but that is no
// longer in the config is paused where it is, saying why; records of
// routes not configured leave no commands or metrics behind.
func TestRolloutRouteRemoved(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	now := time.Now()
	b, _ := Decision{Route: "gone", Decision: Advance, Step: 2, Weight: 50, Time: now, Since: now, Controller: "old", Generation: 1}.Encode()
	produce(t, opts, tRollout, "gone", b)
	cmd, _ := Command{Route: "other", Command: Pause}.Encode()
	produce(t, opts, tRollout, "other", cmd)
	a := startController(t, opts, testConfig("a"), false)
	var paused *Decision
	waitFor(t, func() bool {
		for _, d := range decisions(t, opts) {
			if d.Route == "gone" && d.Decision == Pause {
				paused = &d
				return true
			}
		}
		return false
	})
	if !paused.Paused || paused.Weight != 50 || paused.Step != 2 || !strings.Contains(paused.Reasons[0], "no longer in the config; held at 50 %") {
		t.Errorf("pause %+v, want paused at stage 2, weight 50, saying why", *paused)
	}
	a.c.mu.Lock()
	_, pendingOther := a.c.pending["other"]
	_, stateGone := a.c.states["gone"]
	a.c.mu.Unlock()
	if pendingOther || stateGone {
		t.Errorf("kept for routes not configured: pending command %v, state %v; want neither", pendingOther, stateGone)
	}
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() != "shop" {
					t.Errorf("%s has a series for route %q; want the configured route's only", mf.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestRolloutStepsChanged: a controller whose steps differ from those the
// rollout's state was written under goes on at the highest stage at or
// below the fleet's weight, saying why, and never writes a higher weight
// before that stage has passed.
func TestRolloutStepsChanged(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "good")
	now := time.Now()
	b, _ := Decision{Route: "shop", Decision: Advance, Step: 2, Weight: 5, Time: now, Since: now, Controller: "old", Generation: 1}.Encode()
	produce(t, opts, tRollout, "shop", b)
	cfg := testConfig("a")
	cfg.Routes[0].Interval = time.Minute
	a := startController(t, opts, cfg, false)
	st := waitState(t, a.c, 10*time.Second, "remapped", func(s State) bool { return s.Controller == "a" })
	if st.Last != Hold || st.Step != 1 || st.Weight != 1 || !strings.Contains(st.Reasons[0], "the steps changed") {
		t.Errorf("state %+v, want a hold at stage 1 (weight 1) saying the steps changed", st)
	}
	waitFor(t, func() bool { w := weights(t, opts); return len(w) > 0 })
	if got := weights(t, opts); !slices.Equal(got, []float64{1}) {
		t.Errorf("weights on the control topic %v, want 1 only", got)
	}
}

// syncBuffer is a log sink a test can read while a controller writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRolloutGenerationOverflow: a decision of the highest generation
// there is: the controller refuses to act, naming the topic and the
// record's offset, rather than fence its own decisions out by wrapping.
func TestRolloutGenerationOverflow(t *testing.T) {
	opts := cluster(t)
	now := time.Now()
	b, _ := Decision{Route: "shop", Decision: Hold, Time: now, Since: now, Controller: "forged", Generation: math.MaxInt32}.Encode()
	off := produce(t, opts, tRollout, "shop", b)
	var logs syncBuffer
	c, err := New(testConfig("a"), opts, zerolog.New(&logs), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	want := fmt.Sprintf(`"topic":"%s","offset":%d`, tRollout, off)
	waitFor(t, func() bool { return strings.Contains(logs.String(), want) })
	if !strings.Contains(logs.String(), "highest generation") {
		t.Errorf("log %s: want the error to say why", logs.String())
	}
	if ds := decisions(t, opts); len(ds) != 1 {
		t.Errorf("decisions %v; want the forged one only", steps(ds))
	}
}

// TestRolloutIgnoresUnfitDecisions: decisions written while the
// controller runs whose step is beyond the last stage, or whose weight is
// neither the step's nor 0, are ignored.
func TestRolloutIgnoresUnfitDecisions(t *testing.T) {
	opts := cluster(t)
	startFleet(t, opts, "few")
	cfg := testConfig("a")
	cfg.Routes[0].MaxInconclusive = time.Hour
	a := startController(t, opts, cfg, false)
	st := waitState(t, a.c, 10*time.Second, "started", func(s State) bool { return s.Started })
	now := time.Now()
	for _, d := range []Decision{
		{Route: "shop", Decision: Advance, Step: 1, Weight: 37},
		{Route: "shop", Decision: Advance, Step: 9, Weight: 100},
		{Route: "shop", Decision: Hold, Step: 0, Weight: 150},
	} {
		d.Time, d.Since, d.Controller, d.Generation = now, now, "forged", st.Generation
		b, _ := d.Encode()
		produce(t, opts, tRollout, "shop", b)
	}
	if err := Send(t.Context(), opts, tRollout, Command{Route: "shop", Command: Pause}); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, a.c, 10*time.Second, "paused", func(s State) bool { return s.Paused })
	if st.Step != 0 || st.Weight != 0 || st.Controller != "a" {
		t.Errorf("state %+v, want a's pause at stage 0, weight 0: the forged decisions ignored", st)
	}
}

// TestPublishWeightKeepsOverrides: the controller writes a weight only
// after reading the control topic to its end: overrides written before it
// are kept, and a weight set by hand is not written over (but for 0).
func TestPublishWeightKeepsOverrides(t *testing.T) {
	opts := cluster(t)
	c, err := New(testConfig("a"), opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := control.CreateTopic(t.Context(), cl, tControl); err != nil {
		t.Fatal(err)
	}
	fc, err := kgo.NewClient(append(slices.Clone(opts), kgo.ConsumeTopics(tControl), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.follow(ctx, fc, tControl, c.readControl) }()
	defer func() { cancel(); <-done; fc.Close() }()

	cand := "http://candidate-2"
	if err := control.PublishDesired(t.Context(), opts, tControl, "shop", &control.Desired{Candidate: &cand}); err != nil {
		t.Fatal(err)
	}
	if err := c.publishWeight(t.Context(), cl, "shop", 5); err != nil {
		t.Fatal(err)
	}
	got, err := control.ReadDesired(t.Context(), opts, tControl)
	if err != nil {
		t.Fatal(err)
	}
	if d := got["shop"]; d.Candidate == nil || *d.Candidate != cand || d.Weight == nil || *d.Weight != 5 {
		t.Errorf("desired %+v, want the candidate override kept and weight 5", d)
	}

	hand := 30.0
	if err := control.PublishDesired(t.Context(), opts, tControl, "shop", &control.Desired{Weight: &hand}); err != nil {
		t.Fatal(err)
	}
	if err := c.publishWeight(t.Context(), cl, "shop", 50); err != nil {
		t.Fatal(err)
	}
	if got := weights(t, opts); got[len(got)-1] != 30 {
		t.Errorf("weights %v: the hand-set 30 was written over", got)
	}
	if err := c.publishWeight(t.Context(), cl, "shop", 0); err != nil {
		t.Fatal(err)
	}
	if got := weights(t, opts); got[len(got)-1] != 0 {
		t.Errorf("weights %v: want 0 written over the hand-set weight", got)
	}
}
