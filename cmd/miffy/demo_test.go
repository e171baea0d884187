package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/report"
)

// TestDemo runs `miffy demo` as a new user would (on free ports instead of
// 8080, 9000, 3000, 3001 and 9092): the reference answers at once, even
// for the slow value, and the topic holds one record for each value the
// candidate differs on and none for the others.
func TestDemo(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 6) // six distinct: the demo fails on a port taken twice
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	brokerAddr, refAddr, candAddr, pageAddr := addr(0), addr(1), addr(2), addr(3)
	pp, mp := ports[4], ports[5]
	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-broker", brokerAddr, "-reference", refAddr, "-candidate", candAddr, "-report", pageAddr},
			[]string{fmt.Sprintf("MIFFY_PORT=%d", pp), fmt.Sprintf("MIFFY_MANAGEMENT_PORT=%d", mp), "MIFFY_ACCESS_LOG=false"},
			stdout, stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v\n%s", err, stderr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("demo did not stop")
		}
	}
	t.Cleanup(stop)
	waitUntil(t, 20*time.Second, "the demo to start", func() bool {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("demo returned before it was ready: %v\n%s", err, stderr)
		default:
		}
		return strings.Contains(stdout.String(), "miffy demo is running")
	})
	// Every case of the demo candidate is listed, and how to move the ports.
	wants := []string{"kcat -b " + brokerAddr + " -C -t miffy -e", "MIFFY_PORT", "MIFFY_MANAGEMENT_PORT", "-broker",
		"report page http://" + pageAddr + "/"}
	for v := 3; v <= 8; v++ {
		wants = append(wants, fmt.Sprintf("curl -s localhost:%d/api/%d ", pp, v))
	}
	for _, want := range wants {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the help lacks %q:\n%s", want, stdout)
		}
	}
	// The proxy stays on loopback, as the demo upstreams and broker do.
	if want := fmt.Sprintf("proxy=127.0.0.1:%d", pp); !strings.Contains(stderr.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, stderr)
	}

	proxy := fmt.Sprintf("http://127.0.0.1:%d", pp)
	for v := 1; v <= 9; v++ {
		start := time.Now()
		code, body := get(t, fmt.Sprintf("%s/api/%d", proxy, v))
		if want := fmt.Sprintf(`"message":"hello %d"`, v); code != 200 || !strings.Contains(body, want) {
			t.Errorf("/api/%d: %d %s, want the reference's answer", v, code, body)
		}
		// /api/7's candidate answers after 1.5s: the client does not
		// wait for it.
		if took := time.Since(start); v == 7 && took >= 1500*time.Millisecond {
			t.Errorf("/api/%d took %v: the client waited for the slow candidate", v, took)
		}
	}
	// The embedded broker stops with the demo: read the topic before, once
	// every replay (/api/7's is 1.5 s slow) has been compared and published.
	mgmt := &instance{mgmt: fmt.Sprintf("http://127.0.0.1:%d", mp)}
	waitUntil(t, 10*time.Second, "the replays and their records", func() bool {
		m := scrapeMetrics(t, mgmt)
		return metricTotal(m, "miffy_replays_total", `route="/api/{value}"`) == 9 && publishMetric(t, mgmt, "delivered") == 4
	})
	var keys []string
	for _, r := range readTopic(t, brokerAddr, "miffy") {
		keys = append(keys, string(r.Key))
	}
	slices.Sort(keys) // replays finish in any order
	if got := strings.Join(keys, ","); got != "4,5,6,8" {
		t.Errorf("records keyed %s, want 4,5,6,8 (one per differing value)", got)
	}

	// The tallies (every second in the demo) give the page and the report
	// every compared request, and the candidate's real p99 (/api/7).
	var ov struct {
		Routes []report.RouteSummary `json:"routes"`
	}
	waitUntil(t, 10*time.Second, "the page to count every compared request", func() bool {
		_, body := get(t, "http://"+pageAddr+"/api/routes")
		return json.Unmarshal([]byte(body), &ov) == nil && len(ov.Routes) == 1 && ov.Routes[0].Compared == 9
	})
	if r := ov.Routes[0]; r.Mismatches != 4 || r.Latency.Candidate.P99 < 1400 || r.Verdict != "inconclusive" {
		t.Errorf("page: mismatches %d, candidate p99 %v ms, verdict %s", r.Mismatches, r.Latency.Candidate.P99, r.Verdict)
	}
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"report", "-brokers", brokerAddr, "-check"}, nil, &out, &errOut)
	if exitCode(err) != 3 || !strings.Contains(out.String(), "/api/{value}  9         5      4           44.4%") ||
		strings.Contains(out.String(), "*") || !strings.Contains(out.String(), "compared 9 < min_compared 200") {
		t.Errorf("miffy report -check: %v (exit %d)\n%s%s", err, exitCode(err), out.String(), errOut.String())
	}
	stop()
}
