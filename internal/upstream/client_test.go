package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bound is how long a test waits for something that should happen at
// once before it gives up: generous, so that a loaded machine does not
// fail a test, and finite, so that a broken client does not hang one.
const bound = 10 * time.Second

// connStates counts an httptest server's connections through ConnState.
type connStates struct {
	opened atomic.Int32
	closed atomic.Int32
	change chan struct{} // a token after every close
}

// newServer starts an httptest server (TLS if tlsOn) that counts its
// connections.
func newServer(t *testing.T, tlsOn bool, h http.Handler) (*httptest.Server, *connStates) {
	t.Helper()
	cs := &connStates{change: make(chan struct{}, 1)}
	srv := httptest.NewUnstartedServer(h)
	// Failed handshakes are under test; their log is noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.closed.Add(1)
			select {
			case cs.change <- struct{}{}:
			default:
			}
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, cs
}

// waitClosed waits until the server has seen n connections close.
func (cs *connStates) waitClosed(t *testing.T, n int32) {
	t.Helper()
	timeout := time.After(bound)
	for cs.closed.Load() < n {
		select {
		case <-cs.change:
		case <-timeout:
			t.Fatalf("server saw %d connections close, want %d", cs.closed.Load(), n)
		}
	}
}

// rawServer is a TCP server on the loopback whose connections are served
// by hand, for answers that net/http would not give.
type rawServer struct {
	addr    string
	accepts atomic.Int32
}

// newRawServer serves every accepted connection with serve, which gets
// the connection's number (from 1) and a reader on it. The connection is
// closed when serve returns, and at the end of the test.
func newRawServer(t *testing.T, serve func(n int, nc net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.accepts.Add(1))
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				serve(n, nc, bufio.NewReader(nc))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// newRawTLSServer is newRawServer over TLS.
func newRawTLSServer(t *testing.T, cfg *tls.Config, serve func(n int, nc net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	return newRawServer(t, func(n int, nc net.Conn, _ *bufio.Reader) {
		tc := tls.Server(nc, cfg)
		serve(n, tc, bufio.NewReader(tc))
	})
}

// testCert returns a server TLS configuration with httptest's
// certificate (for 127.0.0.1 and example.com), and roots that trust it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	cfg := srv.TLS.Clone()
	cfg.NextProtos = nil
	return cfg, roots
}

// readRequest reads one request and its body.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, r.Body)
	return r, err
}

// hold keeps a connection open, reading and dropping what comes, until
// the peer closes it or the test ends.
func hold(br *bufio.Reader) { io.Copy(io.Discard, br) }

// newClient returns a client closed when the test ends. Under
// TestWrittenApart every request is written apart (hooks: inlineMax 0).
func newClient(t *testing.T, cfg Config) *Client {
	if strings.HasPrefix(t.Name(), "TestWrittenApart/") && cfg.hooks == nil {
		cfg.hooks = &testHooks{inlineMax: 0}
	}
	c := New(cfg)
	t.Cleanup(c.CloseIdle)
	return c
}

func get(addr, target string) *Request {
	return &Request{Method: http.MethodGet, Scheme: "http", Addr: addr, Target: target}
}

type result struct {
	Status int
	Body   string
}

// fetch sends req and reads the whole body.
func fetch(ctx context.Context, c doer, req *Request) (result, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b)}, err
}

// within runs f and fails the test if it has not returned within d.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
	}
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func pathHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answer to "+r.URL.RequestURI())
	})
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	type step struct {
		req  func(addr string) *Request
		want result
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		rounds  int
		steps   []step
		// wantLength is the Content-Length of each step's answer.
		wantLength []int64
	}{
		{
			name:    "content-length",
			handler: pathHandler().ServeHTTP,
			rounds:  20,
			steps: []step{{
				req:  func(addr string) *Request { return get(addr, "/a?b=c") },
				want: result{200, "answer to /a?b=c"},
			}},
			wantLength: []int64{int64(len("answer to /a?b=c"))},
		},
		{
			name: "chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "one,")
				w.(http.Flusher).Flush()
				io.WriteString(w, "two")
			},
			rounds: 5,
			steps: []step{{
				req:  func(addr string) *Request { return get(addr, "/") },
				want: result{200, "one,two"},
			}},
			wantLength: []int64{-1},
		},
		{
			name: "no content",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			},
			rounds: 5,
			steps: []step{{
				req:  func(addr string) *Request { return get(addr, "/") },
				want: result{204, ""},
			}},
			wantLength: []int64{0},
		},
		{
			// A HEAD answer has a Content-Length but no body; reading one
			// would eat the next answer.
			name: "HEAD then GET",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				if r.Method != http.MethodHead {
					io.WriteString(w, strings.Repeat("x", 1000))
				}
			},
			rounds: 3,
			steps: []step{
				{
					req: func(addr string) *Request {
						return &Request{Method: http.MethodHead, Scheme: "http", Addr: addr, Target: "/"}
					},
					want: result{200, ""},
				},
				{
					req:  func(addr string) *Request { return get(addr, "/") },
					want: result{200, strings.Repeat("x", 1000)},
				},
			},
			wantLength: []int64{1000, 1000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cs := newServer(t, false, tt.handler)
			c := newClient(t, Config{})
			addr := srv.Listener.Addr().String()
			for round := range tt.rounds {
				for i, s := range tt.steps {
					var (
						resp *http.Response
						b    []byte
						err  error
					)
					// A client that took a HEAD answer's Content-Length
					// for a body would wait for it.
					within(t, bound, func() {
						if resp, err = c.Do(t.Context(), s.req(addr)); err == nil {
							b, err = io.ReadAll(resp.Body)
							resp.Body.Close()
						}
					})
					if err != nil {
						t.Fatalf("round %d, step %d: %v", round, i, err)
					}
					if diff := cmp.Diff(s.want, result{resp.StatusCode, string(b)}); diff != "" {
						t.Fatalf("round %d, step %d: answer (-want +got):\n%s", round, i, diff)
					}
					if resp.ContentLength != tt.wantLength[i] {
						t.Errorf("round %d, step %d: ContentLength = %d, want %d", round, i, resp.ContentLength, tt.wantLength[i])
					}
				}
			}
			if got := cs.opened.Load(); got != 1 {
				t.Errorf("server saw %d connections, want 1", got)
			}
		})
	}
}

