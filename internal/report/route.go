package report

import (
	"maps"
	"time"

	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// RecordInfo is what a reader keeps of one record besides its counts: its
// identity and its differing paths.
type RecordInfo struct {
	ID       string
	Time     time.Time
	Route    string
	Endpoint string
	Equal    bool
	// Paths of the differences, each with its class.
	Paths []PathClass
}

// PathClass is one difference's path and class.
type PathClass struct {
	Path  string `json:"path"`
	Class string `json:"class"`
}

// RecordTally decodes one record value into the counts it adds (as a
// tally of one compared request; latency signs judged with tie) and what
// identifies it. Values that are not miffy records are an error.
func RecordTally(value []byte, tie time.Duration) (*tally.Tally, *RecordInfo, error) {
	r, err := decode(value)
	if err != nil {
		return nil, nil, err
	}
	info := &RecordInfo{ID: r.ID, Time: r.Timestamp, Route: r.Route, Endpoint: r.Route, Equal: *r.Equal}
	t := tally.New(r.Route, r.Route)
	t.Start, t.End = r.Timestamp, r.Timestamp
	t.IDPrefixes = []string{tally.IDPrefix(r.ID)}
	t.Compared = 1
	t.Latency.Reference.Add(r.Reference.DurationMS)
	t.Latency.Candidate.Add(r.Candidate.DurationMS)
	switch d, tieMS := r.Candidate.DurationMS-r.Reference.DurationMS, float64(tie)/float64(time.Millisecond); {
	case d > tieMS:
		t.Signs.Slower = 1
	case d < -tieMS:
		t.Signs.Faster = 1
	default:
		t.Signs.Tie = 1
	}
	if kind, failed := r.candidateError(); failed {
		t.CandidateErrors[kind] = 1
	}
	if *r.Equal {
		t.Equal = 1
		return t, info, nil
	}
	regression := false
	for _, d := range r.Differences {
		noise := d.Class == "noise"
		regression = regression || !noise
		pc := t.Paths[d.Path]
		pc.Differences++
		if noise {
			pc.Noise++
		}
		t.Paths[d.Path] = pc
		info.Paths = append(info.Paths, PathClass{Path: d.Path, Class: d.Class})
	}
	if regression || len(r.Differences) == 0 {
		t.Mismatches["regression"] = 1
	} else {
		t.Mismatches["noise"] = 1
	}
	return t, info, nil
}

// SummarizeRoute gives a route's figures from merged counts: tallies (the
// instances' tallies, nil without any) and records (the records' counts as
// RecordTally gives them, nil without any; its Start is the oldest
// record's time), as the Aggregator would. examples maps paths to a record
// id; limits, if not nil, give the verdict.
func SummarizeRoute(name string, tallies, records *tally.Tally, examples map[string]string, top int, limits *verdict.Limits) RouteSummary {
	s := &routeStats{errorKinds: map[string]int64{}, paths: map[string]*pathStats{}, tally: tallies}
	if r := records; r != nil {
		s.compared, s.equal, s.mismatches = r.Compared, r.Equal, r.MismatchCount()
		s.regressions, s.noise = r.Regressions(), r.Noise()
		s.candErrors = r.CandidateErrorCount()
		s.errorKinds = maps.Clone(r.CandidateErrors)
		s.ref, s.cand = r.Latency.Reference, r.Latency.Candidate
		s.signs = r.Signs
		s.firstRecord = r.Start
		s.untracked = r.UntrackedDifferences
		for _, p := range r.IDPrefixes {
			s.addPrefix(p)
		}
		s.prefixesOverrun = s.prefixesOverrun || r.PrefixesOverflow
		for p, c := range r.Paths {
			s.paths[p] = &pathStats{count: c.Differences, noise: c.Noise}
		}
	}
	for p, id := range examples {
		if ps, ok := s.paths[p]; ok {
			ps.example = id
		} else if tallies != nil {
			s.paths[p] = &pathStats{example: id} // only lends its example
		}
	}
	if top <= 0 {
		top = 10
	}
	rs := s.summary(name, top)
	if limits != nil {
		rs.judge(*limits)
	}
	return rs
}
