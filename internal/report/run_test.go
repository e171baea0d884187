package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
	"github.com/miffy-proxy/miffy/internal/compare"
)

// startBroker starts an embedded broker; produce writes values to topic.
func startBroker(t *testing.T) (addr string, produce func(topic string, values ...[]byte)) {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return b.Addr(), func(topic string, values ...[]byte) {
		t.Helper()
		var recs []*kgo.Record
		for _, v := range values {
			recs = append(recs, &kgo.Record{Topic: topic, Value: v})
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// records returns n encoded records for route /r: every third one equal,
// the others differing at $.price.
func records(t *testing.T, from, n int) [][]byte {
	t.Helper()
	enc := encoder(t)
	var out [][]byte
	for i := from; i < from+n; i++ {
		r := rec(fmt.Sprint("id-", i), "/r", 10, 20, nil)
		if i%3 != 0 {
			r = rec(fmt.Sprint("id-", i), "/r", 10, 20, nil, diff("$.price", compare.Regression))
		}
		b, err := enc.Encode(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func runJSON(t *testing.T, opts Options) *Summary {
	t.Helper()
	opts.JSON = true
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := Run(ctx, opts, &out, io.Discard); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var s Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("output is not a summary: %v\n%s", err, out.Bytes())
	}
	return &s
}

func TestRunReadsToEnd(t *testing.T) {
	addr, produce := startBroker(t)
	produce("diffs", records(t, 0, 30)...)
	produce("diffs", []byte("not a record"), nil)

	var out, errOut bytes.Buffer
	opts := Options{Topic: "diffs", Client: []kgo.Opt{kgo.SeedBrokers(addr)}, UntilEnd: true, JSON: true, Aggregate: Config{TopPaths: 10}}
	if err := Run(t.Context(), opts, &out, &errOut); err != nil {
		t.Fatal(err)
	}

	// The JSON field names are part of the interface.
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"from", "records", "routes", "tallies", "to", "topic", "unreadable"}, keysOf(v)); d != "" {
		t.Errorf("summary fields (-want +got):\n%s", d)
	}
	route := v["routes"].([]any)[0].(map[string]any)
	if d := cmp.Diff([]string{"candidate_error_kinds", "candidate_error_rate", "candidate_errors", "compared",
		"distinct_paths", "equal", "latency_ms", "latency_signs", "mismatch_rate", "mismatches", "noise", "rate_basis",
		"regressions", "route", "source", "top_paths", "untracked_differences"}, keysOf(route)); d != "" {
		t.Errorf("route fields (-want +got):\n%s", d)
	}
	lat := route["latency_ms"].(map[string]any)
	if d := cmp.Diff([]string{"max", "p50", "p90", "p99"}, keysOf(lat["candidate"].(map[string]any))); d != "" {
		t.Errorf("latency fields (-want +got):\n%s", d)
	}
	path := route["top_paths"].([]any)[0].(map[string]any)
	if d := cmp.Diff([]string{"count", "example_id", "noise", "path"}, keysOf(path)); d != "" {
		t.Errorf("path fields (-want +got):\n%s", d)
	}

	var s Summary
	json.Unmarshal(out.Bytes(), &s)
	r := s.Routes[0]
	if s.Topic != "diffs" || s.Records != 30 || s.Unreadable != 2 || r.Compared != 30 || r.Equal != 10 || r.Mismatches != 20 {
		t.Errorf("summary %+v route %+v", s, r)
	}
	if r.TopPaths[0] != (PathCount{Path: "$.price", Count: 20, ExampleID: "id-1"}) {
		t.Errorf("top path %+v", r.TopPaths[0])
	}
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestRunGroup: with a group, each run reads what the last one did not.
func TestRunGroup(t *testing.T) {
	addr, produce := startBroker(t)
	produce("diffs", records(t, 0, 9)...)
	opts := Options{Topic: "diffs", Client: []kgo.Opt{kgo.SeedBrokers(addr)}, Group: "report", UntilEnd: true}

	if s := runJSON(t, opts); s.Records != 9 {
		t.Errorf("first run read %d records, want 9", s.Records)
	}
	if s := runJSON(t, opts); s.Records != 0 {
		t.Errorf("second run read %d records, want 0", s.Records)
	}
	produce("diffs", records(t, 9, 4)...)
	if s := runJSON(t, opts); s.Records != 4 {
		t.Errorf("third run read %d records, want 4", s.Records)
	}
	// Without the group, everything.
	opts.Group = ""
	if s := runJSON(t, opts); s.Records != 13 {
		t.Errorf("run without group read %d records, want 13", s.Records)
	}
}

func TestRunFrom(t *testing.T) {
	addr, produce := startBroker(t)
	produce("diffs", records(t, 0, 5)...)
	opts := Options{Topic: "diffs", Client: []kgo.Opt{kgo.SeedBrokers(addr)}, UntilEnd: true}

	opts.From = FromEnd
	if s := runJSON(t, opts); s.Records != 0 {
		t.Errorf("-from end read %d records", s.Records)
	}
	opts.From = FromTime(time.Now().Add(time.Hour))
	if s := runJSON(t, opts); s.Records != 0 {
		t.Errorf("-from in the future read %d records", s.Records)
	}
	opts.From = FromTime(time.Now().Add(-time.Hour))
	if s := runJSON(t, opts); s.Records != 5 {
		t.Errorf("-from 1h read %d records, want 5", s.Records)
	}
}

func TestRunMissingTopic(t *testing.T) {
	addr, _ := startBroker(t)
	err := Run(t.Context(), Options{Topic: "nope", Client: []kgo.Opt{kgo.SeedBrokers(addr)}, UntilEnd: true}, io.Discard, io.Discard)
	if !errors.Is(err, errNoTopic) {
		t.Errorf("Run = %v, want %v", err, errNoTopic)
	}
}

// lockedBuffer is written by Run and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunFollow: following, records written after the start show up in a
// later print; Run returns when its context is canceled.
func TestRunFollow(t *testing.T) {
	addr, produce := startBroker(t)
	produce("diffs", records(t, 0, 3)...)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Topic: "diffs", Client: []kgo.Opt{kgo.SeedBrokers(addr)}, Follow: true,
			Interval: 50 * time.Millisecond}, out, io.Discard)
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "3 records") })
	produce("diffs", records(t, 3, 2)...)
	waitFor(t, func() bool { return strings.Contains(out.String(), "5 records") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
