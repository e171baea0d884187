package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/miffy-proxy/miffy/internal/broker"
)

// differingUpstreams: a reference answering at once and a candidate that
// always differs, after delay; both bodies carry pad bytes of padding.
func differingUpstreams(t *testing.T, delay time.Duration, pad int) (ref, cand string) {
	t.Helper()
	padding := strings.Repeat("x", pad)
	r := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"v":1,"pad":%q}`, req.URL.Path, padding)
	}))
	c := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"v":2,"pad":%q}`, req.URL.Path, padding)
	}))
	t.Cleanup(r.Close)
	t.Cleanup(c.Close)
	return r.URL, c.URL
}

// deliveryConfig is a startMiffy config with one route /load/{n}, the
// shutdown timeout and the given [kafka] lines.
func deliveryConfig(ref, cand, shutdown, kafka string) string {
	return `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "` + shutdown + `"
reference = "` + ref + `"
candidate = "` + cand + `"
routes = [{ path = "/load/{n}" }]
[kafka]
topic = "diffs"
require_broker = false
` + kafka
}

// readTopic reads a topic from its start to its current end.
func readTopic(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1 // the embedded broker makes one partition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatalf("listing the end offset of %s: %v", topic, err)
	}
	end := p.Offset

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s before the deadline", len(recs), end, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// recordIDs returns the ids of the records and the ids seen more than once.
func recordIDs(t *testing.T, recs []*kgo.Record) (ids map[string]bool, dups []string) {
	t.Helper()
	ids = make(map[string]bool, len(recs))
	for _, r := range recs {
		// The id is the second field the encoder writes.
		v := string(r.Value)
		i := strings.Index(v, `"id":"`)
		if i < 0 {
			t.Fatalf("record without id: %.200s", v)
		}
		id := v[i+6 : i+6+strings.IndexByte(v[i+6:], '"')]
		if ids[id] {
			dups = append(dups, id)
		}
		ids[id] = true
	}
	return ids, dups
}

// publishMetric returns miffy_publish_records_total{result=...}.
func publishMetric(t *testing.T, in *instance, result string) int {
	t.Helper()
	_, text := get(t, in.mgmt+"/metrics")
	prefix := `miffy_publish_records_total{result="` + result + `"} `
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return int(f)
		}
	}
	return 0
}

// TestShutdownDeliversAcceptedRecords: canceling run's context (what
// SIGTERM does) while clients send requests and replays are in flight
// loses nothing: every request the reference answered yields exactly one
// record in the topic.
func TestShutdownDeliversAcceptedRecords(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := differingUpstreams(t, 30*time.Millisecond, 0)
	in := startMiffy(t, deliveryConfig(ref, cand, "20s", `"bootstrap.servers" = "`+b.Addr()+`"`))

	var (
		answered  atomic.Int64
		stopping  atomic.Bool // set just before the context is canceled
		wg        sync.WaitGroup
		mu        sync.Mutex
		clientErr []string
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				resp, err := client.Get(fmt.Sprintf("%s/load/%d-%d", in.proxy, g, i))
				if err != nil {
					if !stopping.Load() {
						mu.Lock()
						clientErr = append(clientErr, err.Error())
						mu.Unlock()
					}
					return // after the signal: the listener is closed
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					mu.Lock()
					clientErr = append(clientErr, fmt.Sprintf("status %d", resp.StatusCode))
					mu.Unlock()
					return
				}
				answered.Add(1)
			}
		}()
	}
	<-time.After(time.Second) // the length of the load; replays are in flight at its end
	_, metrics := get(t, in.mgmt+"/metrics")
	for line := range strings.SplitSeq(metrics, "\n") {
		if strings.HasPrefix(line, "miffy_shadow_in_flight ") {
			t.Logf("at the signal: %s", line)
		}
	}
	stopping.Store(true)
	if err := in.stop(t); err != nil {
		t.Errorf("run returned %v", err)
	}
	wg.Wait()
	for _, e := range clientErr {
		t.Errorf("client saw an error before the signal: %s", e)
	}

	n := int(answered.Load())
	if n < 50 {
		t.Fatalf("only %d requests answered in a second of load", n)
	}
	recs := readTopic(t, b.Addr(), "diffs")
	ids, dups := recordIDs(t, recs)
	t.Logf("%d requests answered, %d records, %d distinct ids", n, len(recs), len(ids))
	if len(dups) > 0 {
		t.Errorf("%d duplicate records, e.g. %s", len(dups), dups[0])
	}
	if len(ids) != n {
		t.Errorf("%d distinct records for %d answered requests (every one differs)\n%s", len(ids), n, in.stderr)
	}
}

