// Package report reads the records that miffy instances publish to Kafka
// and summarises them per route: how many requests were compared, how many
// mismatched (regression or noise), which paths differ most, how often the
// candidate failed and how the two sides' latencies compare.
//
// An Aggregator does the counting in bounded memory; Run reads a topic
// into one and prints it (WriteText, WriteJSON).
package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/miffy-proxy/miffy/internal/tally"
)

// Config bounds what an Aggregator keeps.
type Config struct {
	// TopPaths is how many differing paths a route's summary lists, most
	// frequent first. If zero, 10.
	TopPaths int
	// MaxPaths is how many distinct paths are counted per route; once
	// reached, differences at further paths are only counted together
	// (RouteSummary.UntrackedDifferences). If zero, 1000.
	MaxPaths int
	// MaxRoutes is how many routes are counted apart; records of further
	// routes are counted under the route OtherRoutes. If zero, 1000.
	MaxRoutes int
}

// OtherRoutes is the route under which records are counted once
// Config.MaxRoutes routes have been seen.
const OtherRoutes = "(other routes)"

// maxErrorKinds bounds the error kinds counted per route; miffy writes five
// (timeout, refused, reset, canceled, other) and the report adds
// KindServerError; anything past the bound is counted as "other".
const maxErrorKinds = 16

// Aggregator counts records. Its memory is bounded by Config whatever the
// number of records. It is not safe for concurrent use.
type Aggregator struct {
	cfg         Config
	records     int64
	unreadable  int64
	first, last time.Time
	routes      map[string]*routeStats
}

type routeStats struct {
	compared, equal, mismatches int64
	regressions, noise          int64
	candErrors                  int64
	errorKinds                  map[string]int64
	ref, cand                   tally.Histogram
	paths                       map[string]*pathStats
	untracked                   int64
}

type pathStats struct {
	count, noise int64
	example      string
}

// NewAggregator returns an empty Aggregator.
func NewAggregator(cfg Config) *Aggregator {
	cfg.TopPaths = cmp.Or(cfg.TopPaths, 10)
	cfg.MaxPaths = cmp.Or(cfg.MaxPaths, 1000)
	cfg.MaxRoutes = cmp.Or(cfg.MaxRoutes, 1000)
	return &Aggregator{cfg: cfg, routes: make(map[string]*routeStats)}
}

// Add counts one record value. It returns false, and counts the value as
// unreadable, when it is not a miffy record (schema_version 1).
func (a *Aggregator) Add(value []byte) bool {
	r, err := decode(value)
	if err != nil {
		a.unreadable++
		return false
	}
	a.records++
	if !r.Timestamp.IsZero() {
		if a.first.IsZero() || r.Timestamp.Before(a.first) {
			a.first = r.Timestamp
		}
		if r.Timestamp.After(a.last) {
			a.last = r.Timestamp
		}
	}
	s := a.route(r.Route)
	s.compared++
	s.ref.Add(r.Reference.DurationMS)
	s.cand.Add(r.Candidate.DurationMS)
	if kind, failed := r.candidateError(); failed {
		s.candErrors++
		if _, ok := s.errorKinds[kind]; !ok && len(s.errorKinds) >= maxErrorKinds {
			kind = "other"
		}
		s.errorKinds[kind]++
	}
	if *r.Equal {
		s.equal++
		return true
	}
	s.mismatches++
	regression := false
	for _, d := range r.Differences {
		// A difference without a class is taken for a regression.
		noise := d.Class == "noise"
		regression = regression || !noise
		s.countPath(d.Path, noise, r.ID, a.cfg.MaxPaths)
	}
	if regression || len(r.Differences) == 0 {
		s.regressions++
	} else {
		s.noise++
	}
	return true
}

func (a *Aggregator) route(name string) *routeStats {
	if s, ok := a.routes[name]; ok {
		return s
	}
	if len(a.routes) >= a.cfg.MaxRoutes {
		name = OtherRoutes
		if s, ok := a.routes[name]; ok {
			return s
		}
	}
	s := &routeStats{errorKinds: make(map[string]int64), paths: make(map[string]*pathStats)}
	a.routes[name] = s
	return s
}

func (s *routeStats) countPath(path string, noise bool, id string, maxPaths int) {
	p, ok := s.paths[path]
	if !ok {
		if len(s.paths) >= maxPaths {
			s.untracked++
			return
		}
		p = &pathStats{example: id}
		s.paths[path] = p
	}
	p.count++
	if noise {
		p.noise++
	}
}

// Summary is what the report prints; its JSON form is documented in
// README.md and its field names are stable.
type Summary struct {
	// Topic is the topic read (set by Run).
	Topic string `json:"topic,omitempty"`
	// Records is the number of miffy records read, Unreadable the number of
	// values that were not miffy records and were skipped.
	Records    int64 `json:"records"`
	Unreadable int64 `json:"unreadable"`
	// From and To are the earliest and latest record timestamps (when
	// miffy received the requests); absent without records.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	// Routes are sorted by name, OtherRoutes last.
	Routes []RouteSummary `json:"routes"`
}

