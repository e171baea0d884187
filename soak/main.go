// Command soak drives a built miffy for minutes of steady load on loopback,
// with a candidate that flaps (healthy, slow, refusing) and a broker restart
// halfway, then reads the topic back and prints what was lost, if anything.
// Run it through soak/run.sh (`just soak`); it is not part of CI.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// settings of one soak run.
type settings struct {
	miffy    string
	dir      string
	duration time.Duration
	rps      int
	flap     time.Duration
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var s settings
	fs.StringVar(&s.miffy, "miffy", "bin/miffy", "the miffy binary")
	fs.StringVar(&s.dir, "dir", "", "work directory: config, logs, broker data (default: a new temporary one)")
	minutes := fs.Float64("minutes", envFloat("SOAK_MINUTES", 10), "how long the load runs (env SOAK_MINUTES)")
	fs.IntVar(&s.rps, "rps", 200, "client requests per second")
	fs.DurationVar(&s.flap, "flap", 20*time.Second, "how long the candidate stays in each state")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.duration = time.Duration(*minutes * float64(time.Minute))
	if s.dir == "" {
		d, err := os.MkdirTemp("", "miffy-soak-")
		if err != nil {
			return err
		}
		s.dir = d
	}
	res, err := soak(ctx, s, stdout)
	if res != nil {
		res.print(stdout, s)
	}
	return err
}

