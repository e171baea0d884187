package rollout

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func testRoute() Route {
	return Route{
		Name: "shop", Steps: []float64{1, 50, 100}, Interval: time.Minute, ShadowFirst: true, MaxInconclusive: 10 * time.Minute,
		Limits: verdict.Limits{MinCompared: 100, MaxRegressionRate: 0.01, MaxCandidateErrorRate: 0.01, MaxLatencyRatio: 1.2, Confidence: 0.95},
	}
}

// evidence is n compared requests, of which regressions regressed, the
// reference taking refMS and the candidate candMS each; with served, n
// requests served by each side, candErrs of the candidate's with 5xx.
type evidence struct {
	n, regressions int64
	refMS, candMS  float64
	served         bool
	candErrs       int64
}

func (e evidence) tally() *tally.Tally {
	t := tally.New("shop", "")
	t.Compared, t.Equal = e.n, e.n-e.regressions
	t.Mismatches["regression"] = e.regressions
	for range e.n {
		t.Latency.Reference.Add(e.refMS)
		t.Latency.Candidate.Add(e.candMS)
		switch {
		case e.candMS > e.refMS:
			t.Signs.Slower++
		case e.candMS < e.refMS:
			t.Signs.Faster++
		default:
			t.Signs.Tie++
		}
	}
	if e.served {
		t.Served = map[string]*tally.Served{"reference": {Status: map[string]int64{"2xx": e.n}}, "candidate": {Status: map[string]int64{"2xx": e.n - e.candErrs, "5xx": e.candErrs}}}
		for i := range e.n {
			t.Served["reference"].Latency.Add(e.refMS * (0.5 + float64(i%10)/10))
			t.Served["candidate"].Latency.Add(e.candMS * (0.5 + float64(i%10)/10))
		}
	}
	return t
}

func TestJudge(t *testing.T) {
	r := testRoute()
	good := evidence{n: 1000, refMS: 10, candMS: 10, served: true}
	tests := []struct {
		name    string
		st      State
		ev      evidence
		noTally bool
		at      time.Duration // after since
		last    time.Duration // the latest tally ended this long before now
		want    string
		hold    string
		step    int
		weight  float64
		paused  bool
		done    bool
		reason  string // the first reason contains it
	}{
		{name: "stage 0 passes after its interval: advance", st: State{Step: 0}, ev: good, at: time.Minute, want: Advance, step: 1, weight: 1, reason: "verdict pass at stage 0"},
		{name: "passing before the interval: hold, waiting", st: State{Step: 0}, ev: good, at: 59 * time.Second, want: Hold, hold: holdWaiting, reason: "59s of interval 1m0s"},
		{name: "one stage before the last: promote to 100", st: State{Step: 2, Weight: 50}, ev: good, at: time.Minute, want: Promote, step: 3, weight: 100, done: true},
		{name: "regressions over the limit: rollback", st: State{Step: 1, Weight: 1}, ev: evidence{n: 1000, regressions: 100, refMS: 10, candMS: 10, served: true}, at: time.Second,
			want: Rollback, step: 1, weight: 0, paused: true, reason: "verdict fail at stage 1 (weight 1 %)"},
		{name: "only slower: rollback by the latency gate", st: State{Step: 0}, ev: evidence{n: 1000, refMS: 10, candMS: 30}, at: 5 * time.Minute,
			want: Rollback, paused: true},
		{name: "candidate errors on what it served: rollback", st: State{Step: 1, Weight: 1}, ev: evidence{n: 1000, refMS: 10, candMS: 10, served: true, candErrs: 300}, at: time.Minute,
			want: Rollback, step: 1, paused: true},
		{name: "too few compared: hold, inconclusive", st: State{Step: 1, Weight: 1}, ev: evidence{n: 20, refMS: 10, candMS: 10, served: true}, at: 5 * time.Minute,
			want: Hold, hold: holdInconclusive, step: 1, weight: 1, reason: "verdict inconclusive at stage 1"},
		{name: "too few compared for max_inconclusive: pause", st: State{Step: 1, Weight: 1}, ev: evidence{n: 20, refMS: 10, candMS: 10, served: true}, at: 10 * time.Minute,
			want: Pause, step: 1, weight: 1, paused: true, reason: "max_inconclusive 10m0s: rollout paused"},
		{name: "no tally for 3 intervals: hold, never advance", st: State{Step: 0}, ev: good, at: 5 * time.Minute, last: 31 * time.Second,
			want: Hold, hold: holdNoEvidence, reason: "no evidence arriving"},
		{name: "no tally at all: hold", st: State{Step: 0}, noTally: true, at: time.Second, want: Hold, hold: holdNoEvidence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.Started, st.Since = true, t0
			now := t0.Add(tt.at)
			ev := Evidence{LastTally: now.Add(-tt.last)}
			if !tt.noTally {
				ev.Tally = tt.ev.tally()
			} else {
				ev.LastTally = time.Time{}
			}
			j := judge(r, st, ev, now, 10*time.Second)
			d := j.Decision
			got := []any{d.Decision, j.hold, d.Step, d.Weight, d.Paused, d.Done}
			want := []any{tt.want, tt.hold, tt.step, tt.weight, tt.paused, tt.done}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision, hold, step, weight, paused, done (-want +got):\n%s\nreasons: %q", diff, d.Reasons)
			}
			if len(d.Reasons) == 0 || !strings.Contains(d.Reasons[0], tt.reason) {
				t.Errorf("reasons %q: want the first to contain %q", d.Reasons, tt.reason)
			}
			wantSince := t0
			if d.Decision == Advance || d.Decision == Promote {
				wantSince = now
			}
			if !d.Since.Equal(wantSince) {
				t.Errorf("since %s, want %s", d.Since, wantSince)
			}
		})
	}
}

