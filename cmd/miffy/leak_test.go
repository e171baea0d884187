package main

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Goroutine leak checks.
//
// go.uber.org/goleak is not in go.mod, so this is a small checker of the
// same shape: checkLeaks snapshots the goroutines alive when a test starts
// (goleak's IgnoreCurrent) and, when the test and all its cleanups are done
// (run returned, broker and upstreams closed), polls until every goroutine
// started since has ended, or fails listing the stacks of those left.

// leakIgnored are goroutines that outlive a test by design: the process's
// own (signal handling), the test runner, and the idle connections of
// http.DefaultTransport that are closed before the check.
var leakIgnored = []string{
	"testing.(*T).Run",
	"testing.tRunner",
	"testing.runTests",
	"testing.(*M).",
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
}

// checkLeaks fails t if goroutines started during t are still running a
// few seconds after t and its cleanups have finished. Call it first in a
// test (its cleanup must run last).
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goroutineIDs()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := leakedSince(before)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutine(s) leaked:\n\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// goroutine is one entry of a full stack dump.
type goroutine struct {
	id    uint64
	top   string // the function at the top of the stack
	stack string
}

func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		// "goroutine 12 [chan receive]:\nfunc(...)\n\tfile:line\n..."
		head, rest, _ := strings.Cut(string(block), "\n")
		f := strings.Fields(head)
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		top, _, _ := strings.Cut(rest, "\n")
		if i := strings.LastIndexByte(top, '('); i > 0 {
			top = top[:i]
		}
		gs = append(gs, goroutine{id: id, top: top, stack: string(block)})
	}
	return gs
}

func goroutineIDs() map[uint64]bool {
	ids := map[uint64]bool{}
	for _, g := range goroutines() {
		ids[g.id] = true
	}
	return ids
}

// leakedSince returns the stacks of goroutines not in before, other than
// the checker's own and the ignored ones.
func leakedSince(before map[uint64]bool) []string {
	var left []string
	for i, g := range goroutines() {
		if i == 0 || before[g.id] || ignoredGoroutine(g) {
			continue // the first is the one dumping the stacks
		}
		left = append(left, g.stack)
	}
	return left
}

// ignoredGoroutine: the top function is in leakIgnored, or the goroutine
// runs a test (a parallel test started meanwhile is not a leak).
func ignoredGoroutine(g goroutine) bool {
	if strings.Contains(g.stack, "\ntesting.tRunner(") {
		return true
	}
	for _, f := range leakIgnored {
		if strings.HasPrefix(g.top, f) {
			return true
		}
	}
	return false
}

// TestFaultHeapBoundedWhileCandidateDown: under load with a candidate that
// never answers, what replays hold is bounded by [shadow]
// max_in_flight_bytes (the rest are dropped and counted), so the heap stays
// near where it started, and clients still get the reference at once.
func TestFaultHeapBoundedWhileCandidateDown(t *testing.T) {
	checkLeaks(t)
	const (
		refBytes = 128 << 10
		bound    = 4 << 20 // max_in_flight_bytes
		// The candidate never answers and its replay may wait 20s: an
		// answer within 5s did not wait for it, however loaded the machine.
		refBound = 5 * time.Second
	)
	requests := 400 // 50 MiB of reference answers, were they all kept
	if testing.Short() {
		requests = 160
	}
	b := startBroker(t)
	refBody := `{"pad":"` + strings.Repeat("r", refBytes) + `"}`
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "500ms" # then the replays still waiting are abandoned
reference = "`+jsonServer(t, refBody)+`"
candidate = "`+hungUpstream(t, "")+`"
routes = [{ path = "/api/{v}", key = "v" }]
[shadow]
timeout = "20s"
max_in_flight_bytes = `+strconv.Itoa(bound)+`
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	timedGet(t, in.proxy+"/api/warm-up")
	before := heap()

	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan string, requests)
	next := make(chan int, requests)
	for i := range requests {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				got := timedGet(t, in.proxy+"/api/"+strconv.Itoa(i))
				if got.err != nil || got.status != 200 || len(got.body) != len(refBody) || got.took > refBound {
					errs <- fmt.Sprintf("request %d: %d, %d bytes, %v in %v", i, got.status, len(got.body), got.err, got.took)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// The replays are all still waiting on the candidate: this is the peak.
	after := heap()
	metrics := scrapeMetrics(t, in)
	held, _ := metricSample(metrics, "miffy_shadow_in_flight_bytes")
	inFlight, _ := metricSample(metrics, "miffy_shadow_in_flight")
	growth := int64(after) - int64(before)
	t.Logf("heap %d → %d KiB (%+d KiB); %.0f replays in flight hold %.0f KiB",
		before>>10, after>>10, growth>>10, inFlight, held/1024)
	if held > bound {
		t.Errorf("replays hold %.0f bytes, over max_in_flight_bytes %d", held, bound)
	}
	if held < bound/2 {
		t.Errorf("replays hold %.0f bytes: the bound was never approached, the test proves nothing", held)
	}
	if limit := int64(24 << 20); growth > limit {
		t.Errorf("heap grew by %d MiB with the candidate down, want < %d MiB", growth>>20, limit>>20)
	}
}
