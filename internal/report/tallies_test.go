package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

var defaultLimits = verdict.Limits{MinCompared: 200, MaxRegressionRate: 0.001, MaxCandidateErrorRate: 0.001, MaxLatencyRatio: 1.2, Confidence: 0.95}

// tallyValue is the tally of n compared requests on route from one
// instance's interval, regressions of them differing at $.price, with the
// candidate taking candMS where the reference takes 10 ms (one request in
// fifty the candidate takes slowMS).
func tallyValue(t *testing.T, route string, start time.Time, n, regressions int, candMS, slowMS time.Duration) []byte {
	t.Helper()
	clk := start
	c := tally.NewCollector(tally.CollectorConfig{Instance: "i", Now: func() time.Time { return clk }})
	for i := range n {
		r := &publish.Record{Route: route, Endpoint: route,
			Reference: publish.Side{Status: 200, Duration: 10 * time.Millisecond},
			Candidate: publish.Side{Status: 200, Duration: candMS * time.Millisecond}}
		if i%50 == 49 {
			r.Candidate.Duration = slowMS * time.Millisecond
		}
		if i < regressions {
			r.Diffs = []compare.Diff{{Path: "$.price", Class: compare.Regression}}
		}
		c.Compared(r)
	}
	clk = start.Add(10 * time.Second)
	ts := c.Flush()
	if len(ts) != 1 {
		t.Fatalf("%d tallies", len(ts))
	}
	b, err := json.Marshal(ts[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTalliesGiveTrueFigures(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	enc := encoder(t)
	tests := []struct {
		name        string
		tallies     [][]byte
		recordAt    time.Time // of the one mismatch record on /r
		wantSource  string
		wantCmp     int64
		wantVerdict string
		wantReason  string
	}{
		{
			name:    "equal candidate, enough evidence",
			tallies: [][]byte{tallyValue(t, "/r", t0, 2000, 0, 10, 10), tallyValue(t, "/r", t0.Add(10*time.Second), 2000, 0, 10, 10)},
			// No record at all: publish = "mismatches" and nothing differed.
			wantSource: SourceTallies, wantCmp: 4000, wantVerdict: verdict.Pass, wantReason: "regression rate 0 %",
		},
		{
			name:       "regressing candidate",
			tallies:    [][]byte{tallyValue(t, "/r", t0, 1000, 30, 10, 10)},
			recordAt:   t0.Add(time.Second),
			wantSource: SourceTallies, wantCmp: 1000, wantVerdict: verdict.Fail, wantReason: "regression rate 3 % (95 % CI",
		},
		{
			name:       "below min_compared",
			tallies:    [][]byte{tallyValue(t, "/r", t0, 150, 0, 10, 10)},
			wantSource: SourceTallies, wantCmp: 150, wantVerdict: verdict.Inconclusive, wantReason: "compared 150 < min_compared 200",
		},
		{
			name:       "slower candidate",
			tallies:    [][]byte{tallyValue(t, "/r", t0, 5000, 0, 30, 1500)},
			wantSource: SourceTallies, wantCmp: 5000, wantVerdict: verdict.Fail, wantReason: "latency p99",
		},
		{
			name:       "records older than the tallies",
			tallies:    [][]byte{tallyValue(t, "/r", t0, 1000, 0, 10, 10)},
			recordAt:   t0.Add(-time.Hour),
			wantSource: SourceRecords, wantCmp: 1, wantVerdict: verdict.Inconclusive, wantReason: "compared requests unknown",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Config{TopPaths: 10, Limits: func(string) verdict.Limits { return defaultLimits }})
			for _, v := range tt.tallies {
				if !a.AddTally(v) {
					t.Fatalf("tally unreadable: %s", v)
				}
			}
			if !tt.recordAt.IsZero() {
				r := rec("m1", "/r", 10, 10, nil, diff("$.price", compare.Regression))
				r.Time = tt.recordAt
				add(t, a, enc, r)
			}
			s := a.Summary()
			if len(s.Routes) != 1 {
				t.Fatalf("routes %+v", s.Routes)
			}
			r := s.Routes[0]
			if r.Source != tt.wantSource || r.Compared != tt.wantCmp || r.Verdict != tt.wantVerdict || s.Verdict != tt.wantVerdict {
				t.Errorf("source %s compared %d verdict %s (summary %s); want %s %d %s; reasons %q",
					r.Source, r.Compared, r.Verdict, s.Verdict, tt.wantSource, tt.wantCmp, tt.wantVerdict, r.Reasons)
			}
			if len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], tt.wantReason) {
				t.Errorf("reasons %q, want the first to contain %q", r.Reasons, tt.wantReason)
			}
			var text strings.Builder
			if err := WriteText(&text, s); err != nil {
				t.Fatal(err)
			}
			footnote := strings.Contains(text.String(), "* no tallies cover")
			if footnote != (tt.wantSource == SourceRecords) {
				t.Errorf("footnote shown %v for source %s:\n%s", footnote, tt.wantSource, text.String())
			}
			if !strings.Contains(text.String(), tt.wantVerdict) {
				t.Errorf("text lacks the verdict %s:\n%s", tt.wantVerdict, text.String())
			}
		})
	}
}

