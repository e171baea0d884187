package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarizeCPUAndConnections(t *testing.T) {
	run := func(cfg string, reqs int64, proxy, ref, cand, candReqs, candConns float64) result {
		r := result{Mode: "pinned", Candidate: "fast", Config: cfg, ClkTck: 100,
			CPUBefore: map[string]float64{"proxy": 1000, "reference": 2000, "candidate": 3000},
			CPUAfter:  map[string]float64{"proxy": 1000 + proxy, "reference": 2000 + ref, "candidate": 3000 + cand},
			Before:    map[string]float64{"upstream/reference": 0, "upstream/candidate": 0, "upstream/candidate/connections": 5},
			After: map[string]float64{"upstream/reference": float64(reqs), "upstream/candidate": candReqs,
				"upstream/candidate/connections": 5 + candConns},
		}
		r.Wrk.Requests, r.Wrk.DurationUS = reqs, 1e6
		return r
	}
	results := []result{
		// 2 runs of 10 000 requests: 0.5 s and 0.7 s of proxy CPU = 60 µs a request.
		run("nginx-mirror", 10000, 50, 20, 30, 10000, 10000),
		run("nginx-mirror", 10000, 70, 20, 30, 10000, 10000),
		run("miffy-shadow", 10000, 90, 20, 10, 10000, 2),
		// A run written before CPU figures existed counts for neither.
		{Mode: "pinned", Candidate: "fast", Config: "nginx", Wrk: wrkResult{Requests: 5000, DurationUS: 1e6}},
	}
	sums, _ := summarize(results)
	mirror := sums[key{"pinned", "fast", "nginx-mirror"}]
	if !near(mirror.cpuProxy, 60) || !near(mirror.cpuRef, 20) || !near(mirror.cpuCand, 30) {
		t.Errorf("nginx-mirror CPU µs per request = %v / %v / %v, want 60 / 20 / 30", mirror.cpuProxy, mirror.cpuRef, mirror.cpuCand)
	}
	if !near(mirror.candConns, 1) {
		t.Errorf("nginx-mirror candidate connections per request = %v, want 1", mirror.candConns)
	}
	if shadow := sums[key{"pinned", "fast", "miffy-shadow"}]; !near(shadow.candConns, 0.0002) || !near(shadow.cpuProxy, 90) {
		t.Errorf("miffy-shadow = %v conns, %v µs, want 0.0002 and 90", shadow.candConns, shadow.cpuProxy)
	}
	if n := sums[key{"pinned", "fast", "nginx"}]; n.cpuProxy != -1 {
		t.Errorf("a run without CPU figures gave %v µs, want -1 (none)", n.cpuProxy)
	}

	var md bytes.Buffer
	writeReport(&md, results, "", "", "")
	for _, want := range []string{
		"## CPU per request",
		"| pinned | nginx-mirror | fast | 60.0 | 20.0 | 30.0 | 110.0 | 1.000 |",
		"| miffy-shadow / nginx-mirror, proxy CPU per request | 1.50 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}

// TestReportRatiosAndSpread: the console prints the ratios after each
// mode's table, and both reports give every run's p99 and the fast
// candidate's own run-to-run p99 spread beside the slow/fast ratio.
func TestReportRatiosAndSpread(t *testing.T) {
	run := func(n int, cand, cfg string, rps, p99 float64) result {
		r := result{Mode: "paced", Candidate: cand, Config: cfg, Run: n}
		r.Wrk.Requests, r.Wrk.DurationUS = int64(rps), 1e6
		r.Wrk.LatencyUS.P99 = p99
		return r
	}
	results := []result{
		run(1, "fast", "miffy-shadow", 2000, 8000),
		run(1, "slow", "miffy-shadow", 2000, 8800),
		run(2, "fast", "miffy-shadow", 2000, 20000),
		run(2, "slow", "miffy-shadow", 2000, 12000),
		run(3, "fast", "miffy-shadow", 2000, 10000),
		run(3, "slow", "miffy-shadow", 2000, 24000),
		run(1, "fast", "nginx-mirror", 1000, 5000),
	}
	var console, md bytes.Buffer
	writeConsole(&console, results)
	writeReport(&md, results, "", "", "")
	for _, want := range []string{
		"  ratios, this mode's runs:",
		"      2.00  miffy-shadow / nginx-mirror, req/s",
		"      1.20  miffy-shadow slow / fast candidate, p99\n",                            // median 12 / median 10
		"      1.10  miffy-shadow slow / fast candidate, p99, median of each round's pair", // of 1.1, 0.6, 2.4
		"      2.50  miffy-shadow fast candidate, p99 of its slowest / fastest run",
	} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}
	if strings.Contains(console.String(), "miffy-plain / nginx") {
		t.Errorf("console prints a ratio of configurations that did not run:\n%s", console.String())
	}
	for _, want := range []string{
		"| miffy-shadow fast candidate, p99 of its slowest / fastest run (the noise the lines above sit in) | 2.50 |",
		"| miffy-shadow slow / fast candidate, p99, median of each round's pair | 1.10 |",
		"| paced | fast | miffy-shadow | 2000 · 2000 · 2000 | 8.00 · 20.0 · 10.0 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}

// TestTogetherMode: in the together mode the reference serves both runs of
// a round at once, so its CPU is not given per run; the slow/fast pair
// ratio is that of the two runs measured at the same moment.
func TestTogetherMode(t *testing.T) {
	run := func(n int, cand string, p99 float64) result {
		r := result{Mode: "together", Candidate: cand, Config: "miffy-shadow", Run: n, ClkTck: 100,
			CPUBefore: map[string]float64{"proxy": 0, "reference": 0, "candidate": 0},
			CPUAfter:  map[string]float64{"proxy": 40, "reference": 30, "candidate": 10},
			// The reference got both runs' requests.
			Before: map[string]float64{"upstream/reference": 0, "upstream/candidate": 0},
			After:  map[string]float64{"upstream/reference": 20000, "upstream/candidate": 10000},
		}
		r.Wrk.Requests, r.Wrk.DurationUS = 10000, 1e6
		r.Wrk.LatencyUS.P99 = p99
		return r
	}
	results := []result{
		run(1, "fast", 2000), run(1, "slow", 2100),
		run(2, "fast", 4000), run(2, "slow", 4000),
		run(3, "fast", 3000), run(3, "slow", 3600),
	}
	var md bytes.Buffer
	writeReport(&md, results, "", "", "")
	for _, want := range []string{
		"## together: miffy-shadow with the fast and with the slow candidate loaded at the same time",
		"| together | miffy-shadow | slow | 40.0 | — | 10.0 | — | 0.000 |",
		"| miffy-shadow | **slow** | 3 | 10000 | 0.00 | 3.60 | 0.00 | 0 | 0 | 100.0% |",   // candidate got: per client request
		"| miffy-shadow slow / fast candidate, p99, median of each round's pair | 1.05 |", // of 1.05, 1.00, 1.20
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}

// TestReportBodies: the bodies mode gets its own table (CPU and req/s
// ratios per body size) and stays out of the per-mode tables.
func TestReportBodies(t *testing.T) {
	run := func(mode, cfg string, reqs int64, proxyTicks float64) result {
		r := result{Mode: mode, Candidate: "fast", Config: cfg, ClkTck: 100,
			CPUBefore: map[string]float64{"proxy": 0}, CPUAfter: map[string]float64{"proxy": proxyTicks},
			Before: map[string]float64{}, After: map[string]float64{"miffy_requests_total": float64(reqs), "miffy_replays_total": float64(reqs)},
		}
		r.Wrk.Requests, r.Wrk.DurationUS = reqs, 1e6
		return r
	}
	results := []result{
		// 10 000 requests: 1 s of nginx CPU = 100 µs a request, 2.5 s of miffy's = 250 µs.
		run("bodies/102400/reordered", "nginx-mirror", 10000, 100),
		run("bodies/102400/reordered", "miffy-shadow", 8000, 200),
	}
	var md bytes.Buffer
	writeReport(&md, results, "", "", "")
	for _, want := range []string{
		"## Body sizes: nginx + mirror against miffy shadow",
		"| 100 KB | reordered | 100 | 250 | 2.50 | 10000 | 8000 | 0.80 | 100.0% (8000/8000) | 0 | 0 | — |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "## bodies/") {
		t.Errorf("the bodies mode has a per-mode table:\n%s", md.String())
	}
}