func TestNotReused(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", 256<<10)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// use reads (some of) the body before it is closed.
		use func(io.Reader) error
	}{
		{
			name:    "closed before EOF",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) },
			use: func(r io.Reader) error {
				_, err := io.ReadFull(r, make([]byte, 10))
				return err
			},
		},
		{
			name:    "closed unread",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "small") },
			use:     func(io.Reader) error { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cs := newServer(t, false, tt.handler)
			c := newClient(t, Config{})
			addr := srv.Listener.Addr().String()
			resp, err := c.Do(t.Context(), get(addr, "/first"))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.use(resp.Body); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// The client closed the connection, rather than pooling it.
			cs.waitClosed(t, 1)

			resp, err = c.Do(t.Context(), get(addr, "/second"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := cs.opened.Load(); got != 2 {
				t.Errorf("server saw %d connections, want 2", got)
			}
		})
	}
}

// TestAnswerCloses: an answer that says the connection ends is not
// pooled, even when the server leaves the socket open (and would answer
// another request on it).
func TestAnswerCloses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
	}{
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					io.WriteString(nc, tt.answer)
				}
			})
			c := newClient(t, Config{})
			for i := range 2 {
				got, err := fetch(t.Context(), c, get(srv.addr, "/"))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if diff := cmp.Diff(result{200, "ok"}, got); diff != "" {
					t.Fatalf("request %d: answer (-want +got):\n%s", i, diff)
				}
			}
			if got := srv.accepts.Load(); got != 2 {
				t.Errorf("server saw %d connections, want 2", got)
			}
		})
	}
}

// keepAliveOK is an answer that keeps the connection open.
const keepAliveOK = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"

// TestServerClosedIdle: a pooled connection that the server closed is
// seen to be closed before it is used. A GET would get through even if it
// were not (see TestRetry); a POST shows the check itself.
func TestServerClosedIdle(t *testing.T) {
	t.Parallel()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			closed := make(chan struct{}, 1)
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(nc, keepAliveOK)
				if n == 1 {
					// Let go of the connection while the client keeps it.
					nc.Close()
					closed <- struct{}{}
				}
				hold(br)
			})
			c := newClient(t, Config{})
			req := &Request{Method: method, Scheme: "http", Addr: srv.addr, Target: "/"}
			for i := range 2 {
				got, err := fetch(t.Context(), c, req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if diff := cmp.Diff(result{200, "ok"}, got); diff != "" {
					t.Fatalf("request %d: answer (-want +got):\n%s", i, diff)
				}
				if i == 0 {
					select {
					case <-closed:
					case <-time.After(bound):
						t.Fatal("server did not close")
					}
				}
			}
			if got := srv.accepts.Load(); got != 2 {
				t.Errorf("server saw %d connections, want 2", got)
			}
		})
	}
}

// TestRetry covers a pooled connection that the upstream drops only once
// the next request is on it, which no check before sending can see.
func TestRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		// second is what the server does with the second request on the
		// first connection.
		second       func(nc net.Conn)
		wantErr      bool
		wantAccepts  int32
		wantReceived int32 // requests the server read, all connections
	}{
		{
			name:         "GET dropped silently is sent again",
			method:       http.MethodGet,
			second:       func(nc net.Conn) {},
			wantAccepts:  2,
			wantReceived: 3,
		},
		{
			name:         "PUT dropped silently is sent again",
			method:       http.MethodPut,
			second:       func(nc net.Conn) {},
			wantAccepts:  2,
			wantReceived: 3,
		},
		{
			name:         "POST dropped silently is not sent again",
			method:       http.MethodPost,
			second:       func(nc net.Conn) {},
			wantErr:      true,
			wantAccepts:  1,
			wantReceived: 2,
		},
		{
			name:         "GET dropped after part of an answer is not sent again",
			method:       http.MethodGet,
			second:       func(nc net.Conn) { io.WriteString(nc, "HTTP/1.1 200") },
			wantErr:      true,
			wantAccepts:  1,
			wantReceived: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var received atomic.Int32
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				for i := 0; ; i++ {
					if _, err := readRequest(br); err != nil {
						return
					}
					received.Add(1)
					if n == 1 && i == 1 {
						tt.second(nc)
						return
					}
					io.WriteString(nc, keepAliveOK)
				}
			})
			c := newClient(t, Config{})
			req := &Request{Method: tt.method, Scheme: "http", Addr: srv.addr, Target: "/", Body: []byte("body")}
			if _, err := fetch(t.Context(), c, req); err != nil {
				t.Fatal(err)
			}
			got, err := fetch(t.Context(), c, req)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("second request: got %+v, want an error", got)
				}
			} else if err != nil {
				t.Fatalf("second request: %v", err)
			} else if diff := cmp.Diff(result{200, "ok"}, got); diff != "" {
				t.Fatalf("second request: answer (-want +got):\n%s", diff)
			}
			if got := srv.accepts.Load(); got != tt.wantAccepts {
				t.Errorf("server saw %d connections, want %d", got, tt.wantAccepts)
			}
			if got := received.Load(); got != tt.wantReceived {
				t.Errorf("server read %d requests, want %d", got, tt.wantReceived)
			}
		})
	}
}

