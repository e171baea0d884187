// Package board is miffy's report server: a consumer of the record and
// tally topics that keeps fixed-size aggregates per route and time slot,
// serves the page (embedded assets, live updates over server-sent events),
// a verdict API and gates for Argo Rollouts and Flagger, and Diffy's API
// under /api/1/. Example records are fetched from the topic by offset when
// opened, not held. It also follows the rollout topic and draws each
// route's rollout as a timeline (rollout.go).
package board

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/miffy-proxy/miffy/internal/report"
	"github.com/miffy-proxy/miffy/internal/rollout"
	"github.com/miffy-proxy/miffy/internal/tally"
)

// Slots: one a minute for the last hour, one an hour for the last two days,
// and one for everything read.
const (
	fineSlots   = 60
	fineWidth   = time.Minute
	coarseSlots = 48
	coarseWidth = time.Hour
	// maxRecent is how many recent mismatching records a route lists.
	maxRecent = 50
	// maxExamples bounds the example record kept per differing path.
	maxExamples = tally.MaxPaths
	// maxIDs bounds the record ids that can be looked up (Diffy's
	// /api/1/requests/{id}); older ones are found by permalink only.
	maxIDs = 100_000
)

// Ref locates a record on the record topic.
type Ref struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Recent is a mismatching record as listed: where to fetch it and what
// differed.
type Recent struct {
	Ref
	ID    string             `json:"id"`
	Time  time.Time          `json:"timestamp"`
	Paths []report.PathClass `json:"paths"`
}

// slot holds one time slot's counts of a route.
type slot struct {
	at      int64 // slot number (Unix time / width); 0: unused
	tallies *tally.Tally
	records *tally.Tally
}

func (s *slot) add(t *tally.Tally, isRecord bool) {
	dst := &s.tallies
	if isRecord {
		dst = &s.records
	}
	if *dst == nil {
		*dst = tally.New(t.Route, "")
	}
	(*dst).Merge(t)
}

type routeData struct {
	fine     [fineSlots]slot
	coarse   [coarseSlots]slot
	all      slot
	recent   []Recent // newest last
	examples map[string]Ref
	exIDs    map[string]string
}

// MaxRoutes is how many routes a Store keeps apart; further ones are
// counted under report.OtherRoutes. Each takes about 3 MiB at most (latency
// histograms of 109 slots).
const MaxRoutes = 100

// StoreConfig tunes a Store.
type StoreConfig struct {
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Store is the aggregates the page is drawn from. Its memory is bounded by
// StoreConfig whatever the number of records. Safe for concurrent use.
type Store struct {
	cfg       StoreConfig
	now       func() time.Time
	maxRoutes int // MaxRoutes; tests lower it

	mu       sync.Mutex
	routes   map[string]*routeData
	rollouts map[string]*rolloutData
	fence    rollout.Fence // the rollout topic's decisions that count
	ids      map[string]Ref
	idOrder  []string // ring of ids in ids, oldest at idNext
	idNext   int
	version  uint64
	changed  chan struct{} // closed and replaced at every change
	records  int64
	tallies  int64
	unread   int64
	lastSeen time.Time
}

// NewStore returns an empty Store.
func NewStore(cfg StoreConfig) *Store {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{cfg: cfg, maxRoutes: MaxRoutes, now: now, routes: map[string]*routeData{}, rollouts: map[string]*rolloutData{}, ids: map[string]Ref{}, changed: make(chan struct{})}
}

func (st *Store) route(name string) *routeData {
	if r, ok := st.routes[name]; ok {
		return r
	}
	if len(st.routes) >= st.maxRoutes {
		name = report.OtherRoutes
		if r, ok := st.routes[name]; ok {
			return r
		}
	}
	r := &routeData{examples: map[string]Ref{}, exIDs: map[string]string{}}
	st.routes[name] = r
	return r
}

// add counts t (a tally, or a record's counts) at time at.
func (st *Store) add(r *routeData, t *tally.Tally, at time.Time, isRecord bool) {
	r.all.add(t, isRecord)
	if at.IsZero() {
		return
	}
	if n := at.Unix() / int64(fineWidth/time.Second); n > 0 {
		s := &r.fine[n%fineSlots]
		if s.at != n {
			*s = slot{at: n}
		}
		s.add(t, isRecord)
	}
	if n := at.Unix() / int64(coarseWidth/time.Second); n > 0 {
		s := &r.coarse[n%coarseSlots]
		if s.at != n {
			*s = slot{at: n}
		}
		s.add(t, isRecord)
	}
}

// AddTally counts one value of the tally topic; false if it is not a tally.
func (st *Store) AddTally(value []byte) bool {
	t, err := tally.Decode(value)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.unread++
		return false
	}
	st.tallies++
	st.add(st.route(t.Route), t, t.End, false)
	st.touch()
	return true
}

