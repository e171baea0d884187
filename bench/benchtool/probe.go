package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// runFreePorts prints n loopback ports that were free a moment ago, one a
// line (for nginx, whose config needs fixed ports).
func runFreePorts(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: freeports N", errUsage)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 100 {
		return fmt.Errorf("%w: N must be a number from 1 to 100", errUsage)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		fmt.Fprintln(stdout, ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// runWait polls a URL until it answers 200.
func runWait(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: wait URL", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var last error
	for {
		code, err := get(ctx, fs.Arg(0), io.Discard)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", code)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", fs.Arg(0), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runScrape prints one JSON object: miffy's counters (summed over routes,
// and per result/reason/class label as "name/value") and the request count
// of each upstream named with -upstream name=URL.
func runScrape(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scrape", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metricsURL := fs.String("metrics", "", "miffy's /metrics URL")
	var ups []string
	fs.Func("upstream", "name=URL of a benchtool upstream's /_stats (repeatable)", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want name=URL")
		}
		ups = append(ups, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := map[string]float64{}
	if *metricsURL != "" {
		m, err := scrapeMetrics(ctx, *metricsURL)
		if err != nil {
			return err
		}
		out = m
	}
	for _, u := range ups {
		name, url, _ := strings.Cut(u, "=")
		var b strings.Builder
		if _, err := get(ctx, url, &b); err != nil {
			return fmt.Errorf("reading %s: %w", url, err)
		}
		var st struct{ Requests, Connections float64 }
		if err := json.Unmarshal([]byte(b.String()), &st); err != nil {
			return fmt.Errorf("reading %s: %w", url, err)
		}
		out["upstream/"+name] = st.Requests
		out["upstream/"+name+"/connections"] = st.Connections
	}
	return json.NewEncoder(stdout).Encode(out)
}

// runSettle waits until miffy has no replay in flight and no record
// buffered, so that a run's counters are read once its work is done.
func runSettle(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("settle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 15*time.Second, "give up after this long (not an error)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: settle METRICS_URL", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		m, err := scrapeMetrics(ctx, fs.Arg(0))
		if err == nil && m["miffy_shadow_in_flight"] == 0 && m["miffy_publish_buffered_records"] == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "benchtool: %s did not settle in %s (in flight %v, buffered %v)\n",
				fs.Arg(0), *timeout, m["miffy_shadow_in_flight"], m["miffy_publish_buffered_records"])
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runFetch saves what a URL answers (a pprof profile) to a file.
func runFetch(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: fetch URL FILE", errUsage)
	}
	f, err := os.Create(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	code, err := get(ctx, args[0], f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	if err != nil {
		return fmt.Errorf("fetching %s: %w", args[0], err)
	}
	return nil
}

// labelsKept are the labels whose values split a counter in scrape output.
var labelsKept = map[string]bool{"result": true, "reason": true, "class": true}

// scrapeMetrics reads a Prometheus text exposition and sums each metric over
// its series; series with a kept label are also summed as "name/value".
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	var b strings.Builder
	code, err := get(ctx, url, &b)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, val, ok := cutLast(line, ' ')
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(series, "{")
		out[name] += v
		for _, kv := range splitLabels(strings.TrimSuffix(labels, "}")) {
			if k, lv, ok := strings.Cut(kv, "="); ok && labelsKept[k] {
				out[name+"/"+strings.Trim(lv, `"`)] += v
			}
		}
	}
	return out, sc.Err()
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func get(ctx context.Context, url string, w io.Writer) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return resp.StatusCode, err
}
