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
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// Config bounds what an Aggregator keeps.
type Config struct {
	// TopPaths is how many differing paths a route's summary lists, most
	// frequent first (miffy report -top). If zero, none.
	TopPaths int
	// Until, if set, leaves out records of requests received after it and
	// tallies of intervals that start after it.
	Until time.Time
	// LatencyTie is how close a record's candidate duration must be to its
	// reference's to count as neither slower nor faster ([report]
	// latency_tie); tallies count their own signs.
	LatencyTie time.Duration
	// Limits returns the verdict limits of a route; if nil, no verdict is
	// given.
	Limits func(route string) verdict.Limits
}

// OtherRoutes is the route under which records are counted once
// MaxRoutes routes have been seen.
const OtherRoutes = "(other routes)"

// Bounds of what an Aggregator keeps.
const (
	// MaxPaths is how many distinct paths are counted per route; once
	// reached, differences at further paths are only counted together
	// (RouteSummary.UntrackedDifferences).
	MaxPaths = 1000
	// MaxRoutes is how many routes (and, apart, endpoints) are counted
	// apart; records of further routes are counted under OtherRoutes.
	MaxRoutes = 1000
)

// maxErrorKinds bounds the error kinds counted per route; miffy writes five
// (timeout, refused, reset, canceled, other) and the report adds
// KindServerError; anything past the bound is counted as "other".
const maxErrorKinds = 16

// Aggregator counts records. Its memory is bounded by Config whatever the
// number of records. It is not safe for concurrent use.
type Aggregator struct {
	cfg                 Config
	maxPaths, maxRoutes int // MaxPaths, MaxRoutes; tests lower them
	records             int64
	unreadable          int64
	outOfRange          int64
	first, last         time.Time
	routes              map[string]*routeStats

	tallies, unreadableTallies int64
	endpoints                  int // endpoints counted apart from their route
}

type routeStats struct {
	compared, equal, mismatches int64
	regressions, noise          int64
	candErrors                  int64
	errorKinds                  map[string]int64
	ref, cand                   tally.Histogram
	paths                       map[string]*pathStats
	untracked                   int64
	firstRecord                 time.Time
	signs                       tally.Signs
	// prefixes are the record id prefixes seen (one per process), to
	// tell whether the tallies cover every instance that published;
	// nil once past tally.MaxPrefixes.
	prefixes        map[string]struct{}
	prefixesOverrun bool

	// tally merges the route's tallies (every endpoint, instance and
	// interval); nil without any.
	tally *tally.Tally
}

type pathStats struct {
	count, noise int64
	example      string
}

// NewAggregator returns an empty Aggregator.
func NewAggregator(cfg Config) *Aggregator {
	return &Aggregator{cfg: cfg, maxPaths: MaxPaths, maxRoutes: MaxRoutes, routes: make(map[string]*routeStats)}
}

