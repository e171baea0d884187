// Package tally counts what every miffy instance compared, in fixed-size
// aggregates that merge: per route and endpoint, the requests compared and
// equal, mismatches by class, candidate errors by kind, replays skipped and
// dropped by reason, per-path difference and noise counts, latency
// histograms of each side, paired latency signs and, on canary routes, what
// each side served. A Collector counts; a Kafka publisher sends one Tally
// per route and endpoint every interval to the tally topic; readers (miffy
// report) merge the tallies of every instance and interval in range.
package tally

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind marks a tally value on the topic (field "kind"), so that a reader
// never takes it for a mismatch record.
const Kind = "miffy.tally"

// SchemaVersion is the version of the tally format; fields are only ever
// added within a version.
const SchemaVersion = 1

// Bounds on the maps of one Tally; past them counts are folded into one
// entry (OtherKey) or counted only in total (UntrackedDifferences). They
// keep a tally record small whatever the traffic, and bound a reader's
// merge of many tallies the same way.
const (
	MaxPaths  = 100 // distinct differing paths per tally
	MaxKinds  = 16  // error kinds, skip and drop reasons, statuses, classes
	OtherKey  = "other"
	otherPath = "(other paths)"
)

// Tally is one route and endpoint's counts over an interval, from one
// instance (or, merged, from many). Its JSON form is the tally record.
type Tally struct {
	Kind          string    `json:"kind"`
	SchemaVersion int       `json:"schema_version"`
	Instance      string    `json:"instance,omitempty"`
	Route         string    `json:"route"`
	Endpoint      string    `json:"endpoint"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`

	// Compared are the requests whose replay was compared (a failed
	// candidate included); Equal those without differences.
	Compared int64 `json:"compared"`
	Equal    int64 `json:"equal"`
	// Mismatches by class: "regression" (any difference held against the
	// candidate) or "noise" (every difference is noise).
	Mismatches map[string]int64 `json:"mismatches"`
	// CandidateErrors by kind: the candidate gave no answer (timeout,
	// refused, reset, canceled, other) or answered 5xx where the reference
	// answered below 500 ("5xx").
	CandidateErrors map[string]int64 `json:"candidate_errors"`
	// Skipped (by rule) and Dropped (at a bound) replays, by reason, as in
	// miffy_shadow_skipped_total and miffy_shadow_dropped_total.
	Skipped map[string]int64 `json:"skipped"`
	Dropped map[string]int64 `json:"dropped"`
	// Paths are the differing paths, at most MaxPaths; differences at
	// further paths are counted in UntrackedDifferences only.
	Paths                map[string]PathCount `json:"paths"`
	UntrackedDifferences int64                `json:"untracked_differences"`
	// Latency of every compared request, per side, in milliseconds.
	Latency struct {
		Reference Histogram `json:"reference"`
		Candidate Histogram `json:"candidate"`
		Secondary Histogram `json:"secondary"`
	} `json:"latency"`
	// Signs pairs each compared request's candidate duration with its
	// reference's: slower or faster by more than the tie, or within it.
	Signs Signs `json:"signs"`
	// Served are, on canary routes, the requests each side ("reference",
	// "candidate") answered, by status class, with their latency.
	Served map[string]*Served `json:"served,omitempty"`
	// IDPrefixes are the prefixes of the record ids the counted requests
	// got (an id is "<prefix>-<n>", the prefix one per process): a reader
	// tells by them whose records these tallies cover. At most
	// MaxPrefixes; a merge past it keeps none and sets PrefixesOverflow.
	IDPrefixes       []string `json:"id_prefixes,omitempty"`
	PrefixesOverflow bool     `json:"id_prefixes_overflow,omitempty"`
}

// MaxPrefixes bounds Tally.IDPrefixes: the processes a merged tally can
// tell apart.
const MaxPrefixes = 256

// IDPrefix is the prefix of a record id: what comes before its last "-".
func IDPrefix(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		return id[:i]
	}
	return id
}

// HasPrefix reports whether prefix is among t's id prefixes.
func (t *Tally) HasPrefix(prefix string) bool { return slices.Contains(t.IDPrefixes, prefix) }

// addPrefixes merges id prefixes, bounded by MaxPrefixes.
func (t *Tally) addPrefixes(ps []string, overflow bool) {
	if t.PrefixesOverflow {
		return
	}
	if overflow {
		t.IDPrefixes, t.PrefixesOverflow = nil, true
		return
	}
	for _, p := range ps {
		if slices.Contains(t.IDPrefixes, p) {
			continue
		}
		if len(t.IDPrefixes) >= MaxPrefixes {
			t.IDPrefixes, t.PrefixesOverflow = nil, true
			return
		}
		t.IDPrefixes = append(t.IDPrefixes, p)
	}
}

// PathCount is how often a path differed, and how often as noise.
type PathCount struct {
	Differences int64 `json:"differences"`
	Noise       int64 `json:"noise"`
}

// Signs are paired latency comparisons (see Tally.Signs).
type Signs struct {
	Slower int64 `json:"slower"`
	Faster int64 `json:"faster"`
	Tie    int64 `json:"tie"`
}

