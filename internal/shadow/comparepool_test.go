package shadow

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// blockWorkers occupies every worker of cp with a job that waits for the
// returned func to be called.
func blockWorkers(t *testing.T, cp *comparePool, workers int) (unblock func()) {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	for range workers {
		if !cp.submit(func() { started <- struct{}{}; <-release }) {
			t.Fatal("could not submit a blocking job")
		}
		<-started // taken by a worker: the queue is empty again
	}
	return func() { close(release) }
}

func TestComparePoolBound(t *testing.T) {
	for _, tc := range []struct {
		name           string
		workers, queue int
		wantQueued     int
	}{
		{"one worker, queue 3", 1, 3, 3},
		{"two workers, queue 1", 2, 1, 1},
		{"default queue", 1, 0, queuePerWorker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cp := newComparePool(ctx, tc.workers, tc.queue)
			unblock := blockWorkers(t, cp, tc.workers)
			ran := make(chan int, tc.wantQueued+1)
			queued := 0
			for i := range tc.wantQueued + 1 {
				if cp.submit(func() { ran <- i }) {
					queued++
				}
			}
			if queued != tc.wantQueued {
				t.Errorf("queued %d jobs, want %d (the rest refused at once)", queued, tc.wantQueued)
			}
			unblock()
			for range queued {
				<-ran // every queued job runs
			}
			cancel()
			cp.wg.Wait()
		})
	}
}

func TestComparePoolRunsQueuedJobsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cp := newComparePool(ctx, 1, 4)
	unblock := blockWorkers(t, cp, 1)
	ran := 0
	for range 4 {
		if !cp.submit(func() { ran++ }) {
			t.Fatal("queue refused a job below its bound")
		}
	}
	cancel()
	unblock()
	cp.wg.Wait()
	if ran != 4 {
		t.Errorf("%d queued jobs ran after shutdown began, want 4", ran)
	}
}

// TestCompareBacklogDropped: a replay whose comparison finds the queue
// full is dropped and counted, and gives back what it held.
func TestCompareBacklogDropped(t *testing.T) {
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	rt := &Route{Pattern: "/api/{value}", Key: "value", Reference: u, Candidate: u, Sample: 1, Comparer: cmp}
	table, err := NewTable(u, []*Route{rt})
	if err != nil {
		t.Fatal(err)
	}
	pub := &discard{}
	p := New(testConfig(Config{CompareWorkers: 1, CompareQueue: 2}), table, nil, &publish.Outlet{Sink: pub}, zerolog.Nop(), prometheus.NewRegistry())
	unblock := blockWorkers(t, p.pool, 1)

	body := []byte(`{"a":1}`)
	h := http.Header{"Content-Type": {"application/json"}}
	newReplay := func() (*exchange, *side, *side) {
		if !p.budget.start(int64(len(body))) {
			t.Fatal("budget refused a replay")
		}
		_, params, _, _ := table.routes.Match("GET", "/api/7")
		x := &exchange{
			id: "t", start: time.Now(), route: rt, params: params, method: "GET", uri: "/api/7", path: "/api/7",
			header: http.Header{}, body: body, endpoint: rt.Name,
			ref: side{status: 200, header: h, cap: capture{buf: body}},
		}
		return x, &side{status: 200, header: h, cap: capture{buf: body}}, &side{}
	}
	var results []bool
	for range 3 {
		x, cand, sec := newReplay()
		ok := p.compareLater(x, cand, sec)
		if !ok {
			p.release(x, cand, sec) // what replay does when not queued
		}
		results = append(results, ok)
	}
	if want := []bool{true, true, false}; results[0] != want[0] || results[1] != want[1] || results[2] != want[2] {
		t.Errorf("compareLater = %v, want %v", results, want)
	}
	if got := testutil.ToFloat64(p.m.dropped.WithLabelValues(rt.Name, "compare_backlog")); got != 1 {
		t.Errorf("dropped{compare_backlog} = %v, want 1", got)
	}
	unblock()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.m.replays.WithLabelValues(rt.Name, "compared")); got != 2 {
		t.Errorf("replays{compared} = %v, want 2", got)
	}
	if n, b := p.budget.count.Load(), p.budget.bytes.Load(); n != 0 || b != 0 {
		t.Errorf("budget holds %d replays and %d bytes after Close, want none", n, b)
	}
}
