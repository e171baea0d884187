package tally

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// clock is a settable clock for Collector.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func rec(route string, refMS, candMS int, diffs ...compare.Diff) *publish.Record {
	return &publish.Record{
		Route:     route,
		Endpoint:  route,
		Reference: publish.Side{Status: 200, Duration: time.Duration(refMS) * time.Millisecond},
		Candidate: publish.Side{Status: 200, Duration: time.Duration(candMS) * time.Millisecond},
		Diffs:     diffs,
		Equal:     len(diffs) == 0,
	}
}

func TestCollectorCounts(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	c := NewCollector(CollectorConfig{Instance: "i1", LatencyTie: 2 * time.Millisecond, Now: clk.now})

	c.Compared(rec("/a", 10, 10))                                                       // equal, tie
	c.Compared(rec("/a", 10, 20, compare.Diff{Path: "$.x", Class: compare.Regression})) // slower
	c.Compared(rec("/a", 10, 11, compare.Diff{Path: "$.x", Class: compare.Noise},       // tie (1ms)
		compare.Diff{Path: "$.y", Class: compare.Noise}))
	c.Compared(rec("/a", 10, 5, compare.Diff{Path: "$.x", Class: compare.Noise}, // faster
		compare.Diff{Path: "status", Class: compare.Regression}))
	failed := rec("/a", 10, 30, compare.Diff{Path: "error", Class: compare.Regression})
	failed.Candidate = publish.Side{Err: fmt.Errorf("dialing: %w", syscall.ECONNREFUSED), Duration: 30 * time.Millisecond}
	c.Compared(failed) // slower, refused
	five := rec("/a", 10, 10, compare.Diff{Path: "status", Class: compare.Regression})
	five.Candidate.Status = 503
	c.Compared(five) // tie, 5xx
	sec := rec("/a", 10, 10)
	sec.Secondary = &publish.Side{Status: 200, Duration: 7 * time.Millisecond}
	c.Compared(sec)
	c.Skipped("/a", "sample")
	c.Skipped("/a", "sample")
	c.Dropped("/a", "in_flight")
	c.Served("/b", "candidate", 200, 4*time.Millisecond)
	c.Served("/b", "candidate", 0, 4*time.Millisecond)
	c.Served("/b", "reference", 503, 4*time.Millisecond)

	clk.t = clk.t.Add(10 * time.Second)
	got := c.Flush()
	if len(got) != 2 {
		t.Fatalf("%d tallies, want 2 (/a and /b)", len(got))
	}
	a := got[0]
	want := New("/a", "/a")
	want.Instance, want.Start, want.End = "i1", clk.t.Add(-10*time.Second), clk.t
	want.Compared, want.Equal = 7, 2
	want.Mismatches = map[string]int64{"regression": 4, "noise": 1}
	want.CandidateErrors = map[string]int64{"refused": 1, "5xx": 1}
	want.Skipped = map[string]int64{"sample": 2}
	want.Dropped = map[string]int64{"in_flight": 1}
	want.Paths = map[string]PathCount{"$.x": {3, 2}, "$.y": {1, 1}, "status": {2, 0}, "error": {1, 0}}
	want.Signs = Signs{Slower: 2, Faster: 1, Tie: 4}
	for _, ms := range []float64{10, 10, 10, 10, 10, 10, 10} {
		want.Latency.Reference.Add(ms)
	}
	for _, ms := range []float64{10, 20, 11, 5, 30, 10, 10} {
		want.Latency.Candidate.Add(ms)
	}
	want.Latency.Secondary.Add(7)
	if diff := cmp.Diff(want, a, cmp.AllowUnexported(Histogram{})); diff != "" {
		t.Errorf("tally of /a (-want +got)\n%s", diff)
	}
	b := got[1]
	if s := b.Served["candidate"]; s == nil || s.Status["2xx"] != 1 || s.Status["error"] != 1 || s.Latency.N() != 2 {
		t.Errorf("served by the candidate on /b: %+v", s)
	}
	if s := b.Served["reference"]; s == nil || s.Status["5xx"] != 1 {
		t.Errorf("served by the reference on /b: %+v", s)
	}

	// The next interval starts empty where the last one ended.
	c.Compared(rec("/a", 1, 1))
	clk.t = clk.t.Add(5 * time.Second)
	next := c.Flush()
	if len(next) != 1 || next[0].Compared != 1 || !next[0].Start.Equal(a.End) || !next[0].End.Equal(clk.t) {
		t.Errorf("next interval: %+v", next)
	}
	if len(c.Flush()) != 0 {
		t.Error("an empty interval gave tallies")
	}
}