// Served is what one side answered on a canary route.
type Served struct {
	// Status by class: "2xx".."5xx", "error" (no complete answer), "other".
	Status  map[string]int64 `json:"status"`
	Latency Histogram        `json:"latency"`
}

// New returns an empty tally for route and endpoint.
func New(route, endpoint string) *Tally {
	return &Tally{
		Kind: Kind, SchemaVersion: SchemaVersion, Route: route, Endpoint: endpoint,
		Mismatches: map[string]int64{}, CandidateErrors: map[string]int64{},
		Skipped: map[string]int64{}, Dropped: map[string]int64{},
		Paths: map[string]PathCount{},
	}
}

// Regressions and Noise are the mismatches of each class.
func (t *Tally) Regressions() int64 { return t.Mismatches["regression"] }
func (t *Tally) Noise() int64       { return t.Mismatches["noise"] }

// MismatchCount is the sum of mismatches over classes.
func (t *Tally) MismatchCount() int64 { return sum(t.Mismatches) }

// CandidateErrorCount is the sum of candidate errors over kinds.
func (t *Tally) CandidateErrorCount() int64 { return sum(t.CandidateErrors) }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Merge adds o's counts to t and widens t's interval to cover o's. The maps
// stay within their bounds.
func (t *Tally) Merge(o *Tally) {
	if t.Start.IsZero() || (!o.Start.IsZero() && o.Start.Before(t.Start)) {
		t.Start = o.Start
	}
	if o.End.After(t.End) {
		t.End = o.End
	}
	t.Compared += o.Compared
	t.Equal += o.Equal
	addKinds(t.Mismatches, o.Mismatches)
	addKinds(t.CandidateErrors, o.CandidateErrors)
	addKinds(t.Skipped, o.Skipped)
	addKinds(t.Dropped, o.Dropped)
	for p, c := range o.Paths {
		t.countPath(p, c)
	}
	t.UntrackedDifferences += o.UntrackedDifferences
	t.Latency.Reference.Merge(&o.Latency.Reference)
	t.Latency.Candidate.Merge(&o.Latency.Candidate)
	t.Latency.Secondary.Merge(&o.Latency.Secondary)
	t.Signs.Slower += o.Signs.Slower
	t.Signs.Faster += o.Signs.Faster
	t.Signs.Tie += o.Signs.Tie
	t.addPrefixes(o.IDPrefixes, o.PrefixesOverflow)
	for side, s := range o.Served {
		if s == nil {
			continue
		}
		mine := t.served(side)
		addKinds(mine.Status, s.Status)
		mine.Latency.Merge(&s.Latency)
	}
}

func (t *Tally) served(side string) *Served {
	if t.Served == nil {
		t.Served = map[string]*Served{}
	}
	s, ok := t.Served[side]
	if !ok {
		if len(t.Served) >= MaxKinds {
			side = OtherKey
			if s, ok = t.Served[side]; ok {
				return s
			}
		}
		s = &Served{Status: map[string]int64{}}
		t.Served[side] = s
	}
	return s
}

// countPath adds c to path's counts, or to UntrackedDifferences once
// MaxPaths paths are counted.
func (t *Tally) countPath(path string, c PathCount) {
	p, ok := t.Paths[path]
	if !ok && len(t.Paths) >= MaxPaths {
		t.UntrackedDifferences += c.Differences
		return
	}
	p.Differences += c.Differences
	p.Noise += c.Noise
	t.Paths[path] = p
}

// addKind adds n to m[k], folding k into OtherKey once m holds MaxKinds
// keys.
func addKind(m map[string]int64, k string, n int64) {
	if _, ok := m[k]; !ok && len(m) >= MaxKinds {
		k = OtherKey
	}
	m[k] += n
}

func addKinds(dst, src map[string]int64) {
	for k, n := range src {
		addKind(dst, k, n)
	}
}

var errNotTally = errors.New("not a miffy tally")

// Decode parses one tally value; anything else (a mismatch record, a tally
// of another schema version, nonsense) is an error.
func Decode(b []byte) (*Tally, error) {
	t := New("", "")
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotTally, err)
	}
	switch {
	case t.Kind != Kind || t.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("%w: kind %q, schema_version %d", errNotTally, t.Kind, t.SchemaVersion)
	case t.Route == "":
		return nil, fmt.Errorf("%w: no route", errNotTally)
	case t.Compared < 0 || t.Equal < 0 || t.Equal > t.Compared:
		return nil, fmt.Errorf("%w: compared %d, equal %d", errNotTally, t.Compared, t.Equal)
	}
	// Maps decoded from the wire may exceed the bounds: re-add them.
	decoded := *t
	*t = *New(decoded.Route, decoded.Endpoint)
	t.Instance, t.Start, t.End = decoded.Instance, decoded.Start, decoded.End
	t.Compared, t.Equal = decoded.Compared, decoded.Equal
	decoded.Instance, decoded.Compared, decoded.Equal = "", 0, 0
	t.Merge(&decoded)
	return t, nil
}
