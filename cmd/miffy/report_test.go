package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/report"
)

// TestReportSumsTwoInstances: two miffy instances publish to one topic;
// miffy report sums their records per route, equal ones included where a
// route publishes them.
func TestReportSumsTwoInstances(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	// The candidate differs on /diff/{n} always, on /all/{n} for odd n.
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"price":10}`, r.URL.Path)
	}))
	t.Cleanup(ref.Close)
	cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		price := 10
		n, _ := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		if strings.HasPrefix(r.URL.Path, "/diff/") || n%2 == 1 {
			price = 12
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"price":%d}`, r.URL.Path, price)
	}))
	t.Cleanup(cand.Close)
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [
  { path = "/diff/{n}" },
  { path = "/all/{n}", publish = "all" },
]
[kafka]
topic = "fleet"
"bootstrap.servers" = "` + b.Addr() + `"
`
	a, c := startMiffy(t, config), startMiffy(t, config)
	send := func(in *instance, route string, from, n int) {
		for i := from; i < from+n; i++ {
			if code, body := get(t, fmt.Sprintf("%s/%s/%d", in.proxy, route, i)); code != 200 {
				t.Fatalf("%s/%d: %d %s", route, i, code, body)
			}
		}
	}
	send(a, "diff", 0, 5)
	send(a, "all", 0, 6) // 0..5: 3 differ, 3 equal
	send(c, "diff", 100, 7)
	send(c, "all", 10, 4) // 10..13: 2 differ, 2 equal
	// Stopping waits for the replays and flushes the records.
	for _, in := range []*instance{a, c} {
		if err := in.stop(t); err != nil {
			t.Fatalf("run returned %v", err)
		}
	}

	// The broker and topic come from the config, as for serve.
	var out, errOut strings.Builder
	env := []string{"KAFKA_BOOTSTRAP_SERVERS=" + b.Addr(), "MIFFY_KAFKA__TOPIC=fleet"}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := runReport(ctx, []string{"--json"}, env, &out, &errOut); err != nil {
		t.Fatalf("runReport: %v\n%s", err, errOut.String())
	}
	var s report.Summary
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	type sums struct {
		Route                                 string
		Compared, Equal, Mismatches, Regr, CE int64
		Basis                                 string
		Paths                                 []report.PathCount
	}
	var got []sums
	for _, r := range s.Routes {
		for i := range r.TopPaths {
			r.TopPaths[i].ExampleID = "" // any of the records
		}
		got = append(got, sums{r.Route, r.Compared, r.Equal, r.Mismatches, r.Regressions, r.CandidateErrors, r.RateBasis, r.TopPaths})
		if r.Latency.Reference.P50 <= 0 || r.Latency.Candidate.P99 <= 0 {
			t.Errorf("%s: latency %+v", r.Route, r.Latency)
		}
	}
	want := []sums{
		{"/all/{n}", 10, 5, 5, 5, 0, report.BasisCompared, []report.PathCount{{Path: "$.price", Count: 5}}},
		// The tallies count every compared request: the rate is over them.
		{"/diff/{n}", 12, 0, 12, 12, 0, report.BasisCompared, []report.PathCount{{Path: "$.price", Count: 12}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("per-route sums (-want +got):\n%s", d)
	}
	if s.Records != 22 || s.Unreadable != 0 || s.Topic != "fleet" || s.Tallies != 4 || s.TallyTopic != "miffy-tallies" {
		t.Errorf("records %d unreadable %d topic %q tallies %d from %q", s.Records, s.Unreadable, s.Topic, s.Tallies, s.TallyTopic)
	}

	// The table, with flags instead of the config, without the tallies:
	// the rate of /diff/{n} is over published records only.
	out.Reset()
	if err := runReport(ctx, []string{"-brokers", b.Addr(), "-topic", "fleet", "-tally-topic", "-"}, nil, &out, &errOut); err != nil {
		t.Fatalf("runReport: %v", err)
	}
	for _, want := range []string{`topic "fleet": 22 records`, "/diff/{n}  12", "100.0%*", "$.price"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReportUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad from", []string{"-from", "yesterday"}, "-from"},
		{"bad interval", []string{"-interval", "0s"}, "-interval"},
		{"argument", []string{"extra"}, "extra"},
		{"unknown flag", []string{"-frobnicate"}, "frobnicate"},
		{"bad until", []string{"-until", "tomorrow"}, "-until"},
		{"check and follow", []string{"-check", "-follow"}, "-follow"},
		{"route without check", []string{"-route", "/a"}, "-route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut strings.Builder
			err := runReport(t.Context(), tt.args, nil, &strings.Builder{}, &errOut)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runReport = %v, want a usage error naming %s", err, tt.want)
			}
		})
	}
}

// TestReportServeToken: with [report] token_file the report server wants
// the token; an empty token file fails at start, naming the key.
func TestReportServeToken(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	dir := t.TempDir()
	tokenPath, emptyPath := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	os.WriteFile(tokenPath, []byte("s3cret\n"), 0o600)
	os.WriteFile(emptyPath, nil, 0o600)
	conf := func(tokenFile string) string {
		p := filepath.Join(dir, "config-"+filepath.Base(tokenFile)+".toml")
		os.WriteFile(p, []byte("[report]\ntoken_file = \""+tokenFile+"\"\n"), 0o600)
		return p
	}
	err := run(t.Context(), []string{"report", "-config", conf(emptyPath), "-brokers", b.Addr(), "--serve=127.0.0.1:0"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "report.token_file") {
		t.Errorf("empty token file: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"report", "-config", conf(tokenPath), "-brokers", b.Addr(), "--serve=127.0.0.1:0"}, nil, stdout, io.Discard)
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
	if code, _ := get(t, base+"api/routes"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
	if code, _ := get(t, base+"api/routes", "Authorization", "Bearer s3cret"); code != http.StatusOK {
		t.Errorf("with the token: %d", code)
	}
}
