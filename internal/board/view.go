package board

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/miffy-proxy/miffy/internal/report"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// Overview is the routes table of a range.
type Overview struct {
	Range   string    `json:"range"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Records int64     `json:"records"`
	Tallies int64     `json:"tallies"`
	Verdict string    `json:"verdict,omitempty"`
	Routes  []Route   `json:"routes"`
	Unread  int64     `json:"unreadable"`
	Version uint64    `json:"version"`
}

// Route is one route's figures, verdict included; the detail adds its
// recent mismatching records and a series over the range.
type Route struct {
	report.RouteSummary
	// Examples maps differing paths to a record showing them.
	Examples map[string]Ref `json:"examples,omitempty"`
	Recent   []Recent       `json:"recent,omitempty"`
	Series   []Point        `json:"series,omitempty"`
}

// Point is one slot of a route's series.
type Point struct {
	T               time.Time `json:"t"`
	Compared        int64     `json:"compared"`
	Mismatches      int64     `json:"mismatches"`
	Regressions     int64     `json:"regressions"`
	CandidateErrors int64     `json:"candidate_errors"`
	RefP50          float64   `json:"reference_p50"`
	RefP99          float64   `json:"reference_p99"`
	CandP50         float64   `json:"candidate_p50"`
	CandP99         float64   `json:"candidate_p99"`
}

// topPaths is how many paths a route's summary lists on the page: all the
// tallies keep.
const topPaths = maxExamples

// summarize is one route's summary over slots; st.mu is held.
func (st *Store) summarize(name string, r *routeData, slots []*slot, limits func(string) verdict.Limits) report.RouteSummary {
	t, rec := merged(slots, name)
	var l *verdict.Limits
	if limits != nil {
		v := limits(name)
		l = &v
	}
	return report.SummarizeRoute(name, t, rec, maps.Clone(r.exIDs), topPaths, l)
}

// Overview returns every route's figures over rg; limits gives the
// verdicts (nil: none).
func (st *Store) Overview(rg Range, limits func(string) verdict.Limits) Overview {
	st.mu.Lock()
	defer st.mu.Unlock()
	ov := Overview{Range: cmp.Or(rg.Name, "all"), From: rg.From, To: rg.To, Records: st.records, Tallies: st.tallies,
		Unread: st.unread, Version: st.version, Routes: []Route{}}
	var verdicts []string
	for name, r := range st.routes {
		slots, _ := st.slots(r, rg)
		rs := st.summarize(name, r, slots, limits)
		if rs.Compared == 0 && rs.Skipped == nil && len(slots) == 0 {
			continue
		}
		ov.Routes = append(ov.Routes, Route{RouteSummary: rs})
		if rs.Verdict != "" {
			verdicts = append(verdicts, rs.Verdict)
		}
	}
	if len(verdicts) > 0 {
		ov.Verdict = verdict.Worst(verdicts...)
	}
	slices.SortFunc(ov.Routes, func(a, b Route) int { return cmp.Compare(a.RouteSummary.Route, b.RouteSummary.Route) })
	return ov
}

// Detail returns one route's figures over rg with its series, examples
// and recent records; false if the route is unknown.
func (st *Store) Detail(name string, rg Range, limits func(string) verdict.Limits) (Route, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, ok := st.routes[name]
	if !ok {
		return Route{}, false
	}
	slots, _ := st.slots(r, rg)
	out := Route{RouteSummary: st.summarize(name, r, slots, limits), Examples: maps.Clone(r.examples)}
	out.Recent = slices.Clone(r.recent)
	slices.Reverse(out.Recent) // newest first
	series, width := slots, time.Duration(0)
	if rg.Name == "all" || rg.Name == "" {
		// The whole range is one slot; draw the last hour's minutes, or
		// the last two days' hours when older.
		series, width = st.slots(r, Range{Name: "1h"})
		if len(series) == 0 {
			series, width = st.slots(r, Range{Name: "custom", From: st.now().Add(-coarseSlots * coarseWidth)})
		}
	} else {
		_, width = st.slots(r, rg)
	}
	// A route whose figures come from tallies is drawn from tallies only:
	// the last slot's records, not yet tallied, would show as a spike.
	fromTallies := out.Source == report.SourceTallies
	for _, s := range series {
		t, rec := s.tallies, s.records
		if fromTallies {
			if t == nil {
				continue
			}
			rec = nil
		}
		rs := report.SummarizeRoute(name, t, rec, nil, 1, nil)
		out.Series = append(out.Series, Point{
			T:        time.Unix(s.at*int64(width/time.Second), 0).UTC(),
			Compared: rs.Compared, Mismatches: rs.Mismatches, Regressions: rs.Regressions, CandidateErrors: rs.CandidateErrors,
			RefP50: rs.Latency.Reference.P50, RefP99: rs.Latency.Reference.P99,
			CandP50: rs.Latency.Candidate.P50, CandP99: rs.Latency.Candidate.P99,
		})
	}
	return out, true
}
