package shadow

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
)

// queuePerWorker is the default queue length of the compare pool, per
// worker: a burst of this many comparisons per core waits; past it they are
// dropped.
const queuePerWorker = 64

// comparePool runs the comparisons of finished replays on a fixed number of
// workers (GOMAXPROCS by default), so that comparing, which grows with the
// size of the bodies, never takes more goroutines than there are cores and
// never holds up a client: a replay whose comparison cannot be queued is
// dropped and counted (miffy_shadow_dropped_total{reason="compare_backlog"}).
//
// The queue is bounded twice: by its length, and by bytes, since a queued
// comparison keeps what its replay took from the in-flight budget
// (shadow.max_in_flight_bytes) until it has run; a full budget stops new
// replays before they start.
type comparePool struct {
	jobs chan func()
	wg   sync.WaitGroup
}

// newComparePool starts workers (if zero, GOMAXPROCS) with a queue of
// queue jobs (if zero, queuePerWorker per worker). The workers stop when
// ctx is done, after running (so that they can be counted as abandoned)
// the jobs still queued.
func newComparePool(ctx context.Context, workers, queue int) *comparePool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if queue <= 0 {
		queue = queuePerWorker * workers
	}
	cp := &comparePool{jobs: make(chan func(), queue)}
	cp.wg.Add(workers)
	for range workers {
		go cp.work(ctx)
	}
	return cp
}

// work runs jobs until ctx is done, then those left in the queue.
func (cp *comparePool) work(ctx context.Context) {
	defer cp.wg.Done()
	for {
		select {
		case job := <-cp.jobs:
			job()
		case <-ctx.Done():
			cp.drain()
			return
		}
	}
}

// drain runs the jobs queued, in the caller's goroutine.
func (cp *comparePool) drain() {
	for {
		select {
		case job := <-cp.jobs:
			job()
		default:
			return
		}
	}
}

// submit queues job, or reports false at once when the queue is full.
func (cp *comparePool) submit(job func()) bool {
	select {
	case cp.jobs <- job:
		return true
	default:
		return false
	}
}

// compareLater hands a replay's comparison to the pool. It reports false
// when the pool's queue is full: the replay is then dropped and counted,
// and the caller still owns (and releases) what the replay holds.
// Otherwise the job releases it, and the proxy's WaitGroup covers the job
// until then.
func (p *Proxy) compareLater(x *exchange, cand, sec *side) bool {
	p.wg.Add(1)
	if !p.pool.submit(func() { p.compareJob(x, cand, sec) }) {
		p.wg.Done()
		x.route.m.dropped("compare_backlog")
		p.drops.log(p.log, "replay dropped: compare queue full (comparisons slower than replays come in)")
		return false
	}
	if p.ctx.Err() != nil {
		// Shutting down: the workers may have drained the queue and left
		// before the job got in. Run what is queued here (the jobs count
		// themselves abandoned), so that no job waits for a worker forever.
		p.pool.drain()
	}
	return true
}

// compareJob is one queued comparison, on a pool worker.
func (p *Proxy) compareJob(x *exchange, cand, sec *side) {
	defer p.wg.Done()
	defer p.release(x, cand, sec)
	defer func() {
		if v := recover(); v != nil {
			p.m.panics.Inc()
			p.log.Error().Str("id", x.id).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("comparison panicked")
		}
	}()
	if p.ctx.Err() != nil {
		x.route.m.replay("abandoned")
		return
	}
	p.compareAndPublish(x, cand, sec)
}

// release gives back what a replay took from the in-flight budget: its
// slot, the request body and the captured answers.
func (p *Proxy) release(x *exchange, cand, sec *side) {
	p.budget.finish(int64(len(x.body)) + cand.cap.held + sec.cap.held + x.ref.cap.held)
}
