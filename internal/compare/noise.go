package compare

import (
	"sync"
	"time"
)

// Memory bounds of a Judge. Past them, new endpoints and paths are not
// tracked: their diffs are judged by rule (a) only. Entries with no count
// left in the window are dropped to make room, at most once per bucket.
const (
	maxEndpoints = 1000
	maxPaths     = 10000 // over all endpoints
	numBuckets   = 10    // time buckets per window
)

// NoiseConfig tunes a Judge. Zero (or negative) fields take the defaults.
type NoiseConfig struct {
	// Relative is the smallest |R-N|/(R+N) for a regression. If zero, 0.2.
	Relative float64
	// Absolute is the smallest |R-N|/T for a regression. If zero, 0.0003.
	Absolute float64
	// Window is how far back counts go. If zero, 10 minutes.
	Window time.Duration
}

// Judge classes diffs as Noise or Regression from the secondary's diffs
// and a sliding window of counts, as the package documentation describes
// under "Noise". It is safe for concurrent use and its
// memory is bounded (see maxEndpoints and maxPaths).
type Judge struct {
	relative, absolute float64
	bucket             time.Duration // Window / numBuckets
	now                func() time.Time

	mu        sync.Mutex
	endpoints map[string]*endpointStats
	paths     int   // tracked paths, over all endpoints
	swept     int64 // the bucket of the last sweep for stale entries
}

// endpointStats are the counts of one endpoint.
type endpointStats struct {
	total counter // T
	paths map[string]*pathStats
}

// pathStats are the counts of one normalised path of an endpoint.
type pathStats struct {
	cand counter // R
	sec  counter // N
}

// counter counts events in the last numBuckets time buckets.
type counter struct {
	counts [numBuckets]uint64
	epochs [numBuckets]int64 // the bucket number each slot counts for
}

// add counts one event in bucket e.
func (c *counter) add(e int64) {
	slot := int(uint64(e) % numBuckets)
	if c.epochs[slot] != e {
		c.epochs[slot], c.counts[slot] = e, 0
	}
	c.counts[slot]++
}

// sum returns the events of the window ending with bucket e.
func (c *counter) sum(e int64) uint64 {
	var n uint64
	for i, ep := range c.epochs {
		if ep <= e && ep > e-numBuckets {
			n += c.counts[i]
		}
	}
	return n
}

// NewJudge returns a Judge. now is the clock (time.Now when nil); tests
// pass a fake one.
func NewJudge(cfg NoiseConfig, now func() time.Time) *Judge {
	if cfg.Relative <= 0 {
		cfg.Relative = 0.2
	}
	if cfg.Absolute <= 0 {
		cfg.Absolute = 0.0003
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Judge{
		relative:  cfg.Relative,
		absolute:  cfg.Absolute,
		bucket:    max(cfg.Window/numBuckets, 1),
		now:       now,
		endpoints: make(map[string]*endpointStats),
		swept:     -1,
	}
}

// Classify sets Class on each diff of cand in place and returns cand.
// endpoint is the route name or the request's Canonical-Resource header;
// cand are the reference/candidate diffs of one request; sec the
// reference/secondary diffs of the same request, or nil when there is no
// secondary (hasSecondary false). It first counts the request (T, and R
// and N for the paths in cand and sec), then judges. allNoise reports
// that every diff is Noise; it is false when cand is empty.
func (j *Judge) Classify(endpoint string, cand, sec []Diff, hasSecondary bool) (out []Diff, allNoise bool) {
	candPaths := pathSet(cand)
	var secPaths map[string]bool
	if hasSecondary {
		secPaths = pathSet(sec)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.now().UnixNano() / int64(j.bucket)
	j.sweep(e)
	ep := j.endpoint(endpoint)
	if ep != nil {
		ep.total.add(e)
		for p := range candPaths {
			if ps := j.path(ep, p); ps != nil {
				ps.cand.add(e)
			}
		}
		for p := range secPaths {
			if ps := j.path(ep, p); ps != nil {
				ps.sec.add(e)
			}
		}
	}

	allNoise = len(cand) > 0
	for i := range cand {
		cls := j.judge(ep, cand[i].Path, secPaths, e)
		cand[i].Class = cls
		allNoise = allNoise && cls == Noise
	}
	return cand, allNoise
}

// judge classes one diff path.
func (j *Judge) judge(ep *endpointStats, path string, secPaths map[string]bool, e int64) Class {
	if path == "status" || path == "error" {
		return Regression
	}
	p := normalizePath(path)
	if secPaths[p] {
		return Noise // rule (a)
	}
	if ep == nil {
		return Regression
	}
	ps := ep.paths[p]
	if ps == nil {
		return Regression
	}
	r, n, t := float64(ps.cand.sum(e)), float64(ps.sec.sum(e)), float64(ep.total.sum(e))
	d := r - n
	if d < 0 {
		d = -d
	}
	if r > n && d/(r+n) > j.relative && t > 0 && d/t > j.absolute {
		return Regression
	}
	return Noise // rule (b)
}

// pathSet returns the normalised paths of diffs.
func pathSet(diffs []Diff) map[string]bool {
	if len(diffs) == 0 {
		return nil
	}
	set := make(map[string]bool, len(diffs))
	for _, d := range diffs {
		set[normalizePath(d.Path)] = true
	}
	return set
}

// endpoint returns the stats of name, creating them if there is room; nil
// when there is not.
func (j *Judge) endpoint(name string) *endpointStats {
	if ep, ok := j.endpoints[name]; ok {
		return ep
	}
	if len(j.endpoints) >= maxEndpoints {
		return nil
	}
	ep := &endpointStats{paths: make(map[string]*pathStats)}
	j.endpoints[name] = ep
	return ep
}

// path returns the stats of path p of ep, creating them if there is room;
// nil when there is not.
func (j *Judge) path(ep *endpointStats, p string) *pathStats {
	if ps, ok := ep.paths[p]; ok {
		return ps
	}
	if j.paths >= maxPaths {
		return nil
	}
	ps := &pathStats{}
	ep.paths[p] = ps
	j.paths++
	return ps
}

// sweep drops endpoints and paths with nothing left in the window ending
// at bucket e, once per bucket and only when a limit is near.
func (j *Judge) sweep(e int64) {
	if e == j.swept || (len(j.endpoints) < maxEndpoints && j.paths < maxPaths) {
		return
	}
	j.swept = e
	for name, ep := range j.endpoints {
		for p, ps := range ep.paths {
			if ps.cand.sum(e) == 0 && ps.sec.sum(e) == 0 {
				delete(ep.paths, p)
				j.paths--
			}
		}
		if len(ep.paths) == 0 && ep.total.sum(e) == 0 {
			delete(j.endpoints, name)
		}
	}
}
