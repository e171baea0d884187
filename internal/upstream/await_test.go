package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWrittenApart runs the exchange tests again with every request
// written as a large one is: through the net.Conn, its body after its
// head, and its answer read as usual rather than waited for in the write
// (sendAwait). Whichever way a request goes, the answers, the retries, the
// timeouts and the cancellations must be the same.
//
// Its subtests' clients are made by newClient, which gives a test under
// TestWrittenApart hooks with inlineMax 0.
func TestWrittenApart(t *testing.T) {
	t.Parallel()
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
		{"RequestWriting", TestRequestWriting},
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

// TestIdleHoldsNoBuffer: answers slow and quick come back on one
// connection, which, idle, keeps no read buffer (plain TCP waits for its
// answers without one).
func TestIdleHoldsNoBuffer(t *testing.T) {
	t.Parallel()
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
	for i, d := range []time.Duration{0, 20 * time.Millisecond, 0, 20 * time.Millisecond, 0} {
		delay <- d
		path := "/r" + strconv.Itoa(i)
		got, err := fetch(t.Context(), c, get(srv.addr, path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if diff := cmp.Diff(result{200, path}, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", path, diff)
		}
		p.mu.Lock()
		if len(p.idle) != 1 {
			t.Fatalf("after %s: %d idle connections, want 1", path, len(p.idle))
		}
		if p.idle[0].br != nil {
			t.Errorf("after %s: the idle connection holds a read buffer", path)
		}
		p.mu.Unlock()
	}
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

// TestSocketTakesPart: a request larger than the socket takes at once,
// sent whole by sendAwait (inlineMax raised), is finished through the
// net.Conn once the upstream reads, and its answer read as usual.
func TestSocketTakesPart(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	start := make(chan struct{})
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			<-start // the client has written what the socket takes
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			ok := strconv.FormatBool(bytes.Equal(b, body))
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(ok))+"\r\n\r\n"+ok)
		}
	})
	c := newClient(t, Config{hooks: &testHooks{inlineMax: 64 << 20}})
	for i := range 2 {
		done := make(chan struct{})
		var (
			got result
			err error
		)
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got, err = fetch(ctx, c, &Request{Method: http.MethodPut, Scheme: "http", Addr: srv.addr, Target: "/big", Body: body})
		}()
		select {
		case <-done:
			t.Fatalf("request %d: answered before the upstream read the body: %v %v", i, got, err)
		case start <- struct{}{}:
		}
		<-done
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if diff := cmp.Diff(result{200, "true"}, got); diff != "" {
			t.Errorf("request %d (-want +got):\n%s", i, diff)
		}
	}
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

// TestWaitHoldsNoWriteBuffer: requests waiting for their answers hold no
// write buffer; each went back to the pool once its request was out.
func TestWaitHoldsNoWriteBuffer(t *testing.T) {
	t.Parallel()
	const n = 20
	got := make(chan struct{}, n)
	answer := make(chan struct{})
	srv := newRawServer(t, func(_ int, nc net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			got <- struct{}{}
			<-answer
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(r.URL.Path))+"\r\n\r\n"+r.URL.Path)
		}
	})
	var lent atomic.Int64
	hooks := &testHooks{inlineMax: defaultInlineMax, writeBuf: func(delta int) { lent.Add(int64(delta)) }}
	c := newClient(t, Config{MaxIdlePerHost: n, hooks: hooks})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			path := "/w" + strconv.Itoa(i)
			res, err := fetch(t.Context(), c, get(srv.addr, path))
			if err == nil && res != (result{200, path}) {
				err = fmt.Errorf("%s: got %v", path, res)
			}
			errs <- err
		}()
	}
	for range n {
		<-got
	}
	// The upstream has every request; the buffers go back as each write
	// returns, before its wait.
	deadline := time.Now().Add(5 * time.Second)
	for lent.Load() != 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if l := lent.Load(); l != 0 {
		t.Errorf("%d write buffers still lent while %d requests wait for their answers, want 0", l, n)
	}
	close(answer)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