// Rate bases (RouteSummary.RateBasis).
const (
	// BasisCompared: equal records were seen, so the route publishes every
	// compared request (publish = "all") and the mismatch rate is over
	// compared requests.
	BasisCompared = "compared"
	// BasisPublished: no equal record was seen; the route most likely
	// publishes mismatches only, so the rate is over published records and
	// says nothing about the share of compared requests that mismatch.
	BasisPublished = "published"
)

// RouteSummary is one route's figures.
type RouteSummary struct {
	Route string `json:"route"`
	// Compared is the number of records seen for the route: compared
	// requests that were published (sampled ones only; with publish =
	// "mismatches", mismatching ones only).
	Compared   int64 `json:"compared"`
	Equal      int64 `json:"equal"`
	Mismatches int64 `json:"mismatches"`
	// MismatchRate is Mismatches / Compared, over what RateBasis says.
	MismatchRate float64 `json:"mismatch_rate"`
	RateBasis    string  `json:"rate_basis"`
	// Regressions are mismatches with at least one difference of class
	// regression (or without a class); Noise those whose differences are
	// all noise.
	Regressions int64 `json:"regressions"`
	Noise       int64 `json:"noise"`
	// CandidateErrors are records whose candidate gave no answer, by
	// error_kind, or answered 5xx where the reference answered below 500
	// (kind KindServerError); the rate is over Compared.
	CandidateErrors     int64            `json:"candidate_errors"`
	CandidateErrorRate  float64          `json:"candidate_error_rate"`
	CandidateErrorKinds map[string]int64 `json:"candidate_error_kinds"`
	Latency             struct {
		Reference Latency `json:"reference"`
		Candidate Latency `json:"candidate"`
	} `json:"latency_ms"`
	// TopPaths are the most frequent differing paths, most frequent first.
	TopPaths []PathCount `json:"top_paths"`
	// DistinctPaths is the number of paths counted; UntrackedDifferences
	// the differences at paths past Config.MaxPaths, counted only together.
	DistinctPaths        int   `json:"distinct_paths"`
	UntrackedDifferences int64 `json:"untracked_differences"`
}

// Latency are duration_ms percentiles, within about 2%; failed calls count
// with the time they took.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// PathCount is one differing path: in how many records it differed, how
// many of those were noise, and the id of the first such record.
type PathCount struct {
	Path      string `json:"path"`
	Count     int64  `json:"count"`
	Noise     int64  `json:"noise"`
	ExampleID string `json:"example_id"`
}

// Summary returns the figures so far. The Aggregator can go on counting.
func (a *Aggregator) Summary() *Summary {
	sum := &Summary{Records: a.records, Unreadable: a.unreadable, Routes: []RouteSummary{}}
	if !a.first.IsZero() {
		from, to := a.first, a.last
		sum.From, sum.To = &from, &to
	}
	for name, s := range a.routes {
		rs := RouteSummary{
			Route:                name,
			Compared:             s.compared,
			Equal:                s.equal,
			Mismatches:           s.mismatches,
			MismatchRate:         ratio(s.mismatches, s.compared),
			RateBasis:            BasisCompared,
			Regressions:          s.regressions,
			Noise:                s.noise,
			CandidateErrors:      s.candErrors,
			CandidateErrorRate:   ratio(s.candErrors, s.compared),
			CandidateErrorKinds:  make(map[string]int64, len(s.errorKinds)),
			TopPaths:             topPaths(s.paths, a.cfg.TopPaths),
			DistinctPaths:        len(s.paths),
			UntrackedDifferences: s.untracked,
		}
		if s.equal == 0 {
			rs.RateBasis = BasisPublished
		}
		for k, n := range s.errorKinds {
			rs.CandidateErrorKinds[k] = n
		}
		rs.Latency.Reference = latency(&s.ref)
		rs.Latency.Candidate = latency(&s.cand)
		sum.Routes = append(sum.Routes, rs)
	}
	slices.SortFunc(sum.Routes, func(x, y RouteSummary) int {
		return cmp.Or(cmp.Compare(boolInt(x.Route == OtherRoutes), boolInt(y.Route == OtherRoutes)), cmp.Compare(x.Route, y.Route))
	})
	return sum
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func latency(h *tally.Histogram) Latency {
	return Latency{P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), Max: h.Max()}
}

// topPaths returns the n most frequent paths; ties go to the path first in
// byte order, so that the list is stable.
func topPaths(paths map[string]*pathStats, n int) []PathCount {
	all := make([]PathCount, 0, len(paths))
	for path, p := range paths {
		all = append(all, PathCount{Path: path, Count: p.count, Noise: p.noise, ExampleID: p.example})
	}
	slices.SortFunc(all, func(x, y PathCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Path, y.Path))
	})
	return all[:min(n, len(all))]
}