func TestMergeAndWire(t *testing.T) {
	c := NewCollector(CollectorConfig{Instance: "i1"})
	for i := range 50 {
		c.Compared(rec("/a", 10, 10+i%3, compare.Diff{Path: "$.p", Class: compare.Regression}))
	}
	c2 := NewCollector(CollectorConfig{Instance: "i2"})
	for range 30 {
		c2.Compared(rec("/a", 20, 20))
	}
	x, y := c.Flush()[0], c2.Flush()[0]

	// Through the wire and back, then merged.
	var decoded []*Tally
	for _, tt := range []*Tally{x, y} {
		b, err := json.Marshal(tt)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		decoded = append(decoded, d)
	}
	m := New("/a", "/a")
	m.Merge(decoded[0])
	m.Merge(decoded[1])
	if m.Compared != 80 || m.Equal != 30 || m.Regressions() != 50 || m.Paths["$.p"].Differences != 50 {
		t.Errorf("merged counts: compared %d equal %d regressions %d paths %v", m.Compared, m.Equal, m.Regressions(), m.Paths)
	}
	if m.Latency.Reference.N() != 80 || m.Latency.Reference.Quantile(0.5) < 9.8 || m.Latency.Reference.Quantile(0.99) < 19.6 {
		t.Errorf("merged reference latency: n %d p50 %v p99 %v", m.Latency.Reference.N(), m.Latency.Reference.Quantile(0.5), m.Latency.Reference.Quantile(0.99))
	}
	if m.Start.After(x.Start) || m.End.Before(y.End) {
		t.Errorf("merged interval %v..%v does not cover both", m.Start, m.End)
	}
}

