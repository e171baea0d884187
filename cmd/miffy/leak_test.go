package main

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
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
