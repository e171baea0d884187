package canary

import (
	"testing"
	"time"
)

// TestBreakerZeros: BreakerConfig takes no defaults; each zero means what
// its field says.
func TestBreakerZeros(t *testing.T) {
	t.Run("window zero counts since the last closing", func(t *testing.T) {
		clk := newClock()
		b := NewBreaker(BreakerConfig{MaxErrors: 2}, clk.now, nil)
		b.record(failure, false)
		clk.add(24 * time.Hour)
		b.record(failure, false)
		if s := b.State(); s != Open {
			t.Errorf("two errors a day apart, no window: %v, want open", s)
		}
	})
	t.Run("cooldown zero stays open until Reset", func(t *testing.T) {
		clk := newClock()
		b := NewBreaker(BreakerConfig{MaxErrors: 1, Probes: 1}, clk.now, nil)
		b.record(failure, false)
		clk.add(365 * 24 * time.Hour)
		if v := b.admit(false); v != blocked || b.State() != Open {
			t.Errorf("a year later: %v, %v; want blocked, open", v, b.State())
		}
		b.Reset()
		if v := b.admit(false); v != pass {
			t.Errorf("after Reset: %v, want pass", v)
		}
	})
	t.Run("probes zero closes after the cooldown", func(t *testing.T) {
		clk := newClock()
		var tr transitions
		b := NewBreaker(BreakerConfig{MaxErrors: 1, Window: time.Minute, Cooldown: time.Second}, clk.now, tr.record)
		b.record(failure, false)
		clk.add(time.Second)
		if v := b.admit(false); v != pass || b.State() != Closed {
			t.Errorf("after the cooldown: %v, %v; want pass, closed", v, b.State())
		}
		if want := []string{"closed>open", "open>closed"}; len(tr.seen) != 2 || tr.seen[0] != want[0] || tr.seen[1] != want[1] {
			t.Errorf("transitions %v, want %v", tr.seen, want)
		}
	})
	t.Run("min requests zero judges the rate at once", func(t *testing.T) {
		b := NewBreaker(BreakerConfig{MaxErrorRate: 0.5, Window: time.Minute}, newClock().now, nil)
		b.record(failure, false)
		if s := b.State(); s != Open {
			t.Errorf("one answer, an error, no minimum: %v, want open", s)
		}
	})
}