// Add counts one record value. It returns false, and counts the value as
// unreadable, when it is not a miffy record (schema_version 1).
func (a *Aggregator) Add(value []byte) bool {
	r, err := decode(value)
	if err != nil {
		a.unreadable++
		return false
	}
	if !a.cfg.Until.IsZero() && r.Timestamp.After(a.cfg.Until) {
		a.outOfRange++
		return true
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
	a.route(r.Route).add(r, a.cfg.LatencyTie, a.maxPaths)
	if r.Endpoint != "" && r.Endpoint != r.Route {
		if s := a.endpoint(r.Route, r.Endpoint); s != nil {
			s.add(r, a.cfg.LatencyTie, a.maxPaths)
		}
	}
	return true
}

// add counts one record.
func (s *routeStats) add(r *record, latencyTie time.Duration, maxPaths int) {
	s.addPrefix(tally.IDPrefix(r.ID))
	if !r.Timestamp.IsZero() && (s.firstRecord.IsZero() || r.Timestamp.Before(s.firstRecord)) {
		s.firstRecord = r.Timestamp
	}
	s.compared++
	s.ref.Add(r.Reference.DurationMS)
	s.cand.Add(r.Candidate.DurationMS)
	switch d, tie := r.Candidate.DurationMS-r.Reference.DurationMS, float64(latencyTie)/float64(time.Millisecond); {
	case d > tie:
		s.signs.Slower++
	case d < -tie:
		s.signs.Faster++
	default:
		s.signs.Tie++
	}
	if kind, failed := r.candidateError(); failed {
		s.candErrors++
		if _, ok := s.errorKinds[kind]; !ok && len(s.errorKinds) >= maxErrorKinds {
			kind = "other"
		}
		s.errorKinds[kind]++
	}
	if *r.Equal {
		s.equal++
		return
	}
	s.mismatches++
	regression := false
	for _, d := range r.Differences {
		// A difference without a class is taken for a regression.
		noise := d.Class == "noise"
		regression = regression || !noise
		s.countPath(d.Path, noise, r.ID, maxPaths)
	}
	if regression || len(r.Differences) == 0 {
		s.regressions++
	} else {
		s.noise++
	}
}

// endpointSep joins a route and an endpoint in the key of an endpoint's
// own figures.
const endpointSep = "\x00"

// endpoint returns the figures of one endpoint of route (named by the
// Canonical-Resource header), or nil once MaxRoutes endpoints are
// counted apart: their requests still count in their route's figures.
func (a *Aggregator) endpoint(route, endpoint string) *routeStats {
	key := route + endpointSep + endpoint
	if s, ok := a.routes[key]; ok {
		return s
	}
	if a.endpoints >= a.maxRoutes {
		return nil
	}
	a.endpoints++
	s := &routeStats{errorKinds: make(map[string]int64), paths: make(map[string]*pathStats)}
	a.routes[key] = s
	return s
}

func (a *Aggregator) route(name string) *routeStats {
	if s, ok := a.routes[name]; ok {
		return s
	}
	if len(a.routes)-a.endpoints >= a.maxRoutes {
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
	// Topic is the topic read (set by Run), TallyTopic the tally topic.
	Topic      string `json:"topic,omitempty"`
	TallyTopic string `json:"tally_topic,omitempty"`
	// Records is the number of miffy records read, Unreadable the number of
	// values that were not miffy records and were skipped, OutOfRange the
	// records left out by -until.
	Records    int64 `json:"records"`
	Unreadable int64 `json:"unreadable"`
	OutOfRange int64 `json:"out_of_range,omitempty"`
	// Tallies and UnreadableTallies count the tally topic's values.
	Tallies           int64 `json:"tallies"`
	UnreadableTallies int64 `json:"unreadable_tallies,omitempty"`
	// From and To are the earliest and latest record timestamps (when
	// miffy received the requests); absent without records.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	// Verdict is the worst of the routes' verdicts (fail, inconclusive,
	// pass); empty without limits or routes.
	Verdict string `json:"verdict,omitempty"`
	// Routes are sorted by name, OtherRoutes last.
	Routes []RouteSummary `json:"routes"`
}

// Rate bases (RouteSummary.RateBasis).
const (
	// BasisCompared: the rate is over compared requests: tallies cover the
	// range, or equal records were seen (publish = "all").
	BasisCompared = "compared"
	// BasisPublished: no tallies cover the range and no equal record was
	// seen; the route most likely publishes mismatches only, so the rate
	// is over published records and says nothing about the share of
	// compared requests that mismatch.
	BasisPublished = "published"
)

// Sources of a route's figures (RouteSummary.Source).
const (
	// SourceTallies: counts, rates, latencies and paths come from the
	// instances' tallies, over every compared request.
	SourceTallies = "tallies"
	// SourceRecords: from the published records only.
	SourceRecords = "records"
)

// RouteSummary is one route's figures.
type RouteSummary struct {
	Route string `json:"route"`
	// Endpoint, if set, names an endpoint of the route (the
	// Canonical-Resource header): these figures are its own, and also
	// counted in the route's row (without an endpoint).
	Endpoint string `json:"endpoint,omitempty"`
	// Source says where the figures come from (SourceTallies when tallies
	// cover the range of the route's records, else SourceRecords).
	Source string `json:"source"`
	// TalliedFrom and TalliedTo span the tallies read for the route.
	TalliedFrom *time.Time `json:"tallied_from,omitempty"`
	TalliedTo   *time.Time `json:"tallied_to,omitempty"`
	// Compared is the number of compared requests (from tallies), or of
	// records seen for the route: compared requests that were published
	// (sampled ones only; with publish = "mismatches", mismatching ones
	// only).
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
	// CandidateErrors are compared requests whose candidate gave no
	// answer, by error_kind, or answered 5xx where the reference answered
	// below 500 (kind KindServerError); the rate is over Compared.
	CandidateErrors     int64            `json:"candidate_errors"`
	CandidateErrorRate  float64          `json:"candidate_error_rate"`
	CandidateErrorKinds map[string]int64 `json:"candidate_error_kinds"`
	// Served are, on canary routes, the requests each side answered
	// (tallies only).
	Served map[string]ServedSummary `json:"served,omitempty"`
	// Skipped and Dropped are the replays not made, by reason (tallies
	// only).
	Skipped map[string]int64 `json:"skipped,omitempty"`
	Dropped map[string]int64 `json:"dropped,omitempty"`
	Latency struct {
		Reference Latency  `json:"reference"`
		Candidate Latency  `json:"candidate"`
		Secondary *Latency `json:"secondary,omitempty"`
	} `json:"latency_ms"`
	// Signs pairs each compared request's candidate duration with its
	// reference's.
	Signs tally.Signs `json:"latency_signs"`
	// TopPaths are the most frequent differing paths, most frequent first.
	TopPaths []PathCount `json:"top_paths"`
	// DistinctPaths is the number of paths counted; UntrackedDifferences
	// the differences at paths past the bounds, counted only together.
	DistinctPaths        int   `json:"distinct_paths"`
	UntrackedDifferences int64 `json:"untracked_differences"`
	// Verdict (pass, fail, inconclusive) and its Reasons; Judgement holds
	// the statistics behind them. Empty without limits.
	Verdict   string          `json:"verdict,omitempty"`
	Reasons   []string        `json:"reasons,omitempty"`
	Judgement *verdict.Result `json:"judgement,omitempty"`
}

// ServedSummary is what one side of a canary route answered: requests by
// status class (2xx..5xx, error, other) and their latency.
type ServedSummary struct {
	Requests int64            `json:"requests"`
	Status   map[string]int64 `json:"status"`
	Latency  Latency          `json:"latency_ms"`
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
// many of those were noise, and the id of the first such record (empty
// when only tallies saw it).
type PathCount struct {
	Path      string `json:"path"`
	Count     int64  `json:"count"`
	Noise     int64  `json:"noise"`
	ExampleID string `json:"example_id"`
}

// coverSlack is how much earlier than a route's first tally its first
// record may be and still count as covered: the record is stamped when
// the request arrived, the tally's interval starts when counting did.
const coverSlack = time.Second

// Summary returns the figures so far. The Aggregator can go on counting.
func (a *Aggregator) Summary() *Summary {
	sum := &Summary{
		Records: a.records, Unreadable: a.unreadable, OutOfRange: a.outOfRange,
		Tallies: a.tallies, UnreadableTallies: a.unreadableTallies, Routes: []RouteSummary{},
	}
	if !a.first.IsZero() {
		from, to := a.first, a.last
		sum.From, sum.To = &from, &to
	}
	var verdicts []string
	for key, s := range a.routes {
		name, endpoint, _ := strings.Cut(key, endpointSep)
		rs := s.summary(name, a.cfg.TopPaths)
		rs.Endpoint = endpoint
		if a.cfg.Limits != nil {
			rs.judge(a.cfg.Limits(name))
			verdicts = append(verdicts, rs.Verdict)
		}
		sum.Routes = append(sum.Routes, rs)
	}
	if len(verdicts) > 0 {
		sum.Verdict = verdict.Worst(verdicts...)
	}
	slices.SortFunc(sum.Routes, func(x, y RouteSummary) int {
		return cmp.Or(cmp.Compare(boolInt(x.Route == OtherRoutes), boolInt(y.Route == OtherRoutes)), cmp.Compare(x.Route, y.Route),
			cmp.Compare(x.Endpoint, y.Endpoint))
	})
	return sum
}

func (s *routeStats) addPrefix(p string) {
	if s.prefixesOverrun {
		return
	}
	if _, ok := s.prefixes[p]; ok {
		return
	}
	if len(s.prefixes) >= tally.MaxPrefixes {
		s.prefixes, s.prefixesOverrun = nil, true
		return
	}
	if s.prefixes == nil {
		s.prefixes = map[string]struct{}{}
	}
	s.prefixes[p] = struct{}{}
}

// covered reports whether the route's tallies cover its records: there are
// tallies, no record is older than the first of them, and every process
// that published records also published tallies (when the tallies name
// their processes and neither side has too many to tell).
func (s *routeStats) covered() bool {
	if s.tally == nil || (!s.firstRecord.IsZero() && s.firstRecord.Before(s.tally.Start.Add(-coverSlack))) {
		return false
	}
	if len(s.tally.IDPrefixes) == 0 || s.tally.PrefixesOverflow || s.prefixesOverrun {
		return true
	}
	for p := range s.prefixes {
		if !s.tally.HasPrefix(p) {
			return false
		}
	}
	return true
}

func (s *routeStats) summary(name string, top int) RouteSummary {
	rs := RouteSummary{Route: name, Source: SourceRecords, RateBasis: BasisCompared}
	if t := s.tally; t != nil {
		from, to := t.Start, t.End
		rs.TalliedFrom, rs.TalliedTo = &from, &to
	}
	if !s.covered() {
		rs.Compared, rs.Equal, rs.Mismatches = s.compared, s.equal, s.mismatches
		rs.Regressions, rs.Noise = s.regressions, s.noise
		rs.CandidateErrors = s.candErrors
		rs.CandidateErrorKinds = maps.Clone(s.errorKinds)
		rs.Latency.Reference, rs.Latency.Candidate = latency(&s.ref), latency(&s.cand)
		rs.Signs = s.signs
		rs.TopPaths = topPaths(s.paths, top)
		rs.DistinctPaths, rs.UntrackedDifferences = len(s.paths), s.untracked
		if s.equal == 0 {
			rs.RateBasis = BasisPublished
		}
	} else {
		t := s.tally
		rs.Source = SourceTallies
		rs.Compared, rs.Equal, rs.Mismatches = t.Compared, t.Equal, t.MismatchCount()
		rs.Regressions, rs.Noise = t.Regressions(), t.Noise()
		rs.CandidateErrors = t.CandidateErrorCount()
		rs.CandidateErrorKinds = maps.Clone(t.CandidateErrors)
		rs.Latency.Reference, rs.Latency.Candidate = latency(&t.Latency.Reference), latency(&t.Latency.Candidate)
		if t.Latency.Secondary.N() > 0 {
			sec := latency(&t.Latency.Secondary)
			rs.Latency.Secondary = &sec
		}
		rs.Signs = t.Signs
		paths := make(map[string]*pathStats, len(t.Paths))
		for p, c := range t.Paths {
			ps := &pathStats{count: c.Differences, noise: c.Noise}
			if seen, ok := s.paths[p]; ok {
				ps.example = seen.example
			}
			paths[p] = ps
		}
		rs.TopPaths = topPaths(paths, top)
		rs.DistinctPaths, rs.UntrackedDifferences = len(paths), t.UntrackedDifferences
	}
	if t := s.tally; t != nil {
		rs.Skipped, rs.Dropped = maps.Clone(t.Skipped), maps.Clone(t.Dropped)
		for side, sv := range t.Served {
			if rs.Served == nil {
				rs.Served = map[string]ServedSummary{}
			}
			rs.Served[side] = ServedSummary{Requests: sv.Latency.N(), Status: maps.Clone(sv.Status), Latency: latency(&sv.Latency)}
		}
	}
	if rs.CandidateErrorKinds == nil {
		rs.CandidateErrorKinds = map[string]int64{}
	}
	rs.MismatchRate = ratio(rs.Mismatches, rs.Compared)
	rs.CandidateErrorRate = ratio(rs.CandidateErrors, rs.Compared)
	return rs
}

// judge sets the route's verdict. Without tallies on a route that
// publishes mismatches only, the number of compared requests is unknown:
// the verdict is inconclusive.
func (rs *RouteSummary) judge(l verdict.Limits) {
	if rs.RateBasis == BasisPublished {
		rs.Verdict = verdict.Inconclusive
		rs.Reasons = []string{"compared requests unknown: no tallies cover the range and the route publishes mismatches only"}
		return
	}
	res := verdict.Judge(rs.Figures(), l)
	rs.Verdict, rs.Reasons, rs.Judgement = res.Verdict, res.Reasons, &res
}

// Figures are the route's evidence as the verdict judges it (the report,
// its page and gates, and the rollout controller all judge these).
func (rs RouteSummary) Figures() verdict.Figures {
	return verdict.Figures{
		Compared:        rs.Compared,
		Regressions:     rs.Regressions,
		CandidateErrors: rs.CandidateErrors,
		ReferenceP99:    rs.Latency.Reference.P99,
		CandidateP99:    rs.Latency.Candidate.P99,
		Slower:          rs.Signs.Slower,
		Faster:          rs.Signs.Faster,
		Ties:            rs.Signs.Tie,
	}
}

// TallySummary returns the figures of one route's merged tally t, as
// Summary gives them for a route its tallies cover (no verdict).
func TallySummary(t *tally.Tally) RouteSummary {
	s := &routeStats{errorKinds: map[string]int64{}, paths: map[string]*pathStats{}, tally: t}
	return s.summary(t.Route, 10)
}

// AddTally merges one value of the tally topic. It returns false, and
// counts the value as unreadable, when it is not a miffy tally.
func (a *Aggregator) AddTally(value []byte) bool {
	t, err := tally.Decode(value)
	if err != nil {
		a.unreadableTallies++
		return false
	}
	if !a.cfg.Until.IsZero() && t.Start.After(a.cfg.Until) {
		return true
	}
	a.tallies++
	merge := func(s *routeStats) {
		if s.tally == nil {
			s.tally = tally.New(t.Route, "")
		}
		s.tally.Merge(t)
	}
	merge(a.route(t.Route))
	if t.Endpoint != "" && t.Endpoint != t.Route && t.Endpoint != tally.OtherEndpoints {
		if s := a.endpoint(t.Route, t.Endpoint); s != nil {
			merge(s)
		}
	}
	return true
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