// TestNewConnectionNotRetried: only a reused connection may have gone
// stale; a new one that fails is the upstream's answer.
func TestNewConnectionNotRetried(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		readRequest(br)
	})
	c := newClient(t, Config{})
	if got, err := fetch(t.Context(), c, get(srv.addr, "/")); err == nil {
		t.Fatalf("got %+v, want an error", got)
	}
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

func TestLongerBodyThanContentLength(t *testing.T) {
	t.Parallel()
	// The stray bytes look like an answer, so that a client that took
	// them for the next one would show it.
	const stray = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"
	serverTLS, roots := testCert(t)
	for _, scheme := range []string{"http", "https"} {
		// Over TLS, where the stray bytes end up (socket, tls.Conn,
		// bufio.Reader) depends on the size of the body before them.
		for _, size := range []int{10, 40000, 64 << 10, 100000} {
			t.Run(fmt.Sprint(scheme, "/", size), func(t *testing.T) {
				serve := func(n int, nc net.Conn, br *bufio.Reader) {
					for i := 0; ; i++ {
						r, err := readRequest(br)
						if err != nil {
							return
						}
						body := r.URL.Path + strings.Repeat(".", size)
						answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
						if n == 1 && i == 0 {
							answer += stray
						}
						io.WriteString(nc, answer)
					}
				}
				var srv *rawServer
				if scheme == "https" {
					srv = newRawTLSServer(t, serverTLS, serve)
				} else {
					srv = newRawServer(t, serve)
				}
				c := newClient(t, Config{TLS: &tls.Config{RootCAs: roots}})
				for _, path := range []string{"/first", "/second", "/third"} {
					req := &Request{Method: http.MethodGet, Scheme: scheme, Addr: srv.addr, Target: path}
					got, err := fetch(t.Context(), c, req)
					if err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					if diff := cmp.Diff(result{200, path + strings.Repeat(".", size)}, got); diff != "" {
						t.Fatalf("%s: answer (-want +got):\n%s", path, diff)
					}
				}
				// The connection with stray bytes is dropped; the next one
				// is kept.
				if got := srv.accepts.Load(); got != 2 {
					t.Errorf("server saw %d connections, want 2", got)
				}
			})
		}
	}
}

func TestHeaderTimeout(t *testing.T) {
	t.Parallel()
	// The answered requests must beat it: room for a loaded machine.
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		// answered is how many requests the server answers, over all
		// connections, before it answers no more.
		answered int32
	}{
		{name: "new connection", answered: 0},
		// A timeout is not a stale connection: the upstream has the
		// request, and sending it again would double both its load and
		// the wait.
		{name: "reused connection", answered: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var received atomic.Int32
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					if received.Add(1) > tt.answered {
						hold(br)
						return
					}
					io.WriteString(nc, keepAliveOK)
				}
			})
			c := newClient(t, Config{})
			req := get(srv.addr, "/")
			req.HeaderTimeout = timeout
			for range tt.answered {
				if _, err := fetch(t.Context(), c, req); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			var elapsed time.Duration
			within(t, bound, func() {
				start := time.Now()
				_, err = c.Do(t.Context(), req)
				elapsed = time.Since(start)
			})
			if !timedOut(err) {
				t.Fatalf("err = %v, want a timeout", err)
			}
			if elapsed < timeout {
				t.Errorf("gave up after %v, before the timeout of %v", elapsed, timeout)
			}
			if got, want := received.Load(), tt.answered+1; got != want {
				t.Errorf("server read %d requests, want %d", got, want)
			}
		})
	}
}

// TestHeaderTimeoutNotOnBody: HeaderTimeout bounds the head only.
func TestHeaderTimeoutNotOnBody(t *testing.T) {
	t.Parallel()
	// The head comes at once; 300ms leaves room for a loaded machine.
	const timeout = 300 * time.Millisecond
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
			// The slowness under test.
			time.Sleep(2 * timeout)
			io.WriteString(nc, "ow")
		}
	})
	c := newClient(t, Config{})
	req := get(srv.addr, "/")
	req.HeaderTimeout = timeout
	// A head that misses the timeout (a loaded machine) fails the exchange
	// rightly and closes the connection: the pair is tried again, a few
	// times. A timeout while the body is read is the failure under test.
	for attempt := 1; ; attempt++ {
		accepts := srv.accepts.Load()
		headLate := false
		for i := range 2 {
			resp, err := c.Do(t.Context(), req)
			if err != nil && attempt < 3 && timedOut(err) {
				t.Logf("attempt %d, request %d: the head came late: %v", attempt, i, err)
				headLate = true
				break
			}
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("request %d: reading the body: %v", i, err)
			}
			if diff := cmp.Diff(result{200, "slow"}, result{resp.StatusCode, string(b)}); diff != "" {
				t.Fatalf("request %d: answer (-want +got):\n%s", i, diff)
			}
		}
		if headLate {
			continue
		}
		if got := srv.accepts.Load() - accepts; got != 1 {
			t.Errorf("server saw %d connections for the two requests, want 1", got)
		}
		return
	}
}