// TestTallyLatencyIsOverEveryRequest: the p99 comes from the tallies, not
// from the (few, fast) mismatch records.
func TestTallyLatencyIsOverEveryRequest(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	a := NewAggregator(Config{TopPaths: 10})
	a.AddTally(tallyValue(t, "/r", t0, 1000, 1, 10, 1500))
	r := rec("m1", "/r", 10, 1, nil, diff("$.price", compare.Regression))
	r.Time = t0.Add(time.Second)
	add(t, a, encoder(t), r)
	got := a.Summary().Routes[0]
	if got.Latency.Candidate.P99 < 1400 || got.Mismatches != 1 || got.Compared != 1000 || got.TopPaths[0].ExampleID != "m1" {
		t.Errorf("candidate p99 %v (want ≈1500), mismatches %d, compared %d, paths %+v", got.Latency.Candidate.P99, got.Mismatches, got.Compared, got.TopPaths)
	}
}

// TestServedByCanarySides: a canary route's tallies say what each side
// served; the report lists it.
func TestServedByCanarySides(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := tally.NewCollector(tally.CollectorConfig{Instance: "i", Now: func() time.Time { return t0 }})
	for i := range 10 {
		c.Served("/shop", "reference", 200, 5*time.Millisecond)
		if i < 3 {
			c.Served("/shop", "candidate", 503, 7*time.Millisecond)
		}
	}
	b, err := json.Marshal(c.Flush()[0])
	if err != nil {
		t.Fatal(err)
	}
	a := NewAggregator(Config{TopPaths: 10})
	a.AddTally(b)
	s := a.Summary()
	got := s.Routes[0].Served
	if got["reference"].Requests != 10 || got["reference"].Status["2xx"] != 10 || got["candidate"].Status["5xx"] != 3 || got["candidate"].Latency.P50 != 7 {
		t.Errorf("served %+v", got)
	}
	var text strings.Builder
	WriteText(&text, s)
	if !strings.Contains(text.String(), "/shop            candidate  3         0    0    3    0       7.00") {
		t.Errorf("text:\n%s", text.String())
	}
}

// TestEndpointRows: a route's endpoints (Canonical-Resource) get rows and
// verdicts of their own; the route's row counts them all.
func TestEndpointRows(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := tally.NewCollector(tally.CollectorConfig{Instance: "i", Now: func() time.Time { return t0 }})
	for i := range 3000 {
		r := &publish.Record{Route: "/r", Endpoint: "/r",
			Reference: publish.Side{Status: 200, Duration: 10 * time.Millisecond},
			Candidate: publish.Side{Status: 200, Duration: 10 * time.Millisecond}}
		if i%3 == 0 {
			r.Endpoint = "users.get"
			if i < 300 {
				r.Diffs = []compare.Diff{{Path: "$.name", Class: compare.Regression}}
			}
		}
		c.Compared(r)
	}
	a := NewAggregator(Config{TopPaths: 10, Limits: func(string) verdict.Limits { return defaultLimits }})
	for _, tt := range c.Flush() {
		b, _ := json.Marshal(tt)
		a.AddTally(b)
	}
	s := a.Summary()
	if len(s.Routes) != 2 {
		t.Fatalf("rows %+v", s.Routes)
	}
	route, ep := s.Routes[0], s.Routes[1]
	if route.Endpoint != "" || route.Compared != 3000 || ep.Endpoint != "users.get" || ep.Compared != 1000 || ep.Regressions != 100 || ep.Verdict != verdict.Fail {
		t.Errorf("route %s/%q %d; endpoint %q %d %d %s", route.Route, route.Endpoint, route.Compared, ep.Endpoint, ep.Compared, ep.Regressions, ep.Verdict)
	}
	var text strings.Builder
	WriteText(&text, s)
	if !strings.Contains(text.String(), "/r [users.get]  1000") {
		t.Errorf("text:\n%s", text.String())
	}
}

// TestMixedFleetIsNotCovered: records of a process that published no
// tallies (an instance of an older miffy, say) leave the route uncovered.
func TestMixedFleetIsNotCovered(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := tally.NewCollector(tally.CollectorConfig{Instance: "new", Now: func() time.Time { return t0 }})
	for i := range 100 {
		c.Compared(&publish.Record{ID: fmt.Sprintf("aaa-%d", i), Route: "/r", Endpoint: "/r",
			Reference: publish.Side{Status: 200}, Candidate: publish.Side{Status: 200}})
	}
	tv, err := json.Marshal(c.Flush()[0])
	if err != nil {
		t.Fatal(err)
	}
	enc := encoder(t)
	for _, tt := range []struct {
		name   string
		ids    []string
		source string
	}{
		{"records of the tallied process", []string{"aaa-1", "aaa-2"}, SourceTallies},
		{"and of an untallied one", []string{"aaa-1", "bbb-7"}, SourceRecords},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Config{TopPaths: 10})
			a.AddTally(tv)
			for _, id := range tt.ids {
				r := rec(id, "/r", 1, 1, nil, diff("$.a", compare.Regression))
				r.Time = t0.Add(time.Second)
				add(t, a, enc, r)
			}
			if got := a.Summary().Routes[0].Source; got != tt.source {
				t.Errorf("source %s, want %s", got, tt.source)
			}
		})
	}
}