func TestJudgeReasons(t *testing.T) {
	r := testRoute()
	st := State{Started: true, Step: 1, Weight: 1, Since: t0}
	now := t0.Add(time.Minute)
	j := judge(r, st, Evidence{Tally: evidence{n: 1000, refMS: 10, candMS: 10, served: true, candErrs: 300}.tally(), LastTally: now}, now, 10*time.Second)
	// The failing side (served) first, its failing figure with it; no
	// regression rate for what is served (nothing served is compared).
	if len(j.Reasons) < 2 || !strings.HasPrefix(j.Reasons[1], "served: candidate error rate 30 %") {
		t.Errorf("reasons %q: want the served error rate second", j.Reasons)
	}
	for _, reason := range j.Reasons {
		if strings.HasPrefix(reason, "served: regression rate") {
			t.Errorf("reason %q: served requests have no regression rate", reason)
		}
	}
}

func TestServedFigures(t *testing.T) {
	// Unpaired, the candidate's served requests are set against the
	// reference's served median: all of a 3x slower candidate's are above
	// it, about half of an equal one's.
	slow := evidence{n: 100, refMS: 10, candMS: 30, served: true}.tally()
	_, f := figures(Evidence{Tally: slow}, 1)
	if f == nil || f.Slower != 100 || f.Faster != 0 || f.Compared != 100 {
		t.Errorf("slow: served figures %+v, want 100 slower of 100", f)
	}
	same := evidence{n: 100, refMS: 10, candMS: 10, served: true}.tally()
	if _, f = figures(Evidence{Tally: same}, 1); f == nil || f.Slower < 30 || f.Slower > 60 {
		t.Errorf("same: served figures %+v, want about half slower", f)
	}
	if _, f = figures(Evidence{Tally: same}, 0); f != nil {
		t.Errorf("stage 0: served figures %+v, want none", f)
	}
}

func TestStartAndAnswer(t *testing.T) {
	r := testRoute()
	off := int64(7)
	d := start(r, t0)
	if d.Decision != Hold || d.Step != 0 || d.Weight != 0 || !d.Since.Equal(t0) {
		t.Errorf("start, shadow first: %+v", d)
	}
	r2 := r
	r2.ShadowFirst = false
	if d := start(r2, t0); d.Decision != Advance || d.Step != 1 || d.Weight != 1 {
		t.Errorf("start without shadow_first: %+v, want advance to stage 1 (weight 1)", d)
	}
	at := State{Started: true, Step: 2, Weight: 50, Since: t0, Last: Advance}
	later := t0.Add(time.Hour)
	tests := []struct {
		name   string
		st     State
		cmd    string
		step   int
		weight float64
		paused bool
		done   bool
		since  time.Time
	}{
		{"pause keeps the weight", at, Pause, 2, 50, true, false, t0},
		{"resume an active rollout: nothing changes, its evidence stands", at, Resume, 2, 50, false, false, t0},
		{"resume a pause: same stage, evidence afresh", State{Started: true, Step: 2, Weight: 50, Since: t0, Paused: true, Last: Pause}, Resume, 2, 50, false, false, later},
		{"resume a hand-set weight: the stage's weight", State{Started: true, Step: 2, Weight: 30, Since: t0, Paused: true, Last: Pause}, Resume, 2, 50, false, false, later},
		{"resume beyond the last stage (the steps changed): at or below its weight", State{Started: true, Step: 5, Weight: 60, Since: t0, Paused: true, Last: Pause}, Resume, 2, 50, false, false, later},
		{"resume after a rollback: from the start", State{Started: true, Step: 2, Weight: 0, Since: t0, Paused: true, Last: Rollback}, Resume, 0, 0, false, false, later},
		{"abort: weight 0, done", at, Abort, 2, 0, true, true, t0},
		{"promote: 100 now, done", at, Promote, 3, 100, false, true, later},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := answer(r, tt.st, Command{Route: "shop", Command: tt.cmd, By: "ops@host"}, off, later)
			got := []any{d.Decision, d.Step, d.Weight, d.Paused, d.Done, d.Since, *d.CommandOffset}
			want := []any{tt.cmd, tt.step, tt.weight, tt.paused, tt.done, tt.since, off}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !strings.Contains(strings.Join(d.Reasons, " "), "ops@host") {
				t.Errorf("reasons %q do not say who", d.Reasons)
			}
		})
	}
}