// TestHeaderTimeoutBufferedBody: a body that came with its head is read
// whole however late the caller reads it, though the head's deadline is
// left on for it (the pool lifts it), and the connection carries the next
// request.
func TestHeaderTimeoutBufferedBody(t *testing.T) {
	t.Parallel()
	// The head comes at once; 300ms leaves room for a loaded machine.
	const timeout = 300 * time.Millisecond
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(nc, keepAliveOK)
		}
	})
	c := newClient(t, Config{})
	req := get(srv.addr, "/")
	req.HeaderTimeout = timeout
	for i := range 2 {
		resp, err := c.Do(t.Context(), req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// Past the head's deadline before the body is read.
		time.Sleep(2 * timeout)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "ok" {
			t.Fatalf("request %d: body %q, %v; want \"ok\"", i, b, err)
		}
	}
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

// ownAfterFunc is a context with its own AfterFunc method (as miffy's
// server's request contexts have); used counts its calls.
type ownAfterFunc struct {
	context.Context
	used *atomic.Int32
}

func (c ownAfterFunc) AfterFunc(f func()) func() bool {
	c.used.Add(1)
	return context.AfterFunc(c.Context, f)
}

func TestContext(t *testing.T) {
	t.Parallel()
	cancelled := func(arrived <-chan struct{}) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-arrived
			cancel()
		}()
		return ctx, cancel
	}
	var ownUsed atomic.Int32
	cancelledOwn := func(arrived <-chan struct{}) (context.Context, context.CancelFunc) {
		ctx, cancel := cancelled(arrived)
		return ownAfterFunc{ctx, &ownUsed}, cancel
	}
	// The request must reach the server before the deadline: 200ms leaves
	// room for a loaded machine.
	deadline := func(<-chan struct{}) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 200*time.Millisecond)
	}
	tests := []struct {
		name     string
		answered int32 // as in TestHeaderTimeout
		// ctx makes the context for the request that gets no answer;
		// arrived is closed when the server has read that request.
		ctx  func(arrived <-chan struct{}) (context.Context, context.CancelFunc)
		want error
		// repeat is how many times the case runs: the connection's
		// deadline and ctx's fire on the same instant, in either order.
		repeat int
	}{
		{name: "cancelled", ctx: cancelled, want: context.Canceled, repeat: 1},
		{name: "cancelled, reused connection", answered: 1, ctx: cancelled, want: context.Canceled, repeat: 1},
		{name: "cancelled, the context's own AfterFunc", answered: 1, ctx: cancelledOwn, want: context.Canceled, repeat: 1},
		{name: "deadline", ctx: deadline, want: context.DeadlineExceeded, repeat: 10},
		{name: "deadline, reused connection", answered: 1, ctx: deadline, want: context.DeadlineExceeded, repeat: 10},
	}
	// Once, for the exchange on that context (the one before it had
	// another context); checked once the parallel subtests are done.
	t.Cleanup(func() {
		if got := ownUsed.Load(); got != 1 {
			t.Errorf("the context's own AfterFunc was called %d times, want 1", got)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			met := 0 // runs where the request reached the server before the deadline
			for i := range tt.repeat {
				var received atomic.Int32
				arrived := make(chan struct{})
				srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
					for {
						if _, err := readRequest(br); err != nil {
							return
						}
						if received.Add(1) > tt.answered {
							close(arrived)
							hold(br)
							return
						}
						io.WriteString(nc, keepAliveOK)
					}
				})
				c := newClient(t, Config{})
				for range tt.answered {
					if _, err := fetch(t.Context(), c, get(srv.addr, "/")); err != nil {
						t.Fatal(err)
					}
				}
				ctx, cancel := tt.ctx(arrived)
				var err error
				within(t, bound, func() { _, err = c.Do(ctx, get(srv.addr, "/")) })
				cancel()
				if !errors.Is(err, tt.want) {
					t.Fatalf("run %d: err = %v, want one wrapping %v", i, err, tt.want)
				}
				got, want := received.Load(), tt.answered+1
				if got == tt.answered && tt.want == context.DeadlineExceeded {
					continue // a loaded machine: the deadline came before the request reached the server
				}
				met++
				if got != want {
					t.Errorf("run %d: server read %d requests, want %d", i, got, want)
				}
			}
			if met == 0 {
				t.Errorf("in all %d runs the deadline came before the request reached the server: nothing was tested", tt.repeat)
			}
		})
	}
}

