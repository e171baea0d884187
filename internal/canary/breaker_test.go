package canary

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type transitions struct{ seen []string }

func (tr *transitions) record(from, to State) {
	tr.seen = append(tr.seen, from.String()+">"+to.String())
}

func TestBreakerTripsAndRecovers(t *testing.T) {
	clk := newClock()
	var tr transitions
	b := NewBreaker(BreakerConfig{MaxErrors: 3, Window: 10 * time.Second, Cooldown: 30 * time.Second, Probes: 2}, clk.now, tr.record)

	fail := func(probe bool) { b.record(failure, probe) }
	ok := func(probe bool) { b.record(success, probe) }

	// Errors spread wider than the window do not trip it.
	fail(false)
	fail(false)
	clk.add(11 * time.Second)
	fail(false)
	if s := b.State(); s != Closed {
		t.Fatalf("errors outside the window tripped it: %v", s)
	}
	fail(false)
	fail(false) // three within 10s
	if s := b.State(); s != Open {
		t.Fatalf("after 3 errors in the window: %v, want open", s)
	}
	if v := b.admit(false); v != blocked {
		t.Fatalf("open: verdict %v, want blocked", v)
	}
	clk.add(29 * time.Second)
	if v := b.admit(false); v != blocked {
		t.Fatalf("before the cooldown: verdict %v, want blocked", v)
	}
	clk.add(time.Second)
	// Half-open: two probes, then nothing until they report.
	if v := b.admit(false); v != passProbe {
		t.Fatalf("half-open: verdict %v, want a probe", v)
	}
	if v := b.admit(true); v != blocked {
		t.Fatalf("half-open, external: verdict %v, want blocked", v)
	}
	if v := b.admit(false); v != passProbe {
		t.Fatalf("half-open: second verdict %v, want a probe", v)
	}
	if v := b.admit(false); v != blocked {
		t.Fatalf("half-open, probes taken: verdict %v, want blocked", v)
	}
	ok(true)
	fail(true) // one probe fails: open again
	if s := b.State(); s != Open {
		t.Fatalf("failed probe: %v, want open", s)
	}
	clk.add(30 * time.Second)
	b.admit(false)
	b.admit(false)
	b.record(abandoned, true) // the client went away: the slot comes back
	if v := b.admit(false); v != passProbe {
		t.Fatalf("abandoned probe's slot: verdict %v, want a probe", v)
	}
	ok(true)
	ok(true)
	if s := b.State(); s != Closed {
		t.Fatalf("probes succeeded: %v, want closed", s)
	}
	if v := b.admit(false); v != pass {
		t.Fatalf("closed: verdict %v", v)
	}
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
	if diff := cmp.Diff(want, tr.seen); diff != "" {
		t.Errorf("transitions (-want +got)\n%s", diff)
	}

	fail(false)
	fail(false)
	fail(false)
	b.Reset()
	if s := b.State(); s != Closed {
		t.Errorf("after Reset: %v", s)
	}
}

func TestBreakerErrorRate(t *testing.T) {
	clk := newClock()
	b := NewBreaker(BreakerConfig{MaxErrorRate: 0.5, MinRequests: 10, Window: time.Minute}, clk.now, nil)
	for range 9 {
		b.record(failure, false) // 100 % but under min_requests
	}
	if s := b.State(); s != Closed {
		t.Fatalf("under min_requests: %v", s)
	}
	b.record(failure, false)
	if s := b.State(); s != Open {
		t.Fatalf("10 of 10 errors: %v, want open", s)
	}

	b = NewBreaker(BreakerConfig{MaxErrorRate: 0.5, MinRequests: 10, Window: time.Minute}, clk.now, nil)
	for i := range 20 {
		o := success
		if i%2 == 1 {
			o = failure
		}
		b.record(o, false) // at most 50 %: not over
	}
	if s := b.State(); s != Closed {
		t.Fatalf("50 %% errors with max 0.5: %v", s)
	}
	b.record(failure, false)
	if s := b.State(); s != Open {
		t.Fatalf("over 50 %%: %v, want open", s)
	}
}

func TestBreakerLimits(t *testing.T) {
	clk := newClock()
	b := NewBreaker(BreakerConfig{MaxRequests: 3, Window: 10 * time.Second}, clk.now, nil)
	for i := range 3 {
		if v := b.admit(false); v != pass {
			t.Fatalf("request %d: %v", i, v)
		}
	}
	if v := b.admit(false); v != limited {
		t.Fatalf("4th request in the window: %v, want limited", v)
	}
	clk.add(10 * time.Second)
	if v := b.admit(false); v != pass {
		t.Fatalf("next window: %v, want pass", v)
	}

	b = NewBreaker(BreakerConfig{MaxRPS: 2}, clk.now, nil)
	got := 0
	for range 10 {
		if b.admit(false) == pass {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("burst: %d passed, want 2", got)
	}
	clk.add(500 * time.Millisecond)
	if v := b.admit(false); v != pass {
		t.Fatalf("after half a second at 2 rps: %v, want pass", v)
	}
	if v := b.admit(false); v != limited {
		t.Fatalf("bucket empty: %v, want limited", v)
	}
}

// TestRouterBreaker drives the breaker through Decide and Report.
func TestRouterBreaker(t *testing.T) {
	clk := newClock()
	r := newRouter(t, Config{Weight: 100, Now: clk.now, Breaker: BreakerConfig{MaxErrors: 2, Cooldown: time.Minute, Probes: 1, MaxRequests: 1000}})
	for range 2 {
		d := r.Decide(get(t), nil, "/x", nil)
		r.Report(d, Outcome{Side: Candidate, Err: errors.New("connection refused")})
	}
	if d := r.Decide(get(t), nil, "/x", nil); d.Side != Reference || d.Rule != RuleBreaker {
		t.Fatalf("tripped: %v/%s, want reference/breaker", d.Side, d.Rule)
	}
	clk.add(time.Minute)
	probe := r.Decide(get(t), nil, "/x", nil)
	if probe.Side != Candidate || !probe.probe {
		t.Fatalf("half-open: %+v, want a probe to the candidate", probe)
	}
	if d := r.Decide(get(t), nil, "/x", nil); d.Rule != RuleBreaker {
		t.Fatalf("second request while probing: %s, want breaker", d.Rule)
	}
	r.Report(probe, Outcome{Side: Candidate, Status: 204})
	if s := r.Breaker().State(); s != Closed {
		t.Fatalf("probe succeeded: %v", s)
	}
	if d := r.Decide(get(t), nil, "/x", nil); d.Side != Candidate || d.Rule != RuleWeight {
		t.Fatalf("recovered: %v/%s", d.Side, d.Rule)
	}
}
