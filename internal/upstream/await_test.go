package upstream

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAwaiting runs the exchange tests again with every connection waiting
// for its answer as it does for a slow upstream: without a read buffer,
// through awaitReadable. Whatever the wait, the answers, the retries, the
// timeouts and the cancellations must be the same.
func TestAwaiting(t *testing.T) {
	awaitAll = true
	t.Cleanup(func() { awaitAll = false })
	for _, tt := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"KeepAlive", TestKeepAlive},
		{"NotReused", TestNotReused},
		{"AnswerCloses", TestAnswerCloses},
		{"ServerClosedIdle", TestServerClosedIdle},
		{"Retry", TestRetry},
		{"NewConnectionNotRetried", TestNewConnectionNotRetried},
		{"LongerBodyThanContentLength", TestLongerBodyThanContentLength},
		{"HeaderTimeout", TestHeaderTimeout},
		{"HeaderTimeoutNotOnBody", TestHeaderTimeoutNotOnBody},
		{"HeaderTimeoutBufferedBody", TestHeaderTimeoutBufferedBody},
		{"Context", TestContext},
		{"ContextBody", TestContextBody},
		{"CancelRace", TestCancelRace},
		{"DeadlineNotKept", TestDeadlineNotKept},
		{"Trailers", TestTrailers},
		{"Interim", TestInterim},
		{"TooManyInterim", TestTooManyInterim},
		{"Upgrade", TestUpgrade},
		{"TLS", TestTLS},
		{"MaxIdlePerHost", TestMaxIdlePerHost},
		{"Concurrent", TestConcurrent},
	} {
		t.Run(tt.name, tt.f)
	}
}

// TestSlowUpstreamHoldsNoBuffer: once an upstream is slow to answer, its
// connections wait for the answer without a read buffer, and an idle
// connection keeps none; a quick answer turns the wait off again.
func TestSlowUpstreamHoldsNoBuffer(t *testing.T) {
	delay := make(chan time.Duration, 10)
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			time.Sleep(<-delay)
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(r.URL.Path))+"\r\n\r\n"+r.URL.Path)
		}
	})
	c := newClient(t, Config{})
	p := c.pool("http", srv.addr)
	n := 0
	// request sends one request answered d late and checks the answer and
	// the idle connection; it reports whether the pool now says slow.
	request := func(d time.Duration) bool {
		t.Helper()
		delay <- d
		path := "/r" + strconv.Itoa(n)
		n++
		got, err := fetch(t.Context(), c, get(srv.addr, path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if diff := cmp.Diff(result{200, path}, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", path, diff)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.idle) != 1 {
			t.Fatalf("after %s: %d idle connections, want 1", path, len(p.idle))
		}
		if p.idle[0].br != nil {
			t.Errorf("after %s: the idle connection holds a read buffer", path)
		}
		return p.slow.Load()
	}
	// A quick answer may still take over slowAnswer on a busy machine:
	// one of a few must come in time.
	quick := func(when string) {
		t.Helper()
		for range 20 {
			if !request(0) {
				return
			}
		}
		t.Errorf("%s: slow after 20 quick answers, want not", when)
	}
	quick("at first")
	for range 2 {
		if !request(20 * time.Millisecond) {
			t.Errorf("after an answer 20ms late: slow = false, want true")
		}
	}
	quick("after slow answers")
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}