// TestContextBody: ctx bounds the body too.
func TestContextBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// ctx makes the context; end is called once half the body is read.
		ctx    func(t *testing.T) (ctx context.Context, end func())
		want   error
		repeat int // as in TestContext
	}{
		{
			name: "cancelled",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				return ctx, cancel
			},
			want:   context.Canceled,
			repeat: 1,
		},
		{
			name: "deadline",
			ctx: func(t *testing.T) (context.Context, func()) {
				// The head must come before it: room for a loaded machine.
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx, func() {} // the deadline ends it
			},
			want:   context.DeadlineExceeded,
			repeat: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.")
				hold(br)
			})
			c := newClient(t, Config{})
			met := 0 // runs where half the body came before the deadline
			for i := range tt.repeat {
				ctx, end := tt.ctx(t)
				resp, err := c.Do(ctx, get(srv.addr, "/"))
				if err == nil {
					if _, err = io.ReadFull(resp.Body, make([]byte, 5)); err != nil {
						resp.Body.Close()
					}
				}
				if err != nil {
					if tt.want == context.DeadlineExceeded && ctx.Err() != nil {
						continue // a loaded machine: the deadline came before half the body
					}
					t.Fatal(err)
				}
				met++
				end()
				within(t, bound, func() { _, err = io.ReadAll(resp.Body) })
				resp.Body.Close()
				if !errors.Is(err, tt.want) {
					t.Fatalf("run %d: err = %v, want one wrapping %v", i, err, tt.want)
				}
			}
			if met == 0 {
				t.Errorf("in all %d runs the deadline came before half the body: nothing was tested", tt.repeat)
			}
		})
	}
}

// TestCancelRace: a cancellation that lands while the client moves the
// read deadline (for HeaderTimeout, and back after the head) is not lost.
// Where it lands is a matter of timing, so the test tries many points.
func TestCancelRace(t *testing.T) {
	t.Parallel()
	const (
		iterations    = 200
		headerTimeout = 2 * time.Second
	)
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			if r.URL.Path == "/stall" {
				// The head at once, the body never.
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.")
				hold(br)
				return
			}
			io.WriteString(nc, keepAliveOK)
		}
	})
	c := newClient(t, Config{})
	for i := range iterations {
		// A pooled connection makes the window of the race most of Do.
		if _, err := fetch(t.Context(), c, get(srv.addr, "/")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		req := get(srv.addr, "/stall")
		req.HeaderTimeout = headerTimeout
		go func() {
			// Jitter, to land the cancellation at another point each time.
			time.Sleep(time.Duration(i%40) * 5 * time.Microsecond)
			cancel()
		}()
		var err error
		var elapsed time.Duration
		within(t, bound, func() {
			start := time.Now()
			_, err = fetch(ctx, c, req)
			elapsed = time.Since(start)
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("iteration %d: err = %v, want one wrapping context.Canceled", i, err)
		}
		if elapsed >= headerTimeout {
			t.Fatalf("iteration %d: took %v: the cancellation was lost", i, elapsed)
		}
	}
}

// TestDeadlineNotKept: a request's deadline does not stay on its
// connection once the connection is back in the pool; a pooled connection
// whose last request's deadline has passed is as good as any.
func TestDeadlineNotKept(t *testing.T) {
	t.Parallel()
	srv, cs := newServer(t, false, pathHandler())
	c := newClient(t, Config{})
	addr := srv.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // room for a loaded machine
	defer cancel()
	if _, err := fetch(ctx, c, get(addr, "/first")); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	// The connection's own deadline is another timer, on the same instant:
	// give it time to fire too.
	time.Sleep(50 * time.Millisecond)
	got, err := fetch(t.Context(), c, get(addr, "/second"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(result{200, "answer to /second"}, got); diff != "" {
		t.Fatalf("answer (-want +got):\n%s", diff)
	}
	if got := cs.opened.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

func TestRequestWriting(t *testing.T) {
	t.Parallel()
	type received struct {
		Method           string
		Host             string
		URI              string
		Header           http.Header
		TransferEncoding []string
		ContentLength    int64
		Body             string
	}
	tests := []struct {
		name string
		req  Request // Scheme and Addr are filled in
		want received
	}{
		{
			name: "GET, default Host",
			req:  Request{Method: http.MethodGet, Target: "/a/b%2Fc?x=1&y=%20"},
			want: received{Method: "GET", URI: "/a/b%2Fc?x=1&y=%20", Header: http.Header{}},
		},
		{
			name: "empty target",
			req:  Request{Method: http.MethodGet},
			want: received{Method: "GET", URI: "/", Header: http.Header{}},
		},
		{
			name: "Host override",
			req:  Request{Method: http.MethodGet, Target: "/", Host: "example.test:8080"},
			want: received{Method: "GET", Host: "example.test:8080", URI: "/", Header: http.Header{}},
		},
		{
			name: "header, less hop-by-hop and framing fields",
			req: Request{Method: http.MethodGet, Target: "/", Header: http.Header{
				"X-Multi":             {"1", "2"},
				"Accept":              {"text/plain"},
				"Connection":          {"close"},
				"Keep-Alive":          {"timeout=5"},
				"Transfer-Encoding":   {"chunked"},
				"Upgrade":             {"websocket"},
				"Te":                  {"trailers"},
				"Trailer":             {"X-Sum"},
				"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
				"Proxy-Connection":    {"keep-alive"},
				"Host":                {"evil.test"},
				"Content-Length":      {"99"},
				"Expect":              {"100-continue"},
			}},
			want: received{Method: "GET", URI: "/", Header: http.Header{
				"X-Multi": {"1", "2"},
				"Accept":  {"text/plain"},
			}},
		},
		{
			name: "fields replace header fields",
			req: Request{
				Method: http.MethodGet, Target: "/",
				Header: http.Header{"X-Role": {"client", "again"}, "X-Keep": {"k"}, "X-Low": {"header"}},
				Fields: []Field{{"X-Role", "reference"}, {"X-New", "n"}, {"x-low", "field"}},
			},
			want: received{Method: "GET", URI: "/", Header: http.Header{
				"X-Role": {"reference"},
				"X-Keep": {"k"},
				"X-New":  {"n"},
				"X-Low":  {"field"},
			}},
		},
		{
			name: "line breaks in a value",
			req: Request{Method: http.MethodGet, Target: "/", Fields: []Field{
				{"X-Evil", "a\r\nX-Injected: 1"},
			}},
			want: received{Method: "GET", URI: "/", Header: http.Header{
				"X-Evil": {"a  X-Injected: 1"},
			}},
		},
		{
			name: "POST body",
			req:  Request{Method: http.MethodPost, Target: "/p", Body: []byte("hello, upstream")},
			want: received{
				Method: "POST", URI: "/p",
				Header:        http.Header{"Content-Length": {"15"}},
				ContentLength: 15, Body: "hello, upstream",
			},
		},
		{
			name: "GET body",
			req:  Request{Method: http.MethodGet, Target: "/g", Body: []byte("q")},
			want: received{
				Method: "GET", URI: "/g",
				Header:        http.Header{"Content-Length": {"1"}},
				ContentLength: 1, Body: "q",
			},
		},
		{
			name: "POST nil body",
			req:  Request{Method: http.MethodPost, Target: "/"},
			want: received{Method: "POST", URI: "/", Header: http.Header{"Content-Length": {"0"}}},
		},
		{
			name: "PUT nil body",
			req:  Request{Method: http.MethodPut, Target: "/"},
			want: received{Method: "PUT", URI: "/", Header: http.Header{"Content-Length": {"0"}}},
		},
		{
			name: "PATCH nil body",
			req:  Request{Method: http.MethodPatch, Target: "/"},
			want: received{Method: "PATCH", URI: "/", Header: http.Header{"Content-Length": {"0"}}},
		},
		{
			name: "DELETE nil body",
			req:  Request{Method: http.MethodDelete, Target: "/"},
			want: received{Method: "DELETE", URI: "/", Header: http.Header{}},
		},
	}
	got := make(chan received, 1)
	srv, cs := newServer(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- received{
			Method: r.Method, Host: r.Host, URI: r.URL.RequestURI(),
			Header: r.Header, TransferEncoding: r.TransferEncoding,
			ContentLength: r.ContentLength, Body: string(b),
		}
	}))
	addr := srv.Listener.Addr().String()
	c := newClient(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Scheme, req.Addr = "http", addr
			if tt.want.Host == "" {
				tt.want.Host = addr
			}
			res, err := fetch(t.Context(), c, &req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusOK {
				t.Fatalf("status %d", res.Status)
			}
			if diff := cmp.Diff(tt.want, <-got); diff != "" {
				t.Errorf("server received (-want +got):\n%s", diff)
			}
		})
	}
	// None of the requests asked for the connection to be closed.
	if got := cs.opened.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

func TestTrailers(t *testing.T) {
	t.Parallel()
	srv, cs := newServer(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "sum of "+r.URL.Path)
	}))
	c := newClient(t, Config{})
	addr := srv.Listener.Addr().String()
	for _, path := range []string{"/a", "/b"} {
		resp, err := c.Do(t.Context(), get(addr, path))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"chunked"}, resp.TransferEncoding); diff != "" {
			t.Errorf("%s: TransferEncoding (-want +got):\n%s", path, diff)
		}
		if diff := cmp.Diff(http.Header{"X-Sum": nil}, resp.Trailer); diff != "" {
			t.Errorf("%s: trailer before the body (-want +got):\n%s", path, diff)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff("part one, part two", string(b)); diff != "" {
			t.Errorf("%s: body (-want +got):\n%s", path, diff)
		}
		if diff := cmp.Diff(http.Header{"X-Sum": {"sum of " + path}}, resp.Trailer); diff != "" {
			t.Errorf("%s: trailer after the body (-want +got):\n%s", path, diff)
		}
	}
	if got := cs.opened.Load(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
}