func envFloat(key string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(key), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// results are the figures a soak run reports.
type results struct {
	requests, clientErrors, loadSkipped int64
	firstClientError                    string
	metrics                             map[string]float64 // final scrape, by series
	recordsRead, duplicates             int
	rssStart, rssEnd                    int64 // KiB
	goroutinesStart, goroutinesEnd      float64
	exitErr                             error
}

func soak(ctx context.Context, s settings, stdout io.Writer) (*results, error) {
	e := &soakEnv{s: s, res: &results{}, logf: func(format string, a ...any) {
		fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}}
	defer e.close()
	if err := e.start(ctx); err != nil {
		return nil, err
	}
	e.load(ctx)
	e.logf("load done: %d requests", e.res.requests)
	return e.res, e.finish(ctx)
}

// soakEnv is one soak run: the broker, the upstreams and the miffy process
// under load, and what is measured of them.
type soakEnv struct {
	s    settings
	res  *results
	logf func(format string, a ...any)

	bmu        sync.Mutex
	b          *broker.Broker // replaced by the restart; under bmu
	brokerAddr string
	dataDir    string

	closers           []func() // by close, last first
	cand              *flappingCandidate
	cmd               *exec.Cmd
	exited            chan error
	client            *http.Client
	proxyURL, mgmtURL string
}

// close stops what start started, the last first.
func (e *soakEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// start starts the broker, the reference, the flapping candidate and
// miffy, and waits for miffy to be healthy.
func (e *soakEnv) start(ctx context.Context) error {
	e.dataDir = filepath.Join(e.s.dir, "kafka")
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", DataDir: e.dataDir, Retention: 24 * time.Hour}, zerolog.Nop())
	if err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	e.b, e.brokerAddr = b, b.Addr()
	e.closers = append(e.closers, func() { e.bmu.Lock(); e.b.Close(); e.bmu.Unlock() })
	ref, err := listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	refSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"price":10,"tags":["a","b"]}`, r.URL.Path)
	})}
	go refSrv.Serve(ref)
	e.closers = append(e.closers, func() { refSrv.Close() })
	e.cand = newFlappingCandidate()
	if err := e.cand.start(); err != nil {
		return err
	}
	e.closers = append(e.closers, e.cand.close)
	return e.startMiffy(ctx, ref.Addr().String())
}

// startMiffy writes miffy's config, starts it and waits until it is
// healthy.
func (e *soakEnv) startMiffy(ctx context.Context, refAddr string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	e.proxyURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	e.mgmtURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	cfgPath := filepath.Join(e.s.dir, "miffy.toml")
	cfg := fmt.Sprintf(`port = %d
management_port = %d
logging = "json"
access_log = false
reference = "http://%s"
candidate = "http://%s"
routes = [{ path = "/api/{value}", key = "value" }]
[shadow]
timeout = "3s"
[kafka]
topic = "soak"
"bootstrap.servers" = "%s"
`, ports[0], ports[1], refAddr, e.cand.addr, e.brokerAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(e.s.dir, "miffy.log"))
	if err != nil {
		return err
	}
	e.closers = append(e.closers, func() { logFile.Close() })
	e.cmd = exec.Command(e.s.miffy, "-config", cfgPath)
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("starting miffy: %w", err)
	}
	e.exited = make(chan error, 1)
	go func() { e.exited <- e.cmd.Wait() }()
	e.closers = append(e.closers, func() {
		if e.cmd.ProcessState == nil {
			e.cmd.Process.Kill()
		}
	})
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	if err := waitHTTP(ctx, e.client, e.mgmtURL+"/healthz", 20*time.Second); err != nil {
		return fmt.Errorf("miffy did not come up (log in %s): %w", logFile.Name(), err)
	}
	e.logf("miffy pid %d, proxy %s, management %s, broker %s, work dir %s", e.cmd.Process.Pid, e.proxyURL, e.mgmtURL, e.brokerAddr, e.s.dir)
	return nil
}

// load sends s.rps requests a second for s.duration, at most 256 in
// flight; a tick that finds them all busy is counted as skipped (the
// generator is behind). The candidate flaps throughout; the broker
// restarts halfway.
func (e *soakEnv) load(ctx context.Context) {
	loadCtx, stopLoad := context.WithTimeout(ctx, e.s.duration)
	defer stopLoad()
	var (
		wg       sync.WaitGroup
		seq      atomic.Int64
		errMu    sync.Mutex
		inFlight = make(chan struct{}, 256)
	)
	defer wg.Wait()
	go e.cand.flap(loadCtx, e.s.flap, func(p string) { e.logf("candidate: %s", p) })
	restartAt := time.After(e.s.duration / 2)
	sampleAt := time.After(10 * time.Second)
	tick := time.NewTicker(time.Second / time.Duration(e.s.rps))
	defer tick.Stop()
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-tick.C:
			select {
			case inFlight <- struct{}{}:
				wg.Go(func() {
					defer func() { <-inFlight }()
					e.request(seq.Add(1), &errMu)
				})
			default:
				e.res.loadSkipped++
			}
		case <-sampleAt:
			e.res.rssStart = rssKiB(e.cmd.Process.Pid)
			e.res.goroutinesStart = scrape(ctx, e.client, e.mgmtURL)["go_goroutines"]
			e.logf("start: RSS %d KiB, %v goroutines", e.res.rssStart, e.res.goroutinesStart)
		case <-progress.C:
			m := scrape(ctx, e.client, e.mgmtURL)
			e.logf("%d requests, %d client errors; records accepted %v delivered %v buffered %v; RSS %d KiB",
				atomic.LoadInt64(&e.res.requests), atomic.LoadInt64(&e.res.clientErrors),
				m[`miffy_publish_records_total{result="accepted"}`], m[`miffy_publish_records_total{result="delivered"}`],
				m["miffy_publish_buffered_records"], rssKiB(e.cmd.Process.Pid))
		case <-restartAt:
			go e.restartBroker(ctx, 5*time.Second)
		}
	}
}

// request sends request n and counts it, and the first client error
// (under errMu).
func (e *soakEnv) request(n int64, errMu *sync.Mutex) {
	path := "/api/" + strconv.FormatInt(n, 10)
	want := fmt.Sprintf(`{"path":%q,"price":10,"tags":["a","b"]}`, path)
	resp, err := e.client.Get(e.proxyURL + path)
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil || resp.StatusCode != 200 || string(body) != want {
			msg = fmt.Sprintf("%s: %d %.80q %v", path, resp.StatusCode, body, rerr)
		}
	}
	atomic.AddInt64(&e.res.requests, 1)
	if msg != "" {
		atomic.AddInt64(&e.res.clientErrors, 1)
		errMu.Lock()
		if e.res.firstClientError == "" {
			e.res.firstClientError = msg
		}
		errMu.Unlock()
	}
}

// restartBroker stops the broker for down, then starts it again on the
// same address and data.
func (e *soakEnv) restartBroker(ctx context.Context, down time.Duration) {
	e.logf("broker: stopping for %v", down)
	e.bmu.Lock()
	e.b.Close()
	e.bmu.Unlock()
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return
	}
	nb, err := broker.Start(broker.Config{Addr: e.brokerAddr, DataDir: e.dataDir, Retention: 24 * time.Hour}, zerolog.Nop())
	if err != nil {
		e.logf("broker: restart failed: %v", err)
		return
	}
	e.bmu.Lock()
	e.b = nb
	e.bmu.Unlock()
	e.logf("broker: back on %s", e.brokerAddr)
}

// finish lets the replays finish and the buffer drain, takes the end
// figures, stops miffy with SIGTERM and reads the topic back.
func (e *soakEnv) finish(ctx context.Context) error {
	settled := waitUntil(ctx, 60*time.Second, func() bool {
		m := scrape(ctx, e.client, e.mgmtURL)
		return m["miffy_shadow_in_flight"] == 0 && m["miffy_publish_buffered_records"] == 0
	})
	if !settled {
		e.logf("replays or records still pending after 60s")
	}
	e.client.CloseIdleConnections()
	e.res.rssEnd = rssKiB(e.cmd.Process.Pid)
	e.res.metrics = scrape(ctx, e.client, e.mgmtURL)
	e.res.goroutinesEnd = e.res.metrics["go_goroutines"]

	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case e.res.exitErr = <-e.exited:
	case <-time.After(60 * time.Second):
		e.res.exitErr = errors.New("miffy did not exit within 60s of SIGTERM")
	}

	e.bmu.Lock()
	addr := e.b.Addr()
	e.bmu.Unlock()
	ids, dups, err := readTopic(ctx, addr, "soak")
	if err != nil {
		return fmt.Errorf("reading the topic back: %w", err)
	}
	e.res.recordsRead, e.res.duplicates = len(ids), dups
	return nil
}

func (r *results) print(w io.Writer, s settings) {
	m := r.metrics
	sum := func(prefix string) float64 {
		var t float64
		for k, v := range m {
			if strings.HasPrefix(k, prefix) {
				t += v
			}
		}
		return t
	}
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nsoak results (%s, %v, %d req/s target, candidate flapping every %v, broker restarted midway)\n",
		time.Now().Format("2006-01-02"), s.duration, s.rps, s.flap)
	fmt.Fprintf(w, "  machine:                  %s, %s\n", host, machine())
	fmt.Fprintf(w, "  client requests:          %d (load generator skipped %d ticks)\n", r.requests, r.loadSkipped)
	fmt.Fprintf(w, "  client errors by miffy:   %d %s\n", r.clientErrors, r.firstClientError)
	fmt.Fprintf(w, "  mismatches:               %v regression, %v noise\n", sum(`miffy_mismatches_total{class="regression"`), sum(`miffy_mismatches_total{class="noise"`))
	fmt.Fprintf(w, "  candidate errors:         %v\n", sum(`miffy_upstream_errors_total{`))
	fmt.Fprintf(w, "  records accepted:         %v (delivered %v, failed %v)\n", m[`miffy_publish_records_total{result="accepted"}`],
		m[`miffy_publish_records_total{result="delivered"}`], m[`miffy_publish_records_total{result="failed"}`])
	fmt.Fprintf(w, "  records in the topic:     %d distinct ids (%d duplicates)\n", r.recordsRead, r.duplicates)
	fmt.Fprintf(w, "  publish dropped:          %v\n", m[`miffy_publish_records_total{result="dropped"}`])
	fmt.Fprintf(w, "  shadow dropped:           %v\n", sum("miffy_shadow_dropped_total{"))
	fmt.Fprintf(w, "  RSS start → end:          %d → %d KiB\n", r.rssStart, r.rssEnd)
	fmt.Fprintf(w, "  goroutines start → end:   %v → %v\n", r.goroutinesStart, r.goroutinesEnd)
	fmt.Fprintf(w, "  exit after SIGTERM:       %v\n", errString(r.exitErr))
}

func errString(err error) string {
	if err == nil {
		return "0 (clean)"
	}
	return err.Error()
}

func machine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d CPUs visible", model, runtime.NumCPU())
}

// flappingCandidate cycles through healthy, slow and refusing (nothing
// listens on its address). Its answers always differ from the reference's
// ($.tags in another order; $.price too for every tenth value), so every
// replay makes a record: the publisher carries the whole load.
type flappingCandidate struct {
	addr  string
	mu    sync.Mutex
	srv   *http.Server
	slow  atomic.Bool
	delay time.Duration
}

func newFlappingCandidate() *flappingCandidate {
	return &flappingCandidate{delay: 1500 * time.Millisecond}
}

// start listens on the candidate's address, unless it already does.
func (c *flappingCandidate) start() error {
	c.mu.Lock()
	running := c.srv != nil
	c.mu.Unlock()
	if running {
		return nil
	}
	addr := c.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after close
		if ln, err = listen(addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	c.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(c.serve)}
	go srv.Serve(ln)
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	return nil
}

func (c *flappingCandidate) serve(w http.ResponseWriter, r *http.Request) {
	if c.slow.Load() {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return
		}
	}
	price := "10"
	if strings.HasSuffix(r.URL.Path, "0") {
		price = "11"
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"tags":["b","a"],"price":%s,"path":%q}`, price, r.URL.Path)
}

func (c *flappingCandidate) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
}

// flap changes state every period until ctx is done.
func (c *flappingCandidate) flap(ctx context.Context, period time.Duration, phase func(string)) {
	states := []string{"healthy", "slow", "refusing"}
	for i := 0; ; i++ {
		state := states[i%len(states)]
		switch state {
		case "healthy":
			c.slow.Store(false)
			if err := c.start(); err != nil {
				phase("restart failed: " + err.Error())
			}
		case "slow":
			c.slow.Store(true)
		case "refusing":
			c.close()
		}
		phase(state)
		select {
		case <-ctx.Done():
			if state == "refusing" {
				c.start()
			}
			return
		case <-time.After(period):
		}
	}
}

// readTopic reads a topic from the start to its end and returns the
// distinct record ids, and how many records repeated an id.
func readTopic(ctx context.Context, addr, topic string) (map[string]bool, int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	// A marker at the end: reading stops at it.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	marker := &kgo.Record{Topic: topic, Key: []byte("__soak_end__")}
	if err := cl.ProduceSync(pctx, marker).FirstErr(); err != nil {
		return nil, 0, fmt.Errorf("producing the end marker: %w", err)
	}
	ids := map[string]bool{}
	dups := 0
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer rcancel()
	for {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return ids, dups, fmt.Errorf("read %d records before the deadline: %w", len(ids), err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "__soak_end__" {
				done = true
				return
			}
			var v struct {
				ID string `json:"id"`
			}
			json.Unmarshal(r.Value, &v)
			if ids[v.ID] {
				dups++
			}
			ids[v.ID] = true
		})
		if done {
			return ids, dups, nil
		}
	}
}

// scrape returns the management port's metrics by series.
func scrape(ctx context.Context, client *http.Client, mgmtURL string) map[string]float64 {
	m := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, "GET", mgmtURL+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// rssKiB is a process's resident set from /proc/<pid>/status.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func waitHTTP(ctx context.Context, client *http.Client, url string, within time.Duration) error {
	var last error
	ok := waitUntil(ctx, within, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			last = err
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !ok {
		return fmt.Errorf("%s not ready within %v: %v", url, within, last)
	}
	return nil
}

// waitUntil polls cond every 100ms until it holds or within has passed.
func waitUntil(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := listen("127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