func TestBounds(t *testing.T) {
	c := NewCollector(CollectorConfig{})
	c.maxEndpoints = 3 // MaxEndpoints, lowered
	for i := range 10 {
		r := rec("/a", 1, 1)
		r.Endpoint = fmt.Sprintf("ep%d", i)
		for j := range 3 {
			r.Diffs = append(r.Diffs, compare.Diff{Path: fmt.Sprintf("$.f%d_%d", i, j), Class: compare.Regression})
		}
		c.Compared(r)
	}
	ts := c.Flush()
	if len(ts) != 4 { // 3 endpoints and the rest
		t.Fatalf("%d tallies, want 4", len(ts))
	}
	merged := New("/a", "")
	for range 50 { // paths beyond MaxPaths are counted only together
		for _, tt := range ts {
			merged.Merge(tt)
		}
	}
	if len(merged.Paths) != 30 || merged.Compared != 500 {
		t.Errorf("paths %d, compared %d", len(merged.Paths), merged.Compared)
	}
	wide := New("/a", "/a")
	for i := range 2 * MaxPaths {
		wide.countPath(fmt.Sprint(i), PathCount{Differences: 2})
		addKind(wide.Skipped, fmt.Sprint(i), 1)
	}
	if len(wide.Paths) != MaxPaths || wide.UntrackedDifferences != 2*MaxPaths || len(wide.Skipped) != MaxKinds+1 || wide.Skipped[OtherKey] != 2*MaxPaths-MaxKinds {
		t.Errorf("paths %d untracked %d skipped kinds %d (other %d)", len(wide.Paths), wide.UntrackedDifferences, len(wide.Skipped), wide.Skipped[OtherKey])
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, v := range map[string]string{
		"record":       `{"schema_version":1,"id":"x","equal":true,"route":"/a"}`,
		"other kind":   `{"kind":"x","schema_version":1,"route":"/a"}`,
		"no route":     `{"kind":"miffy.tally","schema_version":1}`,
		"equal>cmp":    `{"kind":"miffy.tally","schema_version":1,"route":"/a","compared":1,"equal":2}`,
		"bad buckets":  `{"kind":"miffy.tally","schema_version":1,"route":"/a","latency":{"reference":{"n":1,"buckets":[[9999,1]]}}}`,
		"n mismatched": `{"kind":"miffy.tally","schema_version":1,"route":"/a","latency":{"reference":{"n":5,"buckets":[[3,1]]}}}`,
		"not json":     `nope`,
	} {
		if _, err := Decode([]byte(v)); !errors.Is(err, errNotTally) {
			t.Errorf("%s: err %v, want errNotTally", name, err)
		}
	}
}

func TestIDPrefixes(t *testing.T) {
	c := NewCollector(CollectorConfig{})
	r := rec("/a", 1, 1)
	r.ID = "3f9a0c12b4e1-42"
	c.Compared(r)
	got := c.Flush()[0]
	if diff := cmp.Diff([]string{"3f9a0c12b4e1"}, got.IDPrefixes); diff != "" {
		t.Errorf("prefixes (-want +got)\n%s", diff)
	}
	m := New("/a", "/a")
	for i := range MaxPrefixes {
		m.Merge(&Tally{IDPrefixes: []string{fmt.Sprint(i)}})
	}
	m.Merge(&Tally{IDPrefixes: []string{"0"}}) // known: no change
	if len(m.IDPrefixes) != MaxPrefixes || m.PrefixesOverflow {
		t.Fatalf("%d prefixes, overflow %v", len(m.IDPrefixes), m.PrefixesOverflow)
	}
	m.Merge(&Tally{IDPrefixes: []string{"one too many"}})
	if m.IDPrefixes != nil || !m.PrefixesOverflow {
		t.Errorf("past the bound: %d prefixes, overflow %v", len(m.IDPrefixes), m.PrefixesOverflow)
	}
}

// TestCollectorTotals: the admin API's counters are a route's counts since
// start, kept across Flush, by name.
func TestCollectorTotals(t *testing.T) {
	c := NewCollector(CollectorConfig{Instance: "i1"})
	c.Compared(rec("/a", 10, 10))
	c.Compared(rec("/a", 10, 10, compare.Diff{Path: "$.x", Class: compare.Regression}))
	c.Flush()
	c.Compared(rec("/a", 10, 10, compare.Diff{Path: "$.x", Class: compare.Noise}))
	failed := rec("/a", 10, 30, compare.Diff{Path: "error", Class: compare.Regression})
	failed.Candidate = publish.Side{Err: fmt.Errorf("dialing: %w", syscall.ECONNREFUSED)}
	c.Compared(failed)
	c.Skipped("/a", "paused")
	c.Dropped("/a", "in_flight")
	c.Served("/b", "candidate", 200, time.Millisecond)
	c.Served("/b", "reference", 200, time.Millisecond)
	c.Served("/b", "reference", 503, time.Millisecond)
	c.Flush()

	for _, tt := range []struct {
		route string
		want  map[string]int64
	}{
		{"/a", map[string]int64{"compared": 4, "equal": 1, "regressions": 2, "noise": 1, "candidate_errors": 1, "skipped": 1, "dropped": 1}},
		{"/b", map[string]int64{"served_candidate": 1, "served_reference": 2}},
		{"/none", nil},
	} {
		if diff := cmp.Diff(tt.want, c.Totals(tt.route)); diff != "" {
			t.Errorf("Totals(%q) (-want +got):\n%s", tt.route, diff)
		}
	}
}
