package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freePorts returns n distinct TCP ports nothing listens on (for now): each
// is held until all are found, so two cannot be the same.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startBroker starts an embedded broker on a free loopback port.
func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// brokerAddr is the address of a broker that is up, for the tests whose
// subject is not Kafka: at shutdown miffy delivers its last tallies at once,
// where with no broker it would wait shutdown_timeout for them.
func brokerAddr(t *testing.T) string {
	t.Helper()
	return startBroker(t).Addr()
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance is a miffy started through the real run().
type instance struct {
	proxy, mgmt string // base URLs
	stdout      *syncBuffer
	stderr      *syncBuffer
	cancel      context.CancelFunc
	done        chan error

	stopOnce sync.Once
	err      error
}

// stop cancels run's context (as SIGTERM does) and returns run's error.
// It may be called more than once.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.stopOnce.Do(func() {
		in.cancel()
		select {
		case in.err = <-in.done:
		case <-time.After(60 * time.Second):
			in.err = fmt.Errorf("run did not return within 60s after its context was canceled")
		}
	})
	return in.err
}

// startMiffy writes the config (a format string given %[1]d = proxy port,
// %[2]d = management port) to a file, runs miffy on it and waits until
// /healthz answers. Ports taken meanwhile by another process (freePort
// closes its listener before miffy binds) are tried again with others.
func startMiffy(t *testing.T, config string, environ ...string) *instance {
	t.Helper()
	return startMiffyCtx(t, context.Background(), config, environ...)
}

// startMiffyCtx is startMiffy with run's context derived from parent.
func startMiffyCtx(t *testing.T, parent context.Context, config string, environ ...string) *instance {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 2)
		pp, mp := ports[0], ports[1]
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(config, pp, mp)), 0o600); err != nil {
			t.Fatal(err)
		}
		in, err := launchMiffy(t, parent, path, pp, mp, environ...)
		if err == nil {
			return in
		}
		if attempt < 3 && errors.Is(err, syscall.EADDRINUSE) {
			t.Logf("attempt %d: %v; trying other ports", attempt, err)
			continue
		}
		t.Fatal(err)
	}
}

// startMiffyFile runs miffy on a config file whose ports are pp and mp.
func startMiffyFile(t *testing.T, path string, pp, mp int, environ ...string) *instance {
	t.Helper()
	in, err := launchMiffy(t, context.Background(), path, pp, mp, environ...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// launchMiffy runs miffy until /healthz answers, and stops it when the test
// ends. It returns an error when run returns before that (wrapping run's
// error) or /healthz does not answer in time; miffy is then stopped.
func launchMiffy(t *testing.T, parent context.Context, path string, pp, mp int, environ ...string) (*instance, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(parent)
	in := &instance{
		proxy:  "http://127.0.0.1:" + strconv.Itoa(pp),
		mgmt:   "http://127.0.0.1:" + strconv.Itoa(mp),
		stdout: &syncBuffer{}, stderr: &syncBuffer{},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { in.done <- run(ctx, []string{"-config", path}, environ, in.stdout, in.stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-in.done:
			cancel()
			return nil, fmt.Errorf("run returned before it was ready: %w\n%s", err, in.stderr)
		default:
		}
		resp, err := http.Get(in.mgmt + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(func() {
					if err := in.stop(t); err != nil {
						t.Errorf("run: %v", err)
					}
				})
				return in, nil
			}
		}
		if time.Now().After(deadline) {
			err := in.stop(t)
			return nil, fmt.Errorf("miffy not healthy in time (run: %v)\n%s", err, in.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get does a GET and returns status and body.
func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// consume reads n records from the start of a topic, failing after a while.
func consume(t *testing.T, brokerAddr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(recs), n)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// countRecords reads a topic to its current end and returns how many records it holds.
func countRecords(t *testing.T, brokerAddr, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Produce nothing; ask for the end offset by consuming with a marker.
	marker := &kgo.Record{Topic: topic, Key: []byte("__marker__")}
	if err := cl.ProduceSync(ctx, marker).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return int(marker.Offset) // records before the marker
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
