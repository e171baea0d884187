package canary

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestEventLog(t *testing.T) {
	var out strings.Builder
	l := NewEventLog(&out, prometheus.NewRegistry())
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	want := []Event{
		{Time: at, Route: "shop", Side: "candidate", Canary: true, Rule: RuleWeight, CorrelationID: "id-1", DurationMS: 1.5, Status: 200},
		{Time: at, Route: "shop", Side: "reference", Rule: RuleWeight, CorrelationID: "id-2", DurationMS: 3, Status: 200, Fallback: true},
	}
	for _, e := range want {
		l.Add(e)
	}
	l.Close()
	l.Add(Event{Route: "late"}) // a request that outlived the shutdown: dropped, no panic
	l.Close()
	var got []Event
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not an event: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !strings.Contains(out.String(), `"correlation_id":"id-1"`) || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("want one JSON line per event:\n%s", out.String())
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

func TestEventLogDropsWhenBehind(t *testing.T) {
	w := blockingWriter{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	l := NewEventLog(w, reg)
	// The writer holds one event (its bufio buffer is large, so the block
	// comes at the first flush); the queue holds eventQueue more; the rest
	// are dropped, and Add never blocks.
	n := eventQueue + 100
	for i := range n {
		l.Add(Event{Route: "r", DurationMS: float64(i)})
	}
	close(w.release)
	l.Close()
	if got := testutilCount(t, reg); got < 1 || got > 100 {
		t.Errorf("dropped %v events, want between 1 and 100", got)
	}
}

func testutilCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "miffy_canary_events_dropped_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no miffy_canary_events_dropped_total")
	return 0
}
