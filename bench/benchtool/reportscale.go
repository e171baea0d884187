package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/tally"
)

// runReportScale measures how fast `miffy report` and `miffy report
// --serve` read a topic of n mismatch records (and the tallies that go with
// them), and their peak memory, each in its own process; it prints a
// Markdown section for bench/RESULTS.md.
func runReportScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reportscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	miffy := fs.String("miffy", "bench/out/miffy", "miffy binary")
	brokers := fs.String("brokers", "", "broker host:port (benchtool broker)")
	n := fs.Int("n", 1_000_000, "mismatch records to write and read")
	routes := fs.Int("routes", 20, "routes the records are spread over")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *brokers == "" {
		return fmt.Errorf("%w: -brokers is required", errUsage)
	}
	topic := fmt.Sprintf("scale-%d", time.Now().UnixNano())
	tallyTopic := topic + "-tallies"
	size, tallies, err := produceScale(ctx, *brokers, topic, tallyTopic, *n, *routes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "benchtool: wrote %d records (%d bytes on average) and %d tallies\n", *n, size, tallies)
	total := int64(*n) + int64(tallies)
	env := append(os.Environ(), "MIFFY_CONFIG=/dev/null")
	read := []string{"report", "-brokers", *brokers, "-topic", topic, "-tally-topic", tallyTopic}
	cli, err := measureCLI(ctx, *miffy, read, env, *n)
	if err != nil {
		return err
	}
	srv, err := measureServe(ctx, *miffy, read, env, total, *n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `## miffy report at scale

Written by `+"`bench/report-scale.sh`"+` on %s (%d CPUs): %d mismatch records (JSON, %d bytes on
average, %d routes, three differing paths each) and %d tallies on one partition of the embedded
broker (its own process), read by `+"`miffy report`"+` (to the end, then print) and by
`+"`miffy report --serve`"+` (until its API counts every value), each in its own process; peak RSS from the
kernel's rusage.

| reader | values | time | values/s | peak RSS |
|---|--:|--:|--:|--:|
| `+"`miffy report`"+` | %d | %.1f s | %.0f | %.0f MiB |
| `+"`miffy report --serve`"+` | %d | %.1f s | %.0f | %.0f MiB |

The example fetch by offset answered: %v. Memory does not grow with the topic: aggregates are
fixed-size (histograms, at most 1000 paths and routes in the CLI, 100 routes of time slots in
the server), examples are fetched from the topic when opened.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), *n, size, *routes, tallies,
		total, cli.took.Seconds(), float64(total)/cli.took.Seconds(), float64(cli.rssKiB)/1024,
		total, srv.took.Seconds(), float64(total)/srv.took.Seconds(), float64(srv.rssKiB)/1024, srv.fetchOK)
	return nil
}

// scaleRun is how long one reader took and its peak RSS.
type scaleRun struct {
	took    time.Duration
	rssKiB  int64
	fetchOK bool // --serve: an example fetched by offset
}

// measureCLI runs miffy with args (a report that reads to the end, prints
// and exits) and checks that it read n records.
func measureCLI(ctx context.Context, miffy string, args, env []string, n int) (scaleRun, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, miffy, args...)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	if err := cmd.Run(); err != nil {
		return scaleRun{}, fmt.Errorf("miffy report: %w\n%s", err, out.String())
	}
	r := scaleRun{took: time.Since(start), rssKiB: cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss}
	if !strings.Contains(out.String(), fmt.Sprintf("%d records", n)) {
		return scaleRun{}, fmt.Errorf("miffy report did not read %d records:\n%s", n, out.String())
	}
	return r, nil
}

// measureServe runs miffy with args and --serve until its /api/routes
// counts total values, then fetches record n/2 by offset, as the page does
// when it is opened.
func measureServe(ctx context.Context, miffy string, args, env []string, total int64, n int) (scaleRun, error) {
	start := time.Now()
	srv := exec.CommandContext(ctx, miffy, append(args, "--serve=127.0.0.1:0")...)
	srv.Env = env
	pipe, err := srv.StdoutPipe()
	if err != nil {
		return scaleRun{}, err
	}
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return scaleRun{}, err
	}
	stop := func() { srv.Process.Kill(); srv.Wait() }
	base, err := servedURL(pipe)
	if err != nil {
		stop()
		return scaleRun{}, err
	}
	var r scaleRun
	for deadline := time.Now().Add(10 * time.Minute); ; {
		var ov struct{ Records, Tallies int64 }
		resp, err := http.Get(base + "api/routes")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&ov)
			resp.Body.Close()
		}
		if ov.Records+ov.Tallies >= total {
			r.took = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			stop()
			return scaleRun{}, fmt.Errorf("report server read %d of %d values in 10 minutes", ov.Records+ov.Tallies, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(base + "api/records/0/" + fmt.Sprint(n/2))
	r.fetchOK = err == nil && resp.StatusCode == 200
	if resp != nil {
		resp.Body.Close()
	}
	srv.Process.Signal(os.Interrupt)
	srv.Wait()
	r.rssKiB = srv.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	return r, nil
}

// servedURL reads the report server's first line for its URL.
func servedURL(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "serving the report page on "); ok {
			u, _, _ := strings.Cut(rest, " ")
			if _, err := url.Parse(u); err == nil {
				go io.Copy(io.Discard, r)
				return u, nil
			}
		}
	}
	return "", fmt.Errorf("the report server printed no URL")
}

// produceScale writes n mismatch records over routes, and one tally per
// route for every 10 000 records, as a fleet would; it returns the
// records' average size and the number of tallies.
func produceScale(ctx context.Context, brokers, topic, tallyTopic string, n, routes int) (int, int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	enc, err := publish.NewEncoder(publish.EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		return 0, 0, err
	}
	var mu sync.Mutex
	var firstErr error
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
	}
	h := map[string][]string{"Content-Type": {"application/json"}}
	base := time.Now().Add(-time.Hour)
	var bytes int64
	clock := base // the records' time, so that the tallies cover them
	col := tally.NewCollector(tally.CollectorConfig{Instance: "bench", Now: func() time.Time { return clock }})
	tallies := 0
	for i := range n {
		route := fmt.Sprintf("/api/r%d/{id}", i%routes)
		r := &publish.Record{
			ID: fmt.Sprintf("bench-%d", i), Time: base.Add(time.Duration(i) * time.Millisecond), Key: route, Route: route, Endpoint: route,
			Request:   publish.Request{Method: "GET", URI: fmt.Sprintf("/api/r%d/%d", i%routes, i), Pattern: route, Header: map[string][]string{"Accept": {"*/*"}}},
			Reference: publish.Side{URL: "http://ref/x", Status: 200, Header: h, Body: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","price":10,"tags":["a","b"]}`, i, i)), Duration: 3 * time.Millisecond},
			Candidate: publish.Side{URL: "http://cand/x", Status: 200, Header: h, Body: []byte(fmt.Sprintf(`{"id":%d,"name":"Item %d","price":12,"tags":["a"]}`, i, i)), Duration: 4 * time.Millisecond},
			Diffs: []compare.Diff{
				{Path: "$.name", Kind: compare.Changed, Reference: "item", Candidate: "Item", Class: compare.Regression},
				{Path: "$.price", Kind: compare.Changed, Reference: 10, Candidate: 12, Class: compare.Regression},
				{Path: "$.tags[1]", Kind: compare.Removed, Reference: "b", Class: compare.Noise},
			},
		}
		clock = r.Time
		b, err := enc.Encode(nil, r)
		if err != nil {
			return 0, 0, err
		}
		bytes += int64(len(b))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(route), Value: b}, done)
		col.Compared(r)
		if (i+1)%10_000 == 0 || i == n-1 {
			for _, t := range col.Flush() {
				v, _ := json.Marshal(t)
				cl.Produce(ctx, &kgo.Record{Topic: tallyTopic, Key: []byte(t.Route), Value: v}, done)
				tallies++
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if firstErr != nil {
		return 0, 0, fmt.Errorf("producing: %w", firstErr)
	}
	return int(bytes / int64(max(n, 1))), tallies, nil
}
