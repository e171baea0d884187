package tally

import (
	"testing"
	"time"
)

// TestLatencyTieZero: [report] latency_tie = "0s" reaches the collector as
// zero and means exact ties only (it used to become 1ms here).
func TestLatencyTieZero(t *testing.T) {
	c := NewCollector(CollectorConfig{Instance: "i1"})
	c.Compared(rec("/a", 10, 10)) // tie
	slower := rec("/a", 10, 10)
	slower.Candidate.Duration += time.Microsecond
	c.Compared(slower)
	faster := rec("/a", 10, 10)
	faster.Candidate.Duration -= time.Microsecond
	c.Compared(faster)
	got := c.Flush()
	if len(got) != 1 {
		t.Fatalf("%d tallies, want 1", len(got))
	}
	if want := (Signs{Slower: 1, Faster: 1, Tie: 1}); got[0].Signs != want {
		t.Errorf("signs %+v, want %+v", got[0].Signs, want)
	}
}
