package board

import (
	"fmt"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// TestStoreRanges: figures per range come from the slots in it; the
// series of a tallied route leaves out a slot with records only.
func TestStoreRanges(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 30, 0, time.UTC)
	st := NewStore(StoreConfig{Now: func() time.Time { return now }})
	enc, err := publish.NewEncoder(publish.EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	// Tallies: 100 compared three hours ago, 200 ten minutes ago, 300 two
	// minutes ago; one untallied record now.
	for _, c := range []struct {
		ago time.Duration
		n   int
	}{{3 * time.Hour, 100}, {10 * time.Minute, 200}, {2 * time.Minute, 300}} {
		st.AddTally(tallyOf(t, "/r", now.Add(-c.ago), c.n, 0))
	}
	b, err := enc.Encode(nil, &publish.Record{ID: "x", Time: now, Route: "/r", Endpoint: "/r",
		Reference: publish.Side{Status: 200}, Candidate: publish.Side{Status: 200},
		Diffs: []compare.Diff{{Path: "$.a", Class: compare.Regression}}})
	if err != nil {
		t.Fatal(err)
	}
	st.AddRecord(b, Ref{Offset: 7}, time.Millisecond)

	for _, tt := range []struct {
		rg   Range
		want int64
	}{
		{Range{Name: "all"}, 600},
		{Range{Name: "5m"}, 300},
		{Range{Name: "1h"}, 500},
		{Range{Name: "24h"}, 600},
		{Range{Name: "custom", From: now.Add(-15 * time.Minute), To: now.Add(-5 * time.Minute)}, 200},
	} {
		ov := st.Overview(tt.rg, nil)
		if len(ov.Routes) != 1 || ov.Routes[0].Compared != tt.want {
			t.Errorf("%s: %+v, want compared %d", tt.rg.Name, ov.Routes, tt.want)
		}
	}
	d, ok := st.Detail("/r", Range{Name: "1h"}, nil)
	if !ok || len(d.Series) != 2 || d.Series[0].Compared != 200 || d.Series[1].Compared != 300 {
		t.Errorf("series %+v", d.Series)
	}
	if ref, ok := st.Lookup("x"); !ok || ref.Offset != 7 {
		t.Errorf("lookup: %v %v", ref, ok)
	}
}

func TestStoreBounds(t *testing.T) {
	st := NewStore(StoreConfig{})
	st.maxRoutes = 3 // MaxRoutes, lowered
	for i := range 10 {
		st.AddTally(tallyOf(t, fmt.Sprintf("/r%d", i), time.Now(), 1, 0))
	}
	ov := st.Overview(Range{Name: "all"}, nil)
	if len(ov.Routes) != 4 || ov.Routes[0].Route != "(other routes)" || ov.Routes[0].Compared != 7 {
		t.Errorf("routes %d: %+v", len(ov.Routes), ov.Routes[0].RouteSummary)
	}
	for i := range maxIDs + 10 {
		st.remember(fmt.Sprint(i), Ref{Offset: int64(i)})
	}
	if _, ok := st.Lookup("0"); ok || len(st.ids) != maxIDs {
		t.Errorf("ids %d, oldest still there: %v", len(st.ids), ok)
	}
	if ref, ok := st.Lookup(fmt.Sprint(maxIDs + 9)); !ok || ref.Offset != maxIDs+9 {
		t.Errorf("newest id: %v %v", ref, ok)
	}
}
