package main

import (
	"testing"

	"github.com/miffy-proxy/miffy/internal/tally"
)

// TestTalliesEndToEnd runs miffy with the default publish ("mismatches")
// against the embedded broker: the record topic holds the mismatches only,
// and the tally published at shutdown counts every compared request.
func TestTalliesEndToEnd(t *testing.T) {
	b := startBroker(t)
	ref, cand := demoUpstreams(t)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref.URL+`"
candidate = "`+cand.URL+`"
routes = [{ path = "/api/{value}" }]
[kafka]
topic = "diffs"
"bootstrap.servers" = "`+b.Addr()+`"
[report]
tally_topic = "tallies"
tally_interval = "1h"
`)
	for _, p := range []string{"/api/1", "/api/1", "/api/1", "/api/1", "/api/1", "/api/2", "/api/2", "/api/2", "/api/3", "/api/3"} {
		if code, body := get(t, in.proxy+p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	// The replays finish in the background: wait for the records.
	consume(t, b.Addr(), "diffs", 5)
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}

	if n := len(readTopic(t, b.Addr(), "diffs")); n != 5 {
		t.Errorf("%d records on the record topic, want the 5 mismatches", n)
	}
	recs := readTopic(t, b.Addr(), "tallies")
	if len(recs) != 1 {
		t.Fatalf("%d tallies, want 1 (one route, one interval)", len(recs))
	}
	got, err := tally.Decode(recs[0].Value)
	if err != nil {
		t.Fatalf("%v: %s", err, recs[0].Value)
	}
	if got.Route != "/api/{value}" || got.Compared != 10 || got.Equal != 5 || got.Regressions() != 5 ||
		got.CandidateErrorCount() != 2 || got.Paths["$.price"].Differences != 3 {
		t.Errorf("tally: route %q compared %d equal %d regressions %d candidate errors %v paths %v",
			got.Route, got.Compared, got.Equal, got.Regressions(), got.CandidateErrors, got.Paths)
	}
	if got.Latency.Reference.N() != 10 || got.Latency.Candidate.N() != 10 || got.Signs.Slower+got.Signs.Faster+got.Signs.Tie != 10 {
		t.Errorf("latency: reference n %d, candidate n %d, signs %+v", got.Latency.Reference.N(), got.Latency.Candidate.N(), got.Signs)
	}
	if got.Instance == "" || !got.End.After(got.Start) {
		t.Errorf("instance %q, interval %v..%v", got.Instance, got.Start, got.End)
	}
}