// TestBrokerOutageBuffersAndRecovers: while the broker is down requests
// go on unhindered; records up to max_buffered_records wait and arrive once
// it is back, the rest are dropped and counted, nothing is duplicated.
func TestBrokerOutageBuffersAndRecovers(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	bcfg := broker.Config{Addr: addr, DataDir: t.TempDir()}
	b, err := broker.Start(bcfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ref, cand := differingUpstreams(t, 0, 0)
	in := startMiffy(t, deliveryConfig(ref, cand, "20s", `"bootstrap.servers" = "`+addr+`"
max_buffered_records = 20`))

	sent := 0
	send := func(n int) {
		t.Helper()
		for range n {
			start := time.Now()
			if code, body := get(t, fmt.Sprintf("%s/load/%d", in.proxy, sent)); code != 200 {
				t.Fatalf("request %d: %d %s", sent, code, body)
			}
			// The records wait up to 20s for the broker: the client
			// does not wait for them.
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("request %d took %v", sent, took)
			}
			sent++
		}
	}
	waitMetric := func(what string, cond func(delivered, dropped int) bool) (delivered, dropped int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			delivered, dropped = publishMetric(t, in, "delivered"), publishMetric(t, in, "dropped")
			if cond(delivered, dropped) {
				return delivered, dropped
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: delivered %d, dropped %d\n%s", what, delivered, dropped, in.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	send(5)
	waitMetric("before the outage", func(d, _ int) bool { return d == 5 })

	b.Close()
	send(50) // 20 wait for the broker, 30 are dropped
	_, dropped := waitMetric("during the outage", func(_, x int) bool { return x >= 30 })
	if accepted := publishMetric(t, in, "accepted"); accepted != 25 || dropped != 30 {
		t.Errorf("during the outage: accepted %d (want 5+20), dropped %d (want 30)", accepted, dropped)
	}

	b, err = broker.Start(bcfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("restarting the broker: %v", err)
	}
	t.Cleanup(b.Close)
	delivered, dropped := waitMetric("after the outage", func(d, x int) bool { return d+x >= sent })
	if delivered+dropped != sent {
		t.Errorf("delivered %d + dropped %d != %d mismatches", delivered, dropped, sent)
	}

	recs := readTopic(t, addr, "diffs")
	ids, dups := recordIDs(t, recs)
	t.Logf("%d mismatches: %d delivered, %d dropped; topic holds %d records", sent, delivered, dropped, len(recs))
	if len(dups) > 0 {
		t.Errorf("%d duplicate records, e.g. %s", len(dups), dups[0])
	}
	if len(ids) != delivered || delivered != 25 {
		t.Errorf("topic holds %d distinct records, delivered %d, want 25", len(ids), delivered)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run returned %v", err)
	}
}

// TestMemoryBoundedWithBrokerDown: with no broker, [kafka]
// max_buffered_bytes reaches the publisher: of 300 replays with 1 KiB
// bodies the buffer takes what fits in 64 KiB (miffy_publish_buffered_bytes
// stays within it), the rest is dropped and counted, and clients are
// served throughout. The budget's arithmetic (by records, by bytes) is
// proved on the publisher in publish's TestKafkaBufferBound.
func TestMemoryBoundedWithBrokerDown(t *testing.T) {
	t.Parallel()
	ref, cand := differingUpstreams(t, 0, 1024)
	const budget, n = 64 << 10, 300
	// Nothing can be delivered: shutting down waits 200ms, not 20s.
	in := startMiffy(t, deliveryConfig(ref, cand, "200ms", `"bootstrap.servers" = "`+deadAddr(t)+`"
max_buffered_bytes = `+strconv.Itoa(budget)))

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var next atomic.Int64 // request number
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				resp, err := client.Get(fmt.Sprintf("%s/load/%d", in.proxy, i))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("request %d: status %d", i, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	var metrics string
	waitUntil(t, 15*time.Second, "every replay published or dropped", func() bool {
		metrics = scrapeMetrics(t, in)
		return publishMetric(t, in, "accepted")+publishMetric(t, in, "dropped") == n
	})
	accepted, dropped := publishMetric(t, in, "accepted"), publishMetric(t, in, "dropped")
	buffered, _ := metricSample(metrics, "miffy_publish_buffered_bytes")
	t.Logf("%d replays with 1 KiB bodies, broker down, max_buffered_bytes %d: %d buffered (%v bytes), %d dropped", n, budget, accepted, buffered, dropped)
	if buffered <= 0 || buffered > budget {
		t.Errorf("miffy_publish_buffered_bytes = %v, want within (0, %d]", buffered, budget)
	}
	// Each record holds both 1 KiB bodies: at most budget/2 KiB fit.
	if accepted == 0 || accepted > budget/2048 || dropped != n-accepted {
		t.Errorf("accepted %d, dropped %d of %d: want at most %d accepted, the rest dropped", accepted, dropped, n, budget/2048)
	}
}

// TestSampleAndPublishScope: a route's sample is the share of its requests
// replayed (0: none), and publish = "none" compares and counts without
// publishing; the topic holds only the records of the routes that publish.
func TestSampleAndPublishScope(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := differingUpstreams(t, 0, 0) // every replay differs
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+cand+`"
routes = [
  { path = "/never/{n}", sample = 0 },
  { path = "/half/{n}", sample = 0.5 },
  { path = "/quiet/{n}", publish = "none" },
]
[kafka]
topic = "scope"
"bootstrap.servers" = "`+b.Addr()+`"
`)
	const n, half = 20, 400
	for i := range half {
		if code, body := get(t, fmt.Sprintf("%s/half/%d", in.proxy, i)); code != 200 {
			t.Fatalf("/half/%d: %d %s", i, code, body)
		}
	}
	for i := range n {
		for _, route := range []string{"never", "quiet"} {
			if code, body := get(t, fmt.Sprintf("%s/%s/%d", in.proxy, route, i)); code != 200 {
				t.Fatalf("/%s/%d: %d %s", route, i, code, body)
			}
		}
	}
	var metrics string
	count := func(name, route string, labels ...string) float64 {
		return metricTotal(metrics, name, append(labels, `route="`+route+`"`)...)
	}
	sampled := func(route string) float64 { return count("miffy_shadow_skipped_total", route, `reason="sample"`) }
	waitUntil(t, 10*time.Second, "the replays to be compared", func() bool {
		metrics = scrapeMetrics(t, in)
		return count("miffy_replays_total", "/half/{n}")+sampled("/half/{n}") == half &&
			count("miffy_mismatches_total", "/quiet/{n}") == n
	})

	if got := count("miffy_replays_total", "/never/{n}"); got != 0 {
		t.Errorf("sample = 0: %v replays, want none", got)
	}
	if got := sampled("/never/{n}"); got != n {
		t.Errorf("sample = 0: %v skipped for the sample, want %d", got, n)
	}
	// Binomial(400, 0.5): the standard deviation is 10; 140..260 is 6 of it
	// either side.
	h := count("miffy_replays_total", "/half/{n}")
	if h < 140 || h > 260 {
		t.Errorf("sample = 0.5: %v of %d replayed, want about half", h, half)
	}
	if err := in.stop(t); err != nil { // flushes the records
		t.Fatalf("run returned %v", err)
	}

	byRoute := map[string]int{}
	for _, r := range readTopic(t, b.Addr(), "scope") {
		var v struct{ Route string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record is not JSON: %v", err)
		}
		byRoute[v.Route]++
	}
	if want := map[string]int{"/half/{n}": int(h)}; !maps.Equal(want, byRoute) {
		t.Errorf("records by route %v, want %v (only the sampled route publishes)", byRoute, want)
	}
}

// TestShutdownSecondSignal: with the broker down, shutdown says what it
// waits for and for how long; a second signal (the hard-stop context main
// cancels) ends it at once, and run's error counts the records not
// delivered.
func TestShutdownSecondSignal(t *testing.T) {
	checkLeaks(t)
	ref, cand := differingUpstreams(t, 0, 0)
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	in := startMiffyCtx(t, withHardStop(context.Background(), hard), deliveryConfig(ref, cand, "30s", `"bootstrap.servers" = "`+deadAddr(t)+`"`))
	const n = 5
	for i := range n {
		if code, _ := get(t, fmt.Sprintf("%s/load/%d", in.proxy, i)); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	waitUntil(t, 5*time.Second, "the records to be buffered", func() bool {
		v, _ := metricSample(scrapeMetrics(t, in), "miffy_publish_buffered_records")
		return v == n
	})

	in.cancel() // the first signal
	waitUntil(t, 10*time.Second, "the shutdown to wait for the broker", func() bool {
		return strings.Contains(in.stderr.String(), "delivering the buffered records to Kafka")
	})
	for _, want := range []string{"a second interrupt stops at once", fmt.Sprintf("records=%d", n), "for_at_most="} {
		if !strings.Contains(in.stderr.String(), want) {
			t.Errorf("the shutdown log lacks %q:\n%s", want, in.stderr)
		}
	}
	start := time.Now()
	stopHard() // the second signal
	err := in.stop(t)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run returned %v after the second signal, want at once (shutdown_timeout is 30s)", took)
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d records not delivered", n)) {
		t.Errorf("run = %v, want an error counting %d records not delivered", err, n)
	}
	in.err = nil // expected: not for startMiffy's cleanup to report
}
