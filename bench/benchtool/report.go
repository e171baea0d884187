package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// result is one measured wrk run, a line of bench/out/results.jsonl.
type result struct {
	Mode      string             `json:"mode"`      // pinned | unpinned | paced
	Candidate string             `json:"candidate"` // fast | slow
	Config    string             `json:"config"`    // direct, nginx, nginx-mirror, miffy-plain, miffy-shadow
	Run       int                `json:"run"`
	Wrk       wrkResult          `json:"wrk"`
	Before    map[string]float64 `json:"before"`
	After     map[string]float64 `json:"after"`
	RSSKB     int64              `json:"rss_kb"`
	// CPU time (user + system, in clock ticks of ClkTck a second) of the
	// proxy, reference and candidate processes, read before and after the
	// run ("proxy" is 0 for direct).
	CPUBefore map[string]float64 `json:"cpu_before"`
	CPUAfter  map[string]float64 `json:"cpu_after"`
	ClkTck    float64            `json:"clk_tck"`
}

// cpuSeconds is the CPU time process ("proxy", "reference", "candidate")
// used during the run, and false when the run has no CPU figures.
func (r result) cpuSeconds(process string) (float64, bool) {
	if r.ClkTck <= 0 || r.CPUBefore == nil || r.CPUAfter == nil {
		return 0, false
	}
	return (r.CPUAfter[process] - r.CPUBefore[process]) / r.ClkTck, true
}

// wrkResult is what bench/wrk-report.lua prints.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Errors     struct {
		Connect, Read, Write, Status, Timeout int64
	} `json:"errors"`
	LatencyUS struct {
		P50  float64 `json:"p50"`
		P90  float64 `json:"p90"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p999"`
		Max  float64 `json:"max"`
	} `json:"latency_us"`
}

func (w wrkResult) rps() float64 {
	if w.DurationUS == 0 {
		return 0
	}
	return float64(w.Requests) / (float64(w.DurationUS) / 1e6)
}

func (r result) delta(name string) float64 { return r.After[name] - r.Before[name] }

// configs in the order they are reported.
var configs = []string{"direct", "nginx", "nginx-mirror", "miffy-plain", "miffy-shadow"}

var configDesc = map[string]string{
	"direct":       "wrk → reference (the limit)",
	"nginx":        "nginx proxy_pass → reference",
	"nginx-mirror": "nginx proxy_pass + mirror → candidate",
	"miffy-plain":  "miffy, no routes (plain proxy)",
	"miffy-shadow": "miffy, route /api/{value} shadowed",
}

// summary is one configuration's runs folded into one row.
type summary struct {
	n                   int
	rps, p50, p99, p999 float64   // medians over runs
	rpsAll, p99All      []float64 // every run's, in order
	p99ByRun            map[int]float64
	errors, non2xx      int64
	candShare           float64 // requests the candidate got / requests the reference got; -1 if none
	replayed, eligible  float64
	dropped, mismatches float64
	cut                 float64 // reference answers cut short (wrk stopping mid-request): not comparable
	accepted, delivered float64
	rssKB               int64
	// CPU µs per request the client made, over all runs; -1 without figures.
	cpuProxy, cpuRef, cpuCand float64
	// connections the candidate accepted per request it got; -1 if none.
	candConns float64
}