func TestStateFencing(t *testing.T) {
	st := newState()
	var f Fence
	off := int64(4)
	for _, d := range []Decision{
		{Route: "shop", Step: 1, Weight: 1, Decision: Advance, Generation: 3},
		{Route: "cart", Step: 2, Weight: 50, Decision: Advance, Generation: 4, CommandOffset: &off},
	} {
		if !f.Admit(&d) {
			t.Fatalf("Admit(%+v) = false", d)
		}
		st.apply(d)
	}
	// A fence is across routes: generation 4 was read for cart, so shop's
	// generation 3 is a deposed controller's.
	if f.Admit(&Decision{Route: "shop", Step: 3, Weight: 100, Decision: Advance, Generation: 3}) {
		t.Error("a decision of an older generation was admitted")
	}
	if st.Step != 2 || st.Answered != 4 || st.Generation != 4 || f.Generation() != 4 {
		t.Errorf("state %+v, fence %d; want step 2, answered 4, generation 4", st, f.Generation())
	}
}

// TestFutureTallyIsNoEvidence: a tally dated in the future counts as
// arriving when it was read, so no evidence after it still holds.
func TestFutureTallyIsNoEvidence(t *testing.T) {
	clock := t0
	cfg := testConfig("a")
	cfg.Routes = []Route{testRoute()}
	cfg.Now = func() time.Time { return clock }
	c, err := New(cfg, nil, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tl := evidence{n: 2000, refMS: 10, candMS: 10}.tally()
	tl.Instance, tl.Start, tl.End = "i1", t0, t0.Add(24*time.Hour)
	b, _ := json.Marshal(tl)
	c.readTally(&kgo.Record{Value: b})
	st := State{Started: true, Since: t0, Answered: -1}
	clock = t0.Add(4 * cfg.TallyInterval)
	j := judge(testRoute(), st, c.stageEvidence("shop", st.Since), clock, cfg.TallyInterval)
	if j.Decision.Decision != Hold || j.hold != holdNoEvidence {
		t.Errorf("judged %s (%s) %q; want a hold for no evidence arriving", j.Decision.Decision, j.hold, j.Reasons)
	}
}

// TestRemap: a rollout whose weight is not its stage's (the steps were
// changed) goes on at the highest stage at or below its weight.
func TestRemap(t *testing.T) {
	r := testRoute() // steps 1, 50, 100
	later := t0.Add(time.Hour)
	active := func(step int, w float64) State {
		return State{Started: true, Step: step, Weight: w, Since: t0, Last: Advance, Answered: -1}
	}
	tests := []struct {
		name   string
		st     State
		remap  bool
		step   int
		weight float64
		since  time.Time
	}{
		{"matches its stage", active(2, 50), false, 0, 0, time.Time{}},
		{"weight 5 at stage 2: stage 1 (1 %)", active(2, 5), true, 1, 1, later},
		{"weight 25 at stage 1: stage 1, never up to 50", active(1, 25), true, 1, 1, later},
		{"stage 4 of more steps at 50 %: stage 2, evidence kept", active(4, 50), true, 2, 50, t0},
		{"below the first step: stage 0", active(1, 0.5), true, 0, 0, later},
		{"weight 0 at stage 1: stage 0, evidence kept", active(1, 0), true, 0, 0, t0},
		{"paused: left be", State{Started: true, Step: 2, Weight: 30, Paused: true, Answered: -1}, false, 0, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := remap(r, tt.st, later)
			got := []any{ok, d.Step, d.Weight, d.Since}
			want := []any{tt.remap, tt.step, tt.weight, tt.since}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if ok && (d.Decision != Hold || !strings.Contains(d.Reasons[0], "the steps changed")) {
				t.Errorf("decision %s %q, want a hold saying the steps changed", d.Decision, d.Reasons)
			}
		})
	}
}