// AddRecord counts one value of the record topic at ref; false if it is
// not a record.
func (st *Store) AddRecord(value []byte, ref Ref, tie time.Duration) bool {
	t, info, err := report.RecordTally(value, tie)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.unread++
		return false
	}
	st.records++
	r := st.route(info.Route)
	st.add(r, t, info.Time, true)
	st.remember(info.ID, ref)
	if !info.Equal {
		r.recent = append(r.recent, Recent{Ref: ref, ID: info.ID, Time: info.Time, Paths: info.Paths})
		if len(r.recent) > maxRecent {
			r.recent = slices.Delete(r.recent, 0, len(r.recent)-maxRecent)
		}
		for _, p := range info.Paths {
			if _, ok := r.examples[p.Path]; ok || len(r.examples) < maxExamples {
				r.examples[p.Path], r.exIDs[p.Path] = ref, info.ID
			}
		}
	}
	st.touch()
	return true
}

// remember keeps id's location, forgetting the oldest past maxIDs.
func (st *Store) remember(id string, ref Ref) {
	if _, ok := st.ids[id]; ok {
		st.ids[id] = ref
		return
	}
	if len(st.idOrder) < maxIDs {
		st.idOrder = append(st.idOrder, id)
	} else {
		delete(st.ids, st.idOrder[st.idNext])
		st.idOrder[st.idNext] = id
		st.idNext = (st.idNext + 1) % maxIDs
	}
	st.ids[id] = ref
}

// Lookup returns where the record id is, if it is remembered.
func (st *Store) Lookup(id string) (Ref, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ref, ok := st.ids[id]
	return ref, ok
}

func (st *Store) touch() {
	st.version++
	close(st.changed)
	st.changed = make(chan struct{})
}

// Changed returns the version and a channel closed at the next change.
func (st *Store) Changed() (uint64, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.version, st.changed
}

// Range is a time range of the page: Name is 5m, 1h, 24h, all or custom
// (From, To).
type Range struct {
	Name     string    `json:"name"`
	From, To time.Time `json:"-"`
}

// slots returns the slots of r in range, and the width of one (0 for the
// all slot).
func (st *Store) slots(r *routeData, rg Range) ([]*slot, time.Duration) {
	now := st.now()
	from, to := rg.From, rg.To
	switch rg.Name {
	case "all", "":
		return []*slot{&r.all}, 0
	case "5m":
		from, to = now.Add(-5*time.Minute), now
	case "1h":
		from, to = now.Add(-time.Hour), now
	case "24h":
		from, to = now.Add(-24*time.Hour), now
	}
	if to.IsZero() {
		to = now
	}
	ring, width := r.fine[:], fineWidth
	if from.Before(now.Add(-time.Hour)) {
		ring, width = r.coarse[:], coarseWidth
	}
	lo, hi := from.Unix()/int64(width/time.Second), to.Unix()/int64(width/time.Second)
	var out []*slot
	for i := range ring {
		if s := &ring[i]; s.at != 0 && s.at >= lo && s.at <= hi {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *slot) int { return cmp.Compare(a.at, b.at) })
	return out, width
}

// merged adds up slots.
func merged(slots []*slot, name string) (tallies, records *tally.Tally) {
	for _, s := range slots {
		if s.tallies != nil {
			if tallies == nil {
				tallies = tally.New(name, "")
			}
			tallies.Merge(s.tallies)
		}
		if s.records != nil {
			if records == nil {
				records = tally.New(name, "")
			}
			records.Merge(s.records)
		}
	}
	return tallies, records
}