type key struct{ mode, cand, config string }

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resultsPath := fs.String("results", "", "results.jsonl written by run.sh")
	machinePath := fs.String("machine", "", "machine description, one 'key: value' a line")
	profileDir := fs.String("profile-dir", "", "directory with profile-*.txt and profile-counts.json (optional)")
	goBench := fs.String("go-bench", "", "output of go test -bench (optional)")
	outPath := fs.String("out", "", "markdown file to write")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *resultsPath == "" || *outPath == "" {
		return fmt.Errorf("%w: -results and -out are required", errUsage)
	}
	results, err := readResults(*resultsPath)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeReport(&md, results, readOptional(*machinePath), *profileDir, readOptional(*goBench))
	if err := os.WriteFile(*outPath, md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	writeConsole(stdout, results)
	return nil
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func readOptional(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func summarize(results []result) (map[key]*summary, []string) {
	sums := map[key]*summary{}
	var modes []string
	groups := map[key][]result{}
	for _, r := range results {
		k := key{r.Mode, r.Candidate, r.Config}
		groups[k] = append(groups[k], r)
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
	}
	for k, rs := range groups {
		s := &summary{n: len(rs), candShare: -1, cpuProxy: -1, cpuRef: -1, cpuCand: -1, candConns: -1,
			p99ByRun: map[int]float64{}}
		var rps, p50, p99, p999 []float64
		var ref, cand float64
		var cpuReqs, cpuProxy, cpuRef, cpuCand, candConns float64
		for _, r := range rs {
			rps = append(rps, r.Wrk.rps())
			p50 = append(p50, r.Wrk.LatencyUS.P50)
			p99 = append(p99, r.Wrk.LatencyUS.P99)
			s.p99ByRun[r.Run] = r.Wrk.LatencyUS.P99
			p999 = append(p999, r.Wrk.LatencyUS.P999)
			e := r.Wrk.Errors
			s.errors += e.Connect + e.Read + e.Write + e.Timeout
			s.non2xx += e.Status
			if r.Mode == "together" {
				// The reference served both runs of the round at once: its
				// count is not this run's. The client's own count is.
				ref += float64(r.Wrk.Requests)
			} else {
				ref += r.delta("upstream/reference")
			}
			cand += r.delta("upstream/candidate")
			candConns += r.delta("upstream/candidate/connections")
			s.replayed += r.delta("miffy_replays_total")
			s.eligible += r.delta("miffy_requests_total") - r.delta("miffy_shadow_skipped_total/method") -
				r.delta("miffy_shadow_skipped_total/sample") - r.delta("miffy_shadow_skipped_total/body_too_large")
			s.dropped += r.delta("miffy_shadow_dropped_total")
			s.cut += r.delta("miffy_shadow_skipped_total/reference_error")
			s.mismatches += r.delta("miffy_mismatches_total")
			s.accepted += r.delta("miffy_publish_records_total/accepted")
			s.delivered += r.delta("miffy_publish_records_total/delivered")
			s.rssKB = max(s.rssKB, r.RSSKB)
			if p, ok := r.cpuSeconds("proxy"); ok {
				cpuReqs += float64(r.Wrk.Requests)
				cpuProxy += p
				v, _ := r.cpuSeconds("reference")
				cpuRef += v
				v, _ = r.cpuSeconds("candidate")
				cpuCand += v
			}
		}
		if cpuReqs > 0 {
			s.cpuProxy, s.cpuRef, s.cpuCand = cpuProxy/cpuReqs*1e6, cpuRef/cpuReqs*1e6, cpuCand/cpuReqs*1e6
		}
		s.rpsAll, s.p99All = rps, slices.Clone(p99)
		s.rps, s.p50, s.p99, s.p999 = median(rps), median(p50), median(p99), median(p999)
		if ref > 0 && (k.config == "nginx-mirror" || k.config == "miffy-shadow") {
			s.candShare = cand / ref
			if cand > 0 {
				s.candConns = candConns / cand
			}
		}
		sums[k] = s
	}
	return sums, modes
}

// row is one configuration's summary in a mode.
type row struct {
	cand, config string
	s            *summary
}

// rowsOf yields the configurations run in mode, the fast candidate's first,
// each in the order of configs.
func rowsOf(sums map[key]*summary, mode string) iter.Seq[row] {
	return func(yield func(row) bool) {
		for _, cand := range []string{"fast", "slow"} {
			for _, c := range configs {
				if s := sums[key{mode, cand, c}]; s != nil && !yield(row{cand, c, s}) {
					return
				}
			}
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(us float64) string {
	switch {
	case us >= 100_000:
		return strconv.FormatFloat(us/1000, 'f', 0, 64)
	case us >= 10_000:
		return strconv.FormatFloat(us/1000, 'f', 1, 64)
	default:
		return strconv.FormatFloat(us/1000, 'f', 2, 64)
	}
}

// p99Spread is the p99 of a configuration's slowest run over its fastest
// one's: how far the same configuration moves from run to run here.
func p99Spread(s *summary) float64 {
	if len(s.p99All) < 2 {
		return 0
	}
	return slices.Max(s.p99All) / slices.Min(s.p99All)
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "—"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

func pct(a, b float64) string {
	if b <= 0 {
		return "—"
	}
	return strconv.FormatFloat(100*a/b, 'f', 1, 64) + "%"
}

var modeDesc = map[string]string{
	"pinned":   "pinned: wrk on CPU 0 (`taskset -c 0`), every server on CPU 1 (`taskset -c 1`)",
	"unpinned": "unpinned: wrk and the servers share all CPUs",
	"paced":    "paced: a fixed rate for every configuration (`benchtool load`, open loop, latency from when each request was due), unpinned",
	"together": "together: miffy-shadow with the fast and with the slow candidate loaded at the same time (`benchtool load` at a fixed rate each), unpinned: the two runs of a round share the machine's every moment",
}

func writeReport(w io.Writer, results []result, machine, profileDir, goBench string) {
	sums, allModes := summarize(results)
	var modes, bodyModes []string
	for _, m := range allModes {
		if strings.HasPrefix(m, "bodies/") {
			bodyModes = append(bodyModes, m)
		} else {
			modes = append(modes, m)
		}
	}
	writeIntro(w, machine)
	writeModes(w, sums, modes)
	writeCPU(w, sums, modes)
	writeBodies(w, sums, bodyModes)
	writeRatios(w, sums, modes)
	writeSpread(w, sums, modes)
	writeConfigs(w)
	if profileDir != "" {
		writeProfile(w, profileDir)
	}
	writeGoBench(w, goBench)
}

// writeIntro is the report's title, the machine and how to read the tables.
func writeIntro(w io.Writer, machine string) {
	fmt.Fprintln(w, "# miffy side-by-side benchmark")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Written by `bench/run.sh` (`just bench`); rerun it rather than editing this file. How it")
	fmt.Fprintln(w, "measures is described in `bench/README.md`.")
	fmt.Fprintln(w)
	if machine != "" {
		fmt.Fprintln(w, "## Machine and settings")
		fmt.Fprintln(w)
		for _, line := range strings.Split(strings.TrimSpace(machine), "\n") {
			fmt.Fprintf(w, "- %s\n", line)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Values are medians over the runs (req/s, p50, p99); errors, coverage and drops are summed")
	fmt.Fprintln(w, "over the runs; RSS is the largest seen while under load. Latencies in milliseconds, as wrk's")
	fmt.Fprintln(w, "client sees them. *candidate got*: requests the candidate received per request the reference")
	fmt.Fprintln(w, "received. *coverage*: miffy's replays finished per eligible request (`miffy_replays_total` /")
	fmt.Fprintln(w, "`miffy_requests_total` less rule skips); *cut*: requests whose reference answer was cut short")
	fmt.Fprintln(w, "(`miffy_shadow_skipped_total{reason=\"reference_error\"}`: wrk closes its connections with")
	fmt.Fprintln(w, "requests in flight when a run ends), so not compared; *drops*: `miffy_shadow_dropped_total`.")
	fmt.Fprintln(w)
}

// writeModes is a table per mode: every configuration with each candidate.
func writeModes(w io.Writer, sums map[key]*summary, modes []string) {
	for _, mode := range modes {
		fmt.Fprintf(w, "## %s\n\n", cmp.Or(modeDesc[mode], mode))
		fmt.Fprintln(w, "| configuration | candidate | runs | req/s | p50 | p99 | p99.9 | errors | non-2xx | candidate got | coverage | drops | mismatches | published | miffy RSS max |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for r := range rowsOf(sums, mode) {
			writeModeRow(w, r.cand, r.config, r.s)
		}
		fmt.Fprintln(w)
	}
}

// writeModeRow is one configuration's row; the shadow columns only for
// miffy-shadow.
func writeModeRow(w io.Writer, cand, c string, s *summary) {
	cov, drops, mism, pub, rss := "—", "—", "—", "—", "—"
	if c == "miffy-shadow" {
		cov = fmt.Sprintf("%s (%.0f/%.0f", pct(s.replayed, s.eligible), s.replayed, s.eligible)
		if s.cut > 0 {
			cov += fmt.Sprintf(", %.0f cut", s.cut)
		}
		cov += ")"
		drops = strconv.FormatFloat(s.dropped, 'f', 0, 64)
		mism = strconv.FormatFloat(s.mismatches, 'f', 0, 64)
		pub = fmt.Sprintf("%.0f (%.0f delivered)", s.accepted, s.delivered)
	}
	if strings.HasPrefix(c, "miffy") && s.rssKB > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(s.rssKB)/1024)
	}
	share := "—"
	if s.candShare >= 0 {
		share = pct(s.candShare, 1)
	}
	candDesc := "fast"
	if cand == "slow" {
		candDesc = "**slow**"
	}
	fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s |\n",
		c, candDesc, s.n, s.rps, ms(s.p50), ms(s.p99), ms(s.p999), s.errors, s.non2xx, share, cov, drops, mism, pub, rss)
}

// writeRatios compares the configurations, per mode.
func writeRatios(w io.Writer, sums map[key]*summary, modes []string) {
	fmt.Fprintln(w, "## Ratios")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| ratio |")
	for _, m := range modes {
		fmt.Fprintf(w, " %s |", m)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("--:|", len(modes)))
	for _, r := range ratioRows() {
		fmt.Fprintf(w, "| %s |", r.name)
		for _, m := range modes {
			fmt.Fprintf(w, " %s |", ratioIn(sums, r, m))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// writeSpread lists every run's req/s and p99.
func writeSpread(w io.Writer, sums map[key]*summary, modes []string) {
	fmt.Fprintln(w, "## Spread: req/s and p99 of every run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Runs alternate round-robin over the configurations, so a noisy neighbour hits all of them alike.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | candidate | configuration | req/s per run | p99 ms per run |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, m := range modes {
		for r := range rowsOf(sums, m) {
			cand, c, s := r.cand, r.config, r.s
			var vs []string
			for _, v := range s.rpsAll {
				vs = append(vs, strconv.FormatFloat(v, 'f', 0, 64))
			}
			var ps []string
			for _, v := range s.p99All {
				ps = append(ps, ms(v))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", m, cand, c, strings.Join(vs, " · "), strings.Join(ps, " · "))
		}
	}
	fmt.Fprintln(w)
}

// writeConfigs says what each configuration does.
func writeConfigs(w io.Writer) {
	fmt.Fprintln(w, "## What the configurations do")
	fmt.Fprintln(w)
	for _, c := range configs {
		fmt.Fprintf(w, "- **%s**: %s.\n", c, configDesc[c])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "nginx `mirror` sends a subrequest to the candidate and throws its answer away: nothing is")
	fmt.Fprintln(w, "compared or published, and it has no bound or drop counter. nginx does not finish the client's")
	fmt.Fprintln(w, "request until the mirror subrequest is done, so on a keep-alive connection the next request")
	fmt.Fprintln(w, "waits for the candidate: a slow candidate shows in the client's latency and throughput above.")
	fmt.Fprintln(w, "miffy answers from the reference and replays detached (bounded by `[shadow] max_in_flight`),")
	fmt.Fprintln(w, "so a slow candidate costs it replays in flight (memory), not client latency.")
	fmt.Fprintln(w)
}

// writeGoBench quotes the Go micro-benchmarks' result lines, if any.
func writeGoBench(w io.Writer, goBench string) {
	if strings.TrimSpace(goBench) == "" {
		return
	}
	fmt.Fprintln(w, "## Go micro-benchmarks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "`go test -run '^$' -bench … -benchmem` on the same machine (allocs/op of the proxy benchmarks")
	fmt.Fprintln(w, "include the whole in-process round trip: raw client, miffy, raw upstreams; see")
	fmt.Fprintln(w, "`internal/shadow/proxy_bench_test.go`).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "```")
	for _, line := range strings.Split(goBench, "\n") {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "cpu:") {
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, "```")
	fmt.Fprintln(w)
}

// writeCPU prints the CPU each process used per request, the figure that a
// busy neighbour disturbs least: req/s falls when the machine is shared, CPU
// per request much less.
func writeCPU(w io.Writer, sums map[key]*summary, modes []string) {
	have := false
	for _, s := range sums {
		have = have || s.cpuProxy >= 0
	}
	if !have {
		return
	}
	fmt.Fprintln(w, "## CPU per request")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "User + system CPU time of each process during the runs (from `/proc/PID/stat`, nginx with its")
	fmt.Fprintln(w, "workers), divided by the requests the client made, in µs. miffy's figure includes its replays,")
	fmt.Fprintln(w, "comparisons and Kafka producer up to the moment the replays in flight reached zero; the broker")
	fmt.Fprintln(w, "process is not counted (in production Kafka runs elsewhere). A slow candidate costs the")
	fmt.Fprintln(w, "*candidate* process CPU too (hundreds of requests held open), on the same CPUs as the proxies.")
	fmt.Fprintln(w, "*candidate conns*: connections the candidate accepted per request it got. nginx's `mirror`")
	fmt.Fprintln(w, "reads only the head of the mirror's answer (the subrequest is `header_only`), so it cannot")
	fmt.Fprintln(w, "reuse the connection and opens a new one for every mirrored request, whatever `keepalive` says;")
	fmt.Fprintln(w, "miffy reads the whole answer (it compares it) and keeps its connections.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | configuration | candidate | proxy | reference | candidate process | all three | candidate conns |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|")
	us := func(v float64) string {
		if v < 0 {
			return "—"
		}
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	for _, m := range modes {
		for r := range rowsOf(sums, m) {
			cand, c, s := r.cand, r.config, r.s
			if s.cpuProxy < 0 {
				continue
			}
			conns := "—"
			if s.candConns >= 0 {
				conns = strconv.FormatFloat(s.candConns, 'f', 3, 64)
			}
			proxy := us(s.cpuProxy)
			if c == "direct" {
				proxy = "—" // no proxy between wrk and the reference
			}
			ref, all := us(s.cpuRef), us(s.cpuProxy+s.cpuRef+s.cpuCand)
			if m == "together" {
				// The reference served both loads at once: its CPU is not
				// this run's alone.
				ref, all = "—", "—"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", m, c, cand,
				proxy, ref, us(s.cpuCand), all, conns)
		}
	}
	fmt.Fprintln(w)
}

// writeBodies prints the bodies mode: nginx + mirror against miffy shadow
// per body size and candidate answer, as CPU per request and req/s ratios.
func writeBodies(w io.Writer, sums map[key]*summary, modes []string) {
	if len(modes) == 0 {
		return
	}
	fmt.Fprintln(w, "## Body sizes: nginx + mirror against miffy shadow")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The bodies mode (`BENCH_MODES=bodies`): pinned (wrk on CPU 0, every server on CPU 1), the")
	fmt.Fprintln(w, "candidate answering the same JSON as the reference, byte for byte (*bytes*) or with every")
	fmt.Fprintln(w, "object's members in reverse order (*reordered*); nothing differs. Both configurations run in")
	fmt.Fprintln(w, "the same rounds. CPU: the proxy process's user + system time per client request, over all")
	fmt.Fprintln(w, "runs (miffy's includes its replays and comparisons, to the moment the replays in flight reached")
	fmt.Fprintln(w, "zero). req/s: medians. Ratios are miffy's over nginx + mirror's.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| body | candidate's answer | nginx + mirror CPU µs/req | miffy CPU µs/req | CPU ratio | nginx + mirror req/s | miffy req/s | req/s ratio | coverage | drops | mismatches | miffy RSS max |")
	fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, m := range modes {
		parts := strings.Split(m, "/") // bodies/SIZE/VARIANT
		if len(parts) != 3 {
			continue
		}
		ng, mf := sums[key{m, "fast", "nginx-mirror"}], sums[key{m, "fast", "miffy-shadow"}]
		if ng == nil || mf == nil {
			continue
		}
		size := parts[1]
		if n, err := strconv.Atoi(size); err == nil {
			size = byteSize(n)
		}
		us := func(v float64) string {
			if v < 0 {
				return "—"
			}
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		rss := "—"
		if mf.rssKB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(mf.rssKB)/1024)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f | %.0f | %s | %s (%.0f/%.0f) | %.0f | %.0f | %s |\n",
			size, parts[2], us(ng.cpuProxy), us(mf.cpuProxy), ratio(mf.cpuProxy, ng.cpuProxy),
			ng.rps, mf.rps, ratio(mf.rps, ng.rps), pct(mf.replayed, mf.eligible), mf.replayed, mf.eligible,
			mf.dropped, mf.mismatches, rss)
	}
	fmt.Fprintln(w)
}

// byteSize renders a body size: 100 B, 10 KB, 100 KB (1 KB = 1024 bytes).
func byteSize(n int) string {
	if n < 1024 {
		return strconv.Itoa(n) + " B"
	}
	return strconv.FormatFloat(float64(n)/1024, 'f', -1, 64) + " KB"
}

// totalRe finds pprof's "of 123.45MB total" / "Total samples = 12.3s".
var (
	totalRe   = regexp.MustCompile(`of ([0-9.]+)([a-zA-Zµ]*) total`)
	samplesRe = regexp.MustCompile(`Total samples = ([0-9.]+)(m?s)`)
)

func writeProfile(w io.Writer, dir string) {
	counts := readOptional(filepath.Join(dir, "profile-counts.json"))
	if counts == "" {
		return
	}
	var c struct {
		Seconds float64            `json:"seconds"`
		Before  map[string]float64 `json:"before"`
		After   map[string]float64 `json:"after"`
		Wrk     wrkResult          `json:"wrk"`
	}
	if err := json.Unmarshal([]byte(counts), &c); err != nil {
		return
	}
	reqs := c.After["miffy_requests_total"] - c.Before["miffy_requests_total"]
	fmt.Fprintln(w, "## Profile: miffy-shadow under wrk (unpinned, fast candidate)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "A %.0f s CPU profile and an allocation profile over the same window, taken from\n", c.Seconds)
	fmt.Fprintf(w, "`/debug/pprof` (`[management] pprof = true`) while wrk ran at %.0f req/s; %.0f client requests in the window.\n\n", c.Wrk.rps(), reqs)
	cpuTop := readOptional(filepath.Join(dir, "profile-cpu-top.txt"))
	objTop := readOptional(filepath.Join(dir, "profile-alloc-objects-top.txt"))
	spaceTop := readOptional(filepath.Join(dir, "profile-alloc-space-top.txt"))
	if m := samplesRe.FindStringSubmatch(cpuTop); m != nil && reqs > 0 {
		v, _ := strconv.ParseFloat(m[1], 64)
		if m[2] == "ms" {
			v /= 1000
		}
		fmt.Fprintf(w, "- CPU: %.1f s of samples in %.0f s = %.2f cores busy; **%.1f µs of CPU per request**.\n", v, c.Seconds, v/c.Seconds, v/reqs*1e6)
	}
	if n, ok := pprofTotal(objTop); ok && reqs > 0 {
		fmt.Fprintf(w, "- Allocations: %.0f objects; **%.0f allocations per request**.\n", n, n/reqs)
	}
	if n, ok := pprofTotal(spaceTop); ok && reqs > 0 {
		fmt.Fprintf(w, "- Allocated bytes: %.1f MB; **%.1f KB per request**.\n", n/1e6, n/reqs/1e3)
	}
	fmt.Fprintln(w)
	for _, p := range []struct{ title, file string }{
		{"CPU, flat (top 25)", "profile-cpu-top.txt"},
		{"CPU, cumulative (top 40)", "profile-cpu-cum.txt"},
		{"Allocated objects, flat (top 25)", "profile-alloc-objects-top.txt"},
		{"Allocated bytes, flat (top 20)", "profile-alloc-space-top.txt"},
	} {
		text := readOptional(filepath.Join(dir, p.file))
		if text == "" {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n```\n%s```\n\n", p.title, text)
	}
}

// pprofTotal reads the total of a -top listing in base units (objects or bytes).
func pprofTotal(top string) (float64, bool) {
	m := totalRe.FindStringSubmatch(top)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]float64{"": 1, "B": 1, "k": 1e3, "kB": 1e3, "K": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12}
	f, ok := mult[m[2]]
	if !ok {
		return 0, false
	}
	return v * f, true
}

// ratioRow is one line of the ratios: a configuration's figure over
// another's, both of the same mode.
type ratioRow struct {
	name   string
	a, b   key                    // mode left empty
	metric func(*summary) float64 // of a over b; of a alone if b is the zero key
	// paired, if set, replaces metric: a figure of a and b together.
	paired func(a, b *summary) float64
}

// pairedP99 is the median over the rounds of a's p99 over b's p99 in the
// same round. run.sh runs a slow configuration right after its fast twin, so
// each pair shares the machine's noise of that moment, which the ratio of
// the two medians does not.
func pairedP99(a, b *summary) float64 {
	var rs []float64
	for run, pa := range a.p99ByRun {
		if pb, ok := b.p99ByRun[run]; ok && pa > 0 && pb > 0 {
			rs = append(rs, pa/pb)
		}
	}
	return median(rs)
}

// ratioRows are the ratios the report gives, in order.
func ratioRows() []ratioRow {
	rps := func(s *summary) float64 { return s.rps }
	p50 := func(s *summary) float64 { return s.p50 }
	p99 := func(s *summary) float64 { return s.p99 }
	cpuProxy := func(s *summary) float64 { return max(s.cpuProxy, 0) }
	cpuCand := func(s *summary) float64 { return max(s.cpuCand, 0) }
	k := func(cand, c string) key { return key{"", cand, c} }
	return []ratioRow{
		{"miffy-shadow / direct, req/s", k("fast", "miffy-shadow"), k("fast", "direct"), rps, nil},
		{"miffy-shadow / direct, p50", k("fast", "miffy-shadow"), k("fast", "direct"), p50, nil},
		{"miffy-shadow / direct, p99", k("fast", "miffy-shadow"), k("fast", "direct"), p99, nil},
		{"miffy-shadow / nginx-mirror, req/s", k("fast", "miffy-shadow"), k("fast", "nginx-mirror"), rps, nil},
		{"miffy-shadow / nginx-mirror, p50", k("fast", "miffy-shadow"), k("fast", "nginx-mirror"), p50, nil},
		{"miffy-shadow / nginx-mirror, p99", k("fast", "miffy-shadow"), k("fast", "nginx-mirror"), p99, nil},
		{"miffy-plain / nginx, req/s", k("fast", "miffy-plain"), k("fast", "nginx"), rps, nil},
		{"miffy-plain / nginx, p50", k("fast", "miffy-plain"), k("fast", "nginx"), p50, nil},
		{"miffy-plain / nginx, p99", k("fast", "miffy-plain"), k("fast", "nginx"), p99, nil},
		{"miffy-plain / nginx, proxy CPU per request", k("fast", "miffy-plain"), k("fast", "nginx"), cpuProxy, nil},
		{"miffy-shadow / nginx-mirror, proxy CPU per request", k("fast", "miffy-shadow"), k("fast", "nginx-mirror"), cpuProxy, nil},
		{"miffy-shadow / miffy-plain, req/s", k("fast", "miffy-shadow"), k("fast", "miffy-plain"), rps, nil},
		{"miffy-shadow slow / fast candidate, p99", k("slow", "miffy-shadow"), k("fast", "miffy-shadow"), p99, nil},
		{"miffy-shadow slow / fast candidate, p99, median of each round's pair", k("slow", "miffy-shadow"), k("fast", "miffy-shadow"), nil, pairedP99},
		{"miffy-shadow fast candidate, p99 of its slowest / fastest run (the noise the lines above sit in)",
			k("fast", "miffy-shadow"), key{}, p99Spread, nil},
		{"miffy-shadow slow / fast candidate, req/s", k("slow", "miffy-shadow"), k("fast", "miffy-shadow"), rps, nil},
		{"miffy-shadow slow / fast candidate, proxy CPU per request", k("slow", "miffy-shadow"), k("fast", "miffy-shadow"), cpuProxy, nil},
		{"miffy-shadow slow / fast candidate, candidate's own CPU per request", k("slow", "miffy-shadow"), k("fast", "miffy-shadow"), cpuCand, nil},
		{"nginx-mirror slow / fast candidate, p99", k("slow", "nginx-mirror"), k("fast", "nginx-mirror"), p99, nil},
		{"nginx-mirror slow / fast candidate, req/s", k("slow", "nginx-mirror"), k("fast", "nginx-mirror"), rps, nil},
		{"miffy-shadow / nginx-mirror, slow candidate, req/s", k("slow", "miffy-shadow"), k("slow", "nginx-mirror"), rps, nil},
		{"miffy-shadow / nginx-mirror, slow candidate, p99", k("slow", "miffy-shadow"), k("slow", "nginx-mirror"), p99, nil},
	}
}

// ratioIn formats r for one mode, or "—" where a figure is missing.
func ratioIn(sums map[key]*summary, r ratioRow, mode string) string {
	a, b := r.a, r.b
	a.mode, b.mode = mode, mode
	sa, sb := sums[a], sums[b]
	switch {
	case sa == nil:
		return "—"
	case r.b == (key{}):
		return ratio(r.metric(sa), 1)
	case sb == nil:
		return "—"
	case r.paired != nil:
		return ratio(r.paired(sa, sb), 1)
	}
	return ratio(r.metric(sa), r.metric(sb))
}

// writeConsole prints the short tables run.sh shows at the end: per mode,
// the configurations, then the ratios whose figures that mode has.
func writeConsole(w io.Writer, results []result) {
	sums, modes := summarize(results)
	for _, mode := range modes {
		fmt.Fprintf(w, "\n%s\n", mode)
		fmt.Fprintf(w, "  %-13s %-5s %9s %9s %9s %12s  %s\n", "config", "cand", "req/s", "p50 ms", "p99 ms", "proxy µs CPU", "coverage / drops")
		for r := range rowsOf(sums, mode) {
			cand, c, s := r.cand, r.config, r.s
			extra := ""
			if c == "miffy-shadow" {
				extra = fmt.Sprintf("%s / %.0f", pct(s.replayed, s.eligible), s.dropped)
			}
			cpu := "—"
			if s.cpuProxy > 0 {
				cpu = strconv.FormatFloat(s.cpuProxy, 'f', 1, 64)
			}
			fmt.Fprintf(w, "  %-13s %-5s %9.0f %9s %9s %12s  %s\n", c, cand, s.rps, ms(s.p50), ms(s.p99), cpu, extra)
		}
		fmt.Fprintln(w, "  ratios, this mode's runs:")
		for _, r := range ratioRows() {
			if v := ratioIn(sums, r, mode); v != "—" {
				fmt.Fprintf(w, "    %6s  %s\n", v, r.name)
			}
		}
	}
}
