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
	lat := make([]int64, n) // µs; -1 for a failed request
	var (
		wg                    sync.WaitGroup
		bytes                 atomic.Int64
		connect, read, status atomic.Int64
		timeouts, inFlight    atomic.Int64
		interval              = time.Duration(float64(time.Second) / *rate)
		start                 = time.Now()
	)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				n = i
			}
		}
		if ctx.Err() != nil {
			break
		}
		if inFlight.Add(1) > int64(*maxConns) {
			inFlight.Add(-1)
			timeouts.Add(1)
			lat[i] = -1
			continue
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			defer inFlight.Add(-1)
			resp, err := client.Get(fmt.Sprintf("%s/api/%d", base, i%*paths))
			if err != nil {
				lat[i] = -1
				if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
					timeouts.Add(1)
				} else {
					connect.Add(1)
				}
				return
			}
			b, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			bytes.Add(b)
			lat[i] = time.Since(due).Microseconds()
			switch {
			case err != nil:
				read.Add(1)
				lat[i] = -1
			case resp.StatusCode >= 400:
				status.Add(1)
			}
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)

	ok := make([]int64, 0, n)
	for _, v := range lat[:n] {
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
	var sum, sq float64
	for _, v := range ok {
		sum += float64(v)
	}
	mean := 0.0
	if len(ok) > 0 {
		mean = sum / float64(len(ok))
	}
	for _, v := range ok {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	stdev := 0.0
	if len(ok) > 1 {
		stdev = math.Sqrt(sq / float64(len(ok)-1))
	}
	minV, maxV := int64(0), int64(0)
	if len(ok) > 0 {
		minV, maxV = ok[0], ok[len(ok)-1]
	}
	fmt.Fprintf(stdout, "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"+
		"\"errors\":{\"connect\":%d,\"read\":%d,\"write\":0,\"status\":%d,\"timeout\":%d},"+
		"\"latency_us\":{\"min\":%d,\"mean\":%.1f,\"stdev\":%.1f,\"max\":%d,"+
		"\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d}}\n",
		len(ok), elapsed.Microseconds(), bytes.Load(),
		connect.Load(), read.Load(), status.Load(), timeouts.Load(),
		minV, mean, stdev, maxV, pctl(50), pctl(90), pctl(99), pctl(99.9))
	return nil
}