func TestInterim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		interim string
	}{
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n"},
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"},
		{"both", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					io.WriteString(nc, tt.interim+"HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			c := newClient(t, Config{})
			req := &Request{Method: http.MethodPost, Scheme: "http", Addr: srv.addr, Target: "/", Body: []byte("x")}
			for i := range 2 {
				var (
					resp *http.Response
					b    []byte
					err  error
				)
				within(t, bound, func() {
					if resp, err = c.Do(t.Context(), req); err == nil {
						b, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
				})
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if diff := cmp.Diff(result{200, "ok"}, result{resp.StatusCode, string(b)}); diff != "" {
					t.Fatalf("request %d: answer (-want +got):\n%s", i, diff)
				}
				want := http.Header{"X-Final": {"yes"}, "Content-Length": {"2"}}
				if diff := cmp.Diff(want, resp.Header); diff != "" {
					t.Errorf("request %d: header (-want +got):\n%s", i, diff)
				}
			}
			if got := srv.accepts.Load(); got != 1 {
				t.Errorf("server saw %d connections, want 1", got)
			}
		})
	}
}

// TestTooManyInterim: maxInterim 1xx answers are fine; an upstream that
// sends more is cut off, not read forever.
func TestTooManyInterim(t *testing.T) {
	t.Parallel()
	for _, n := range []int{maxInterim, maxInterim + 1} {
		srv := newRawServer(t, func(_ int, nc net.Conn, br *bufio.Reader) {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(nc, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", n)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		c := newClient(t, Config{})
		var err error
		within(t, bound, func() {
			var resp *http.Response
			if resp, err = c.Do(t.Context(), &Request{Method: http.MethodGet, Scheme: "http", Addr: srv.addr, Target: "/"}); err == nil {
				resp.Body.Close()
			}
		})
		switch {
		case n <= maxInterim && err != nil:
			t.Errorf("after %d interim answers: %v, want the final answer", n, err)
		case n > maxInterim && (err == nil || !strings.Contains(err.Error(), "1xx")):
			t.Errorf("after %d interim answers: %v, want an error naming the 1xx answers", n, err)
		}
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		}
	})
	c := newClient(t, Config{})
	for i := range 2 {
		var (
			resp *http.Response
			err  error
		)
		// A client that took the 101 for an interim answer would wait
		// for another.
		within(t, bound, func() { resp, err = c.Do(t.Context(), get(srv.addr, "/ws")) })
		if !errors.Is(err, ErrUpgrade) {
			t.Fatalf("request %d: err = %v, want ErrUpgrade", i, err)
		}
		if resp != nil {
			t.Errorf("request %d: got a response with the error", i)
		}
	}
	// What follows a 101 is another protocol: the connection is not kept.
	if got := srv.accepts.Load(); got != 2 {
		t.Errorf("server saw %d connections, want 2", got)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv, cs := newServer(t, true, pathHandler())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()

	t.Run("trusted", func(t *testing.T) {
		c := newClient(t, Config{TLS: &tls.Config{RootCAs: roots}})
		before := cs.opened.Load()
		req := &Request{Method: http.MethodGet, Scheme: "https", Addr: addr, Target: "/x"}
		for i := range 3 {
			got, err := fetch(t.Context(), c, req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if diff := cmp.Diff(result{200, "answer to /x"}, got); diff != "" {
				t.Fatalf("request %d: answer (-want +got):\n%s", i, diff)
			}
		}
		if got := cs.opened.Load() - before; got != 1 {
			t.Errorf("server saw %d connections, want 1", got)
		}
	})
	t.Run("ServerName from the config", func(t *testing.T) {
		// httptest's certificate is for example.com as well as 127.0.0.1.
		c := newClient(t, Config{TLS: &tls.Config{RootCAs: roots, ServerName: "example.com"}})
		req := &Request{Method: http.MethodGet, Scheme: "https", Addr: addr, Target: "/y"}
		if _, err := fetch(t.Context(), c, req); err != nil {
			t.Fatal(err)
		}
		c = newClient(t, Config{TLS: &tls.Config{RootCAs: roots, ServerName: "other.test"}})
		if _, err := fetch(t.Context(), c, req); err == nil {
			t.Fatal("a certificate for another name was taken")
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		c := newClient(t, Config{})
		req := &Request{Method: http.MethodGet, Scheme: "https", Addr: addr, Target: "/"}
		_, err := fetch(t.Context(), c, req)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "x509") {
			t.Fatalf("err = %v, want an x509 unknown authority error", err)
		}
	})

	plain, _ := newServer(t, false, pathHandler())
	silent := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) { hold(br) })
	for _, tt := range []struct{ name, addr string }{
		{"https to a plain HTTP server", plain.Listener.Addr().String()},
		{"https to a server that says nothing", silent.addr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{DialTimeout: 200 * time.Millisecond, TLS: &tls.Config{RootCAs: roots}})
			req := &Request{Method: http.MethodGet, Scheme: "https", Addr: tt.addr, Target: "/"}
			var err error
			within(t, bound, func() { _, err = fetch(t.Context(), c, req) })
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestMaxIdlePerHost(t *testing.T) {
	t.Parallel()
	const parallel = 3
	arrived := make(chan struct{}, parallel)
	release := make(chan struct{})
	var block atomic.Bool
	block.Store(true)
	srv, cs := newServer(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	addr := srv.Listener.Addr().String()
	c := newClient(t, Config{MaxIdlePerHost: 1})

	errs := make(chan error, parallel)
	for range parallel {
		go func() {
			_, err := fetch(t.Context(), c, get(addr, "/"))
			errs <- err
		}()
	}
	// All three on the server at once, so on three connections.
	timeout := time.After(bound)
	for range parallel {
		select {
		case <-arrived:
		case <-timeout:
			t.Fatal("requests did not reach the server together")
		}
	}
	block.Store(false)
	close(release)
	for range parallel {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// One connection is kept, the others closed.
	cs.waitClosed(t, parallel-1)
	for i := range parallel {
		if _, err := fetch(t.Context(), c, get(addr, "/")); err != nil {
			t.Fatalf("sequential request %d: %v", i, err)
		}
	}
	if got := cs.opened.Load(); got != parallel {
		t.Errorf("server saw %d connections, want %d", got, parallel)
	}
	if got := cs.closed.Load(); got != parallel-1 {
		t.Errorf("server saw %d connections closed, want %d", got, parallel-1)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 30 * time.Millisecond
	tests := []struct {
		name      string
		timeout   time.Duration
		wantConns int32
	}{
		{"idle longer than the timeout", idle, 2},
		{"idle shorter than the timeout", time.Hour, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cs := newServer(t, false, pathHandler())
			addr := srv.Listener.Addr().String()
			var clock atomic.Int64 // nanoseconds after the epoch
			now := func() time.Time { return time.Unix(0, clock.Load()) }
			c := newClient(t, Config{IdleTimeout: tt.timeout, hooks: &testHooks{inlineMax: defaultInlineMax, now: now}})
			if _, err := fetch(t.Context(), c, get(addr, "/")); err != nil {
				t.Fatal(err)
			}
			clock.Add(int64(2 * idle)) // time passing is what is under test here
			if _, err := fetch(t.Context(), c, get(addr, "/")); err != nil {
				t.Fatal(err)
			}
			if got := cs.opened.Load(); got != tt.wantConns {
				t.Errorf("server saw %d connections, want %d", got, tt.wantConns)
			}
		})
	}
}

func TestCloseIdle(t *testing.T) {
	t.Parallel()
	srv, cs := newServer(t, false, pathHandler())
	addr := srv.Listener.Addr().String()
	c := newClient(t, Config{})
	if _, err := fetch(t.Context(), c, get(addr, "/")); err != nil {
		t.Fatal(err)
	}
	if got := cs.closed.Load(); got != 0 {
		t.Fatalf("server saw %d connections closed before CloseIdle", got)
	}
	c.CloseIdle()
	cs.waitClosed(t, 1)
	if _, err := fetch(t.Context(), c, get(addr, "/")); err != nil {
		t.Fatal(err)
	}
	if got := cs.opened.Load(); got != 2 {
		t.Errorf("server saw %d connections, want 2", got)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	const (
		workers  = 8
		requests = 50
	)
	srv, cs := newServer(t, false, pathHandler())
	addr := srv.Listener.Addr().String()
	c := newClient(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range requests {
				target := fmt.Sprintf("/w%d/r%d", w, i)
				got, err := fetch(t.Context(), c, get(addr, target))
				if err != nil {
					errs <- fmt.Errorf("%s: %w", target, err)
					return
				}
				if diff := cmp.Diff(result{200, "answer to " + target}, got); diff != "" {
					errs <- fmt.Errorf("%s: answer (-want +got):\n%s", target, diff)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A worker gives its connection back before it asks for one.
	if got := cs.opened.Load(); got > workers {
		t.Errorf("server saw %d connections, want at most %d", got, workers)
	}
}

// TestMalformedAnswer: an upstream whose answer breaks the head's rules
// fails the exchange at once, though it keeps the connection open (a
// client that waited for a proper end of head would wait for its
// timeout), and the connection is not used again.
func TestMalformedAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, answer string }{
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"},
		{"status below 100", "HTTP/1.1 042 Low\r\nContent-Length: 2\r\n\r\nhi"},
		{"status above 599", "HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nhi"},
		{"Content-Length -0", "HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n"},
		{"Content-Length +2", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi"},
		{"Content-Lengths differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nhi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(n int, nc net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(nc, tt.answer)
				hold(br)
			})
			c := newClient(t, Config{})
			for i := range 2 {
				var err error
				within(t, bound, func() { _, err = fetch(t.Context(), c, get(srv.addr, "/")) })
				if !errors.Is(err, ErrMalformedResponse) {
					t.Fatalf("request %d: err = %v, want ErrMalformedResponse", i, err)
				}
			}
			if got := srv.accepts.Load(); got != 2 {
				t.Errorf("server saw %d connections, want 2", got)
			}
		})
	}
}

// TestResponseHeaderBound: an upstream that streams one header field
// without end is cut off at MaxResponseHeaderBytes (1 MiB by default),
// with ErrResponseHeaderTooLarge; a long head within the bound is read,
// over TCP and TLS, and its connection kept.
func TestResponseHeaderBound(t *testing.T) {
	t.Parallel()
	endlessHead := func(n int, nc net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nX-Endless: ")
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for {
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}
	for _, max := range []int{1 << 20, 64 << 10} {
		srv := newRawServer(t, endlessHead)
		c := newClient(t, Config{MaxResponseHeaderBytes: max})
		var err error
		within(t, bound, func() { _, err = fetch(t.Context(), c, get(srv.addr, "/")) })
		if !errors.Is(err, ErrResponseHeaderTooLarge) {
			t.Errorf("max %d: err = %v, want ErrResponseHeaderTooLarge", max, err)
		}
	}

	long := strings.Repeat("v", 200<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", long)
		io.WriteString(w, "ok")
	})
	for _, tlsOn := range []bool{false, true} {
		srv, cs := newServer(t, tlsOn, h)
		cfg := Config{MaxResponseHeaderBytes: 256 << 10}
		scheme := "http"
		if tlsOn {
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			cfg.TLS = &tls.Config{RootCAs: roots}
			scheme = "https"
		}
		c := newClient(t, cfg)
		for i := range 3 {
			resp, err := c.Do(t.Context(), &Request{Method: http.MethodGet, Scheme: scheme, Addr: srv.Listener.Addr().String(), Target: "/"})
			if err != nil {
				t.Fatalf("TLS %v, request %d: %v", tlsOn, i, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "ok" || resp.Header.Get("X-Long") != long {
				t.Fatalf("TLS %v, request %d: body %q, %v; X-Long of %d bytes", tlsOn, i, b, err, len(resp.Header.Get("X-Long")))
			}
		}
		if got := cs.opened.Load(); got != 1 {
			t.Errorf("TLS %v: server saw %d connections, want 1", tlsOn, got)
		}
	}
}
