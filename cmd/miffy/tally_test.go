package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/report"
	"github.com/miffy-proxy/miffy/internal/tally"
)

// TestTalliesEndToEnd runs miffy with the default publish ("mismatches")
// against the embedded broker: the record topic holds the mismatches only,
// and the tally published at shutdown counts every compared request.
func TestTalliesEndToEnd(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := demoUpstreams(t)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref.URL+`"
candidate = "`+cand.URL+`"
routes = [{ path = "/api/{value}" }, { path = "/ok/{n}" }, { path = "/skip/{n}", sample = 0.0 }]
[kafka]
topic = "diffs"
"bootstrap.servers" = "`+b.Addr()+`"
[report]
tally_topic = "tallies"
tally_interval = "1h"
`)
	for _, p := range []string{"/api/1", "/api/1", "/api/1", "/api/1", "/api/1", "/api/2", "/api/2", "/api/2", "/api/3", "/api/3",
		"/ok/1", "/ok/2", "/ok/3", "/ok/4", "/ok/5", "/ok/6", "/skip/1", "/skip/2"} {
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
	if len(recs) != 3 {
		t.Fatalf("%d tallies, want 3 (three routes, one interval)", len(recs))
	}
	byRoute := map[string]*tally.Tally{}
	for _, r := range recs {
		tt, err := tally.Decode(r.Value)
		if err != nil {
			t.Fatalf("%v: %s", err, r.Value)
		}
		byRoute[tt.Route] = tt
	}
	got := byRoute["/api/{value}"]
	if got == nil {
		t.Fatal("no tally of /api/{value}")
	}
	if skip := byRoute["/skip/{n}"]; skip == nil || skip.Skipped["sample"] != 2 || skip.Compared != 0 {
		t.Errorf("tally of /skip/{n}: %+v", skip)
	}
	if len(got.IDPrefixes) != 1 {
		t.Errorf("id prefixes %q, want this instance's", got.IDPrefixes)
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

	// miffy report reads both topics: the true compared count, and a
	// verdict that -check turns into the exit status.
	lenient := filepath.Join(t.TempDir(), "lenient.toml")
	if err := os.WriteFile(lenient, []byte(`
routes = [{ path = "/api/{value}", verdict = { max_regression_rate = 0.1 } }, { path = "/ok/{n}" }]
[verdict]
min_compared = 5
max_regression_rate = 0.4
max_candidate_error_rate = 0.4
max_latency_ratio = 100.0
`), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-brokers", b.Addr(), "-topic", "diffs", "-tally-topic", "tallies"}
	tests := []struct {
		name     string
		args     []string
		exit     int
		contains []string
	}{
		{"too few for the defaults", []string{"-check"}, 3,
			[]string{"/api/{value}  10        5      5           50.0% ", "compared 10 < min_compared 200", "inconclusive",
				"/skip/{n}     skipped  sample  2"}},
		{"regressing", []string{"-config", lenient, "-check", "-route", "/api/{value}"}, 1,
			[]string{"fail", "regression rate 50 % (95 % CI 26.9–73.1 %) > 10 %"}},
		{"equal", []string{"-config", lenient, "-check", "-route", "/ok/{n}"}, 0,
			[]string{"pass"}},
		{"unknown route", []string{"-check", "-route", "/nope"}, 3, nil},

		{"json", []string{"-config", lenient, "-json"}, 0,
			[]string{`"verdict": "fail"`, `"reasons": [`, `"source": "tallies"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(t.Context(), append([]string{"report"}, append(tt.args, flags...)...), nil, &out, &errOut)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tt.exit {
				t.Errorf("exit %d (%v), want %d\n%s%s", code, err, tt.exit, out.String(), errOut.String())
			}
			for _, want := range tt.contains {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}

	// The page serves the same figures as the CLI and Diffy's API.
	ctx, cancel := context.WithCancel(t.Context())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"report", "--serve=127.0.0.1:0"}, flags...), nil, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("report --serve: %v", err)
		}
	}()
	var base string
	waitUntil(t, 10*time.Second, "the report server's URL", func() bool {
		_, rest, ok := strings.Cut(stdout.String(), "serving the report page on ")
		base, _, _ = strings.Cut(rest, " ")
		return ok
	})
	var va struct {
		Verdict string
		Figures struct{ Compared, Regressions int64 }
	}
	waitUntil(t, 10*time.Second, "the page to read the topics", func() bool {
		_, body := get(t, base+"api/verdict?route=/api/%7Bvalue%7D")
		return json.Unmarshal([]byte(body), &va) == nil && va.Figures.Compared == 10
	})
	if va.Verdict != "inconclusive" || va.Figures.Regressions != 5 {
		t.Errorf("page verdict %+v", va)
	}
	_, body := get(t, base+"api/1/endpoints")
	if !strings.Contains(body, `"/api/{value}": {`) || !strings.Contains(body, `"total": 10`) || !strings.Contains(body, `"differences": 5`) {
		t.Errorf("Diffy endpoints: %s", body)
	}
}

func TestCheckVerdict(t *testing.T) {
	t.Parallel()
	sum := &report.Summary{Routes: []report.RouteSummary{{Route: "/ok", Verdict: "pass"}, {Route: "/meh", Verdict: "inconclusive"}}}
	tests := []struct {
		name       string
		route      string
		configured []string
		want       int
	}{
		{"all checked, one inconclusive", "", nil, 3},
		{"one passing route", "/ok", nil, 0},
		{"a configured route without evidence", "/ok", []string{"/ok", "/quiet"}, 0},
		{"every configured route", "", []string{"/quiet"}, 3},
		{"the route without evidence", "/quiet", []string{"/quiet"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkVerdict(sum, tt.route, tt.configured, io.Discard)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tt.want {
				t.Errorf("exit %d (%v), want %d", code, err, tt.want)
			}
		})
	}
	pass := &report.Summary{Routes: []report.RouteSummary{{Route: "/ok", Verdict: "pass"}}}
	if err := checkVerdict(pass, "", []string{"/ok", "/quiet"}, io.Discard); exitCode(err) != 3 {
		t.Errorf("a silent configured route: %v, want inconclusive", err)
	}
	if err := checkVerdict(pass, "", []string{"/ok"}, io.Discard); err != nil {
		t.Errorf("every route passes: %v", err)
	}
	fail := &report.Summary{Routes: []report.RouteSummary{{Route: "/ok", Verdict: "pass"}, {Route: "/bad", Verdict: "fail"}}}
	if err := checkVerdict(fail, "", []string{"/quiet"}, io.Discard); exitCode(err) != 1 {
		t.Errorf("a failing route: %v, want fail", err)
	}
}
