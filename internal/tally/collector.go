package tally

import (
	"cmp"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// CollectorConfig tunes a Collector.
type CollectorConfig struct {
	// Instance names this instance in its tallies. If empty, the host name.
	Instance string
	// LatencyTie is how close a candidate's duration must be to its
	// reference's to count as neither slower nor faster ([report]
	// latency_tie). If zero, only equal durations tie.
	LatencyTie time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// OtherEndpoints is the endpoint counted for once MaxEndpoints endpoints
// are counted in an interval.
const OtherEndpoints = "(other endpoints)"

// MaxEndpoints bounds the endpoints counted apart in an interval (the
// Canonical-Resource header names endpoints, so clients choose them); past
// it an endpoint's counts go to the endpoint OtherEndpoints of its route.
const MaxEndpoints = 1000

type key struct{ route, endpoint string }

// Collector counts the outcomes of an instance's requests under test into
// one Tally per route and endpoint, until Flush hands them over and starts
// the next interval. Its methods are safe for concurrent use and never
// block on anything but its own short lock.
type Collector struct {
	cfg          CollectorConfig
	now          func() time.Time
	maxEndpoints int // MaxEndpoints; tests lower it

	mu     sync.Mutex
	start  time.Time
	tallys map[key]*Tally
	prefix string // of this process's record ids, once seen
	// totals are each route's counts since start, by name (see Totals):
	// never flushed.
	totals map[string]map[string]int64
}

// NewCollector returns a Collector whose first interval starts now.
func NewCollector(cfg CollectorConfig) *Collector {
	if cfg.Instance == "" {
		cfg.Instance, _ = os.Hostname()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Collector{cfg: cfg, now: now, maxEndpoints: MaxEndpoints, start: now(), tallys: map[key]*Tally{}, totals: map[string]map[string]int64{}}
}

// Totals returns a route's counts since the collector started, by name:
// "compared", "equal", "regressions", "noise" (mismatches by class),
// "candidate_errors", "skipped", "dropped", and on canary routes
// "served_reference" and "served_candidate". Counts still zero are left
// out; nil when nothing was counted for the route.
func (c *Collector) Totals(route string) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.totals[route] == nil {
		return nil
	}
	return maps.Clone(c.totals[route])
}

// count adds one to a route's total; c.mu is held.
func (c *Collector) count(route, name string) {
	m := c.totals[route]
	if m == nil {
		m = map[string]int64{}
		c.totals[route] = m
	}
	m[name]++
}

// get returns the tally of route and endpoint; c.mu is held.
func (c *Collector) get(route, endpoint string) *Tally {
	k := key{route, endpoint}
	if t, ok := c.tallys[k]; ok {
		return t
	}
	if len(c.tallys) >= c.maxEndpoints {
		k.endpoint = OtherEndpoints
		if t, ok := c.tallys[k]; ok {
			return t
		}
	}
	t := New(k.route, k.endpoint)
	c.tallys[k] = t
	return t
}

// Compared counts one compared request: its record, whether it is
// published or not, with its differences classed.
func (c *Collector) Compared(r *publish.Record) {
	endpoint := cmp.Or(r.Endpoint, r.Route)
	ref, cand := ms(r.Reference.Duration), ms(r.Candidate.Duration)
	d := r.Candidate.Duration - r.Reference.Duration

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prefix == "" && r.ID != "" {
		c.prefix = IDPrefix(r.ID)
	}
	t := c.get(r.Route, endpoint)
	t.Compared++
	c.count(r.Route, "compared")
	t.Latency.Reference.Add(ref)
	t.Latency.Candidate.Add(cand)
	if r.Secondary != nil {
		t.Latency.Secondary.Add(ms(r.Secondary.Duration))
	}
	switch {
	case d > c.cfg.LatencyTie:
		t.Signs.Slower++
	case d < -c.cfg.LatencyTie:
		t.Signs.Faster++
	default:
		t.Signs.Tie++
	}
	if kind, ok := candidateError(r); ok {
		addKind(t.CandidateErrors, kind, 1)
		c.count(r.Route, "candidate_errors")
	}
	if len(r.Diffs) == 0 {
		t.Equal++
		c.count(r.Route, "equal")
		return
	}
	regression := false
	for _, df := range r.Diffs {
		noise := df.Class == compare.Noise
		regression = regression || !noise
		pc := PathCount{Differences: 1}
		if noise {
			pc.Noise = 1
		}
		t.countPath(df.Path, pc)
	}
	if regression {
		addKind(t.Mismatches, string(compare.Regression), 1)
		c.count(r.Route, "regressions")
	} else {
		addKind(t.Mismatches, string(compare.Noise), 1)
		c.count(r.Route, "noise")
	}
}

// KindServerError is the candidate error kind of a 5xx answer where the
// reference answered below 500.
const KindServerError = "5xx"

// candidateError says whether the candidate failed, and how: no answer (its
// error kind), or 5xx where the reference gave an answer below 500. A 5xx
// from both sides is not the candidate's doing.
func candidateError(r *publish.Record) (string, bool) {
	cs, rs := r.Candidate.Status, r.Reference.Status
	switch {
	case r.Candidate.Err != nil || cs == 0:
		return cmp.Or(publish.ErrorKind(r.Candidate.Err), publish.KindOther), true
	case r.Reference.Err != nil:
		return "", false
	case cs >= 500 && cs <= 599 && rs > 0 && rs < 500:
		return KindServerError, true
	}
	return "", false
}

// Skipped counts a request not replayed by rule (paused, method, sample,
// body_too_large, reference_error).
func (c *Collector) Skipped(route, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	addKind(c.get(route, route).Skipped, reason, 1)
	c.count(route, "skipped")
}

// Dropped counts a replay dropped at a bound (in_flight, memory).
func (c *Collector) Dropped(route, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	addKind(c.get(route, route).Dropped, reason, 1)
	c.count(route, "dropped")
}

// Served counts a canary route's request answered by side ("reference" or
// "candidate"): its status (0: no complete answer) and how long it took.
func (c *Collector) Served(route, side string, status int, d time.Duration) {
	class := statusClass(status)
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.get(route, route).served(side)
	addKind(s.Status, class, 1)
	c.count(route, "served_"+side)
	s.Latency.Add(ms(d))
}

func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status >= 200 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return OtherKey
}

// Flush ends the interval: it returns the tallies counted since the last
// Flush (or NewCollector), stamped with the interval and the instance, and
// starts the next one. Routes and endpoints with nothing counted are left
// out.
func (c *Collector) Flush() []*Tally {
	now := c.now()
	c.mu.Lock()
	ts, start, prefix := c.tallys, c.start, c.prefix
	c.tallys, c.start = make(map[key]*Tally, len(ts)), now
	c.mu.Unlock()
	out := make([]*Tally, 0, len(ts))
	for _, t := range ts {
		t.Instance, t.Start, t.End = c.cfg.Instance, start, now
		if prefix != "" {
			t.IDPrefixes = []string{prefix}
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Tally) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
