package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runLoad sends GET requests at a fixed rate, whatever the server's pace
// (an open loop, as independent users do), cycling over /api/0 ..
// /api/(paths-1), and prints the results as wrk-report.lua does (a
// "WRKJSON " line). Each latency is counted from the moment the request was
// due, not from when it could be sent, so a server that holds up its
// clients shows it (no coordinated omission). At most max-conns requests
// are in flight; one due while all are taken counts as a timeout error.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Float64("rate", 2000, "requests per second")
	dur := fs.Duration("d", 10*time.Second, "how long")
	maxConns := fs.Int("max-conns", 1024, "most requests in flight (and connections)")
	paths := fs.Int("paths", 100, "requests cycle over /api/0 .. /api/(paths-1)")
	timeout := fs.Duration("timeout", 10*time.Second, "a request slower than this is a timeout error")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 || *rate <= 0 || *maxConns < 1 || *paths < 1 {
		return fmt.Errorf("%w: load [-rate R] [-d D] [-max-conns N] [-paths N] URL", errUsage)
	}
	base := strings.TrimSuffix(fs.Arg(0), "/")
	tr := &http.Transport{MaxIdleConnsPerHost: *maxConns, MaxConnsPerHost: *maxConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: *timeout}

	n := int(math.Ceil(*rate * dur.Seconds()))
	st := &loadStats{lat: make([]int64, n)}
	url := func(i int) string { return fmt.Sprintf("%s/api/%d", base, i%*paths) }
	start := time.Now()
	n = st.run(ctx, client, url, n, *rate, *maxConns, start)
	st.writeWRK(stdout, st.lat[:n], time.Since(start))
	return nil
}

// loadStats are what runLoad counts: each request's latency (µs; -1 for a
// failed request), the bytes received and the errors by kind.
type loadStats struct {
	lat                   []int64
	bytes                 atomic.Int64
	connect, read, status atomic.Int64
	timeouts, inFlight    atomic.Int64
}

// run sends the n requests at rate from start, at most maxConns at once,
// and returns how many were due before ctx ended.
func (st *loadStats) run(ctx context.Context, client *http.Client, url func(int) string, n int, rate float64, maxConns int, start time.Time) int {
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return i
		}
		if st.inFlight.Add(1) > int64(maxConns) {
			st.inFlight.Add(-1)
			st.timeouts.Add(1)
			st.lat[i] = -1
			continue
		}
		wg.Go(func() {
			defer st.inFlight.Add(-1)
			st.send(client, url(i), i, due)
		})
	}
	return n
}

// send makes request i, due at due, and counts its outcome.
func (st *loadStats) send(client *http.Client, url string, i int, due time.Time) {
	resp, err := client.Get(url)
	if err != nil {
		st.lat[i] = -1
		if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
			st.timeouts.Add(1)
		} else {
			st.connect.Add(1)
		}
		return
	}
	b, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st.bytes.Add(b)
	st.lat[i] = time.Since(due).Microseconds()
	switch {
	case err != nil:
		st.read.Add(1)
		st.lat[i] = -1
	case resp.StatusCode >= 400:
		st.status.Add(1)
	}
}

// writeWRK prints the results as wrk-report.lua does: a "WRKJSON " line.
func (st *loadStats) writeWRK(stdout io.Writer, lat []int64, elapsed time.Duration) {
	ok := make([]int64, 0, len(lat))
	for _, v := range lat {
		if v >= 0 {
			ok = append(ok, v)
		}
	}
	slices.Sort(ok)
	pctl := func(p float64) int64 {
		if len(ok) == 0 {
			return 0
		}
		return ok[min(len(ok)-1, int(math.Ceil(p/100*float64(len(ok))))-1)]
	}
	mean, stdev := meanStdev(ok)
	minV, maxV := int64(0), int64(0)
	if len(ok) > 0 {
		minV, maxV = ok[0], ok[len(ok)-1]
	}
	fmt.Fprintf(stdout, "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"+
		"\"errors\":{\"connect\":%d,\"read\":%d,\"write\":0,\"status\":%d,\"timeout\":%d},"+
		"\"latency_us\":{\"min\":%d,\"mean\":%.1f,\"stdev\":%.1f,\"max\":%d,"+
		"\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d}}\n",
		len(ok), elapsed.Microseconds(), st.bytes.Load(),
		st.connect.Load(), st.read.Load(), st.status.Load(), st.timeouts.Load(),
		minV, mean, stdev, maxV, pctl(50), pctl(90), pctl(99), pctl(99.9))
}

// meanStdev is the mean and the sample standard deviation of vs.
func meanStdev(vs []int64) (mean, stdev float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	var sum, sq float64
	for _, v := range vs {
		sum += float64(v)
	}
	mean = sum / float64(len(vs))
	for _, v := range vs {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	if len(vs) > 1 {
		stdev = math.Sqrt(sq / float64(len(vs)-1))
	}
	return mean, stdev
}
