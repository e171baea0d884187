package front

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(ioDeadline))
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
}

func mustAnswer(t *testing.T, br *bufio.Reader, method string) answer {
	t.Helper()
	a, err := readAnswer(br, method)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return a
}

// waitClosed reads c until it fails, and fails the test unless the server
// closed (or reset) it.
func waitClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	n, err := io.Copy(io.Discard, br)
	if err == nil {
		err = io.EOF // io.Copy reports EOF as nil
	}
	if errClass(err) != "closed" || n != 0 {
		t.Fatalf("reading a connection the server should close: %d bytes, %v", n, err)
	}
}

// receive waits for a value from ch, at most ioDeadline.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioDeadline):
		t.Fatalf("waited %v for %s", ioDeadline, what)
	}
	var zero T
	return zero
}

func pathHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	io.WriteString(w, r.URL.Path+" "+string(body))
}

func TestKeepAlive(t *testing.T) {
	b := startFront(t, http.HandlerFunc(pathHandler), Config{}, nil)
	c := dial(t, b.addr)
	br := bufio.NewReader(c)
	for i := range 100 {
		send(t, c, get(fmt.Sprintf("/%d", i)))
		a := mustAnswer(t, br, "GET")
		if want := fmt.Sprintf("/%d ", i); a.Status != "200 OK" || a.Body != want || a.Close {
			t.Fatalf("request %d: %s %q close=%v; want 200 OK %q, kept open", i, a.Status, a.Body, a.Close, want)
		}
		for _, r := range Reasons {
			if n := b.fs.Handoffs(r); n != 0 {
				t.Fatalf("request %d: Handoffs(%q) = %d; want 0", i, r, n)
			}
		}
	}
}

func TestPipelining(t *testing.T) {
	b := startFront(t, http.HandlerFunc(pathHandler), Config{}, nil)
	c := dial(t, b.addr)
	send(t, c, get("/1")+post("/2", "two")+get("/3"))
	br := bufio.NewReader(c)
	var got []string
	for _, m := range []string{"GET", "POST", "GET"} {
		got = append(got, mustAnswer(t, br, m).Body)
	}
	if diff := cmp.Diff([]string{"/1 ", "/2 two", "/3 "}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if n := handoffs(b.fs); len(n) != 0 {
		t.Errorf("handed off %v; want none", n)
	}
}

func TestHandoffMidConnection(t *testing.T) {
	b := startFront(t, http.HandlerFunc(pathHandler), Config{}, nil)
	c := dial(t, b.addr)
	br := bufio.NewReader(c)
	send(t, c, get("/fast"))
	if a := mustAnswer(t, br, "GET"); a.Body != "/fast " {
		t.Fatalf("fast answer %q", a.Body)
	}
	send(t, c, chunkedPost)
	if a := mustAnswer(t, br, "POST"); a.Status != "200 OK" || a.Body != "/up hello" {
		t.Fatalf("chunked answer: %s %q; want 200 OK %q", a.Status, a.Body, "/up hello")
	}
	// The connection is net/http's now, and it goes on serving it.
	send(t, c, get("/after"))
	if a := mustAnswer(t, br, "GET"); a.Body != "/after " {
		t.Fatalf("answer after the hand-off %q", a.Body)
	}
	if diff := cmp.Diff(map[string]uint64{reasonFraming: 1}, handoffs(b.fs)); diff != "" {
		t.Errorf("hand-offs (-want +got):\n%s", diff)
	}
}

// servers runs a test against net/http's server alone and against the
// fast path: the first shows that the test expects what net/http does.
func servers(t *testing.T, cfg Config, test func(t *testing.T, start func(h http.Handler) string)) {
	t.Run("net/http", func(t *testing.T) {
		test(t, func(h http.Handler) string { return startNetHTTP(t, h, nil) })
	})
	t.Run("front", func(t *testing.T) {
		test(t, func(h http.Handler) string { return startFront(t, h, cfg, nil).addr })
	})
}

func TestClientGoneCancelsContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		// lateBody: the client sends the body only once the handler
		// runs, after WatchAfter.
		head, body string
		lateBody   bool
	}{
		{name: "no body", head: get("/")},
		{name: "body read first", head: post("/", "hello")},
		{name: "body read after WatchAfter", cfg: Config{WatchAfter: time.Nanosecond},
			head: "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\n", body: "hello", lateBody: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers(t, tc.cfg, func(t *testing.T, start func(http.Handler) string) {
				started := make(chan struct{}, 1)
				read := make(chan string, 1)
				done := make(chan error, 1)
				addr := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					started <- struct{}{}
					body, _ := io.ReadAll(r.Body)
					read <- string(body)
					select {
					case <-r.Context().Done():
						done <- r.Context().Err()
					case <-time.After(ioDeadline):
						done <- errors.New("the context was not canceled")
					}
				}))
				c := dial(t, addr)
				send(t, c, tc.head)
				receive(t, started, "the handler to start")
				if tc.lateBody {
					send(t, c, tc.body)
				}
				if got := receive(t, read, "the handler to read the body"); got != "hello" && got != "" {
					t.Errorf("body %q", got)
				}
				c.Close()
				if err := receive(t, done, "the handler to return"); !errors.Is(err, context.Canceled) {
					t.Errorf("the handler's context: %v; want %v", err, context.Canceled)
				}
			})
		})
	}
}

func TestPipelinedDuringWatch(t *testing.T) {
	const watchAfter = 10 * time.Millisecond
	for _, tc := range []struct {
		name      string
		first     string
		method    string
		together  bool // both requests in one Write
		halfClose bool // the client closes its side after the second
	}{
		{name: "second written while the first runs", first: get("/slow"), method: "GET"},
		{name: "second written with the first", first: get("/slow"), method: "GET", together: true},
		{name: "second written, then half-close", first: get("/slow"), method: "GET", halfClose: true},
		{name: "first with a body", first: post("/slow", "payload"), method: "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			b := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.URL.Path == "/slow" {
					started <- struct{}{}
					// Past WatchAfter, so that the connection is watched
					// while the second request arrives: the behaviour
					// under test.
					time.Sleep(5 * watchAfter)
				}
				fmt.Fprintf(w, "%s %s ctx=%v", r.URL.Path, body, r.Context().Err())
			}), Config{WatchAfter: watchAfter}, nil)
			c := dial(t, b.addr)
			second := get("/next", "X-Pad: "+strings.Repeat("p", 100))
			if tc.together {
				send(t, c, tc.first+second)
				receive(t, started, "the first handler")
			} else {
				send(t, c, tc.first)
				receive(t, started, "the first handler")
				send(t, c, second)
			}
			if tc.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			br := bufio.NewReader(c)
			var got []string
			for _, m := range []string{tc.method, "GET"} {
				a := mustAnswer(t, br, m)
				got = append(got, a.Status+" "+a.Body)
			}
			wantFirst := "200 OK /slow  ctx=<nil>"
			if tc.method == "POST" {
				wantFirst = "200 OK /slow payload ctx=<nil>"
			}
			if diff := cmp.Diff([]string{wantFirst, "200 OK /next  ctx=<nil>"}, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if tc.halfClose {
				waitClosed(t, c, br)
			}
		})
	}
}

func TestWriteErrorCancelsContext(t *testing.T) {
	servers(t, Config{}, func(t *testing.T, start func(http.Handler) string) {
		started := make(chan struct{}, 1)
		done := make(chan string, 1)
		addr := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("w"), 32<<10)
			bound := time.After(ioDeadline)
			for i := 0; ; i++ {
				if i == 1 {
					started <- struct{}{}
				}
				if _, err := w.Write(chunk); err != nil {
					done <- fmt.Sprintf("write error, ctx %v", r.Context().Err())
					return
				}
				select {
				case <-r.Context().Done():
					done <- fmt.Sprintf("ctx %v", r.Context().Err())
					return
				case <-bound:
					done <- "neither"
					return
				default:
				}
			}
		}))
		c := dial(t, addr)
		send(t, c, get("/"))
		receive(t, started, "the handler to write")
		c.Close() // with unread data: a reset
		got := receive(t, done, "the handler to stop")
		if got != "write error, ctx context canceled" && got != "ctx context canceled" {
			t.Errorf("the handler saw %q; want a write error or its context canceled", got)
		}
	})
}

func TestShutdown(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	b := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}), Config{}, nil)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	idle := dial(t, b.addr)
	idleR := bufio.NewReader(idle)
	send(t, idle, get("/idle"))
	if a := mustAnswer(t, idleR, "GET"); a.Close {
		t.Fatalf("the idle connection's answer closes it")
	}
	busy := dial(t, b.addr)
	busyR := bufio.NewReader(busy)
	send(t, busy, get("/block"))
	receive(t, started, "the handler to start")

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
		defer cancel()
		shut <- b.fs.Shutdown(ctx)
	}()
	waitClosed(t, idle, idleR)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a handler runs", err)
	default:
	}
	unblock()
	a := mustAnswer(t, busyR, "GET")
	if a.Body != "/block" || !a.Close {
		t.Errorf("answer in flight at Shutdown: %q, close=%v; want %q with Connection: close", a.Body, a.Close, "/block")
	}
	waitClosed(t, busy, busyR)
	if err := receive(t, shut, "Shutdown to return"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := receive(t, b.serveErr, "Serve to return"); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v; want %v", err, http.ErrServerClosed)
	}
	if c, err := net.Dial("tcp", b.addr); err == nil {
		c.SetDeadline(time.Now().Add(ioDeadline))
		io.WriteString(c, get("/late"))
		waitClosed(t, c, bufio.NewReader(c))
		c.Close()
	}
	ln := listen(t)
	defer ln.Close()
	if err := b.fs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v; want %v", err, http.ErrServerClosed)
	}
}

func TestShutdownDeadline(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	b := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}), Config{}, nil)
	t.Cleanup(func() { close(release) })
	c := dial(t, b.addr)
	send(t, c, get("/"))
	receive(t, started, "the handler to start")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.fs.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v; want %v", err, context.DeadlineExceeded)
	}
}

func TestTimeouts(t *testing.T) {
	const d = 200 * time.Millisecond
	for _, tc := range []struct {
		name   string
		cfg    Config
		before string // a whole request, answered first
		then   string // what the client sends and leaves unfinished
	}{
		{name: "ReadHeaderTimeout, first request", cfg: Config{ReadHeaderTimeout: d}, then: "GET / HTTP/1.1\r\nHo"},
		{name: "ReadHeaderTimeout, second request", cfg: Config{ReadHeaderTimeout: d}, before: get("/"), then: "GET / HTTP/1.1\r\nHo"},
		{name: "ReadTimeout, head", cfg: Config{ReadTimeout: d}, then: "GET / HTTP/1.1\r\nHo"},
		{name: "IdleTimeout", cfg: Config{IdleTimeout: d}, before: get("/")},
		{name: "ReadTimeout as IdleTimeout", cfg: Config{ReadTimeout: d}, before: get("/")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startFront(t, http.HandlerFunc(pathHandler), tc.cfg, nil)
			c := dial(t, b.addr)
			br := bufio.NewReader(c)
			if tc.before != "" {
				send(t, c, tc.before)
				mustAnswer(t, br, "GET")
			}
			t0 := time.Now()
			if tc.then != "" {
				send(t, c, tc.then)
			}
			waitClosed(t, c, br)
			if el := time.Since(t0); el < d/2 {
				t.Errorf("closed after %v; want about %v", el, d)
			}
		})
	}
}

func TestReadTimeoutBody(t *testing.T) {
	const d = 200 * time.Millisecond
	tune := func(s *http.Server) { s.ReadTimeout = d }
	h := withProbe(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		var ne net.Error
		fmt.Fprintf(w, "timeout=%v", errors.As(err, &ne) && ne.Timeout())
	})
	a := startNetHTTP(t, h, tune)
	b := startFront(t, h, Config{ReadTimeout: d}, tune)
	raw := "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nhalf"
	want := converse(t, a, raw, []string{"POST"})
	got := converse(t, b.addr, raw, []string{"POST"})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("net/http and front differ (-net/http +front):\n%s", diff)
	}
	if len(got.Answers) != 1 || got.Answers[0].Body != "timeout=true" || got.Probe != "closed" {
		t.Errorf("got %+v; want the handler to see a timeout, then the connection closed", got)
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	tune := func(s *http.Server) { s.MaxHeaderBytes = 1024 }
	for _, tc := range []struct {
		name, raw, status string
	}{
		// net/http allows 4096 bytes over MaxHeaderBytes: this one it
		// serves.
		{"2000 bytes", get("/", "X-Big: "+strings.Repeat("x", 2000-60)), "200 OK"},
		{"6000 bytes", get("/", "X-Big: "+strings.Repeat("x", 6000)), "431 Request Header Fields Too Large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := withProbe(pathHandler)
			a := startNetHTTP(t, h, tune)
			b := startFront(t, h, Config{MaxHeaderBytes: 1024}, tune)
			want := converse(t, a, tc.raw, []string{"GET"})
			got := converse(t, b.addr, tc.raw, []string{"GET"})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("net/http and front differ (-net/http +front):\n%s", diff)
			}
			if len(got.Answers) != 1 || got.Answers[0].Status != tc.status {
				t.Errorf("answers %+v; want one %s", got.Answers, tc.status)
			}
			if diff := cmp.Diff(map[string]uint64{reasonSize: 1}, handoffs(b.fs)); diff != "" {
				t.Errorf("hand-offs (-want +got):\n%s", diff)
			}
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPanicLogged(t *testing.T) {
	var logged lockedBuffer
	b := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), Config{ErrorLog: log.New(&logged, "", 0)}, nil)

	c := dial(t, b.addr)
	send(t, c, get("/abort"))
	waitClosed(t, c, bufio.NewReader(c))
	if s := logged.String(); s != "" {
		t.Errorf("http.ErrAbortHandler logged: %q", s)
	}

	c = dial(t, b.addr)
	send(t, c, get("/boom"))
	waitClosed(t, c, bufio.NewReader(c))
	s := logged.String()
	if !strings.Contains(s, "panic serving 127.0.0.1:") || !strings.Contains(s, "boom") || strings.Count(s, "panic serving") != 1 {
		t.Errorf("log %q; want one \"panic serving\" line for boom", s)
	}
}

func TestHandoffAddr(t *testing.T) {
	b := startFront(t, http.HandlerFunc(pathHandler), Config{}, nil)
	c := dial(t, b.addr)
	send(t, c, get("/"))
	mustAnswer(t, bufio.NewReader(c), "GET") // Serve has taken the listener
	if got := b.fs.Handoff().Addr().String(); got != b.addr {
		t.Errorf("Handoff().Addr() = %s; want the listener's %s", got, b.addr)
	}
}

// TestShutdownNewConnection: a request that comes, during Shutdown, on a
// connection accepted before it is not served but closed, as net/http
// does (it waits up to 5 seconds for the request, then drops it; the fast
// path closes the connection at once: the client sees the same).
func TestShutdownNewConnection(t *testing.T) {
	for _, kind := range []string{"net/http", "front"} {
		t.Run(kind, func(t *testing.T) {
			var addr string
			var shutdown func(context.Context) error
			if kind == "net/http" {
				ln := listen(t)
				srv := &http.Server{Handler: http.HandlerFunc(pathHandler), ErrorLog: quietLog}
				go srv.Serve(ln)
				t.Cleanup(func() { srv.Close() })
				addr, shutdown = ln.Addr().String(), srv.Shutdown
			} else {
				b := startFront(t, http.HandlerFunc(pathHandler), Config{}, nil)
				addr, shutdown = b.addr, b.fs.Shutdown
			}
			// Accepted in order: once idle's request is answered, fresh
			// is the server's.
			fresh := dial(t, addr)
			idle := dial(t, addr)
			idleR := bufio.NewReader(idle)
			send(t, idle, get("/idle"))
			mustAnswer(t, idleR, "GET")

			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
				defer cancel()
				shut <- shutdown(ctx)
			}()
			waitClosed(t, idle, idleR) // Shutdown has looked at every connection
			send(t, fresh, get("/fresh"))
			if a, err := readAnswer(bufio.NewReader(fresh), "GET"); errClass(err) != "closed" {
				t.Errorf("request on a new connection at Shutdown: %+v, %v; want the connection closed", a, err)
			}
			if err := receive(t, shut, "Shutdown to return"); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestLongRequestNotCanceled: a handler that runs past the deadlines left
// from reading its request (the first request's header deadline, then the
// idle one) while its connection is watched keeps its context, and its
// answer arrives.
func TestLongRequestNotCanceled(t *testing.T) {
	const d = 100 * time.Millisecond
	errs := make(chan error, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * d) // the behaviour under test: outliving the deadlines
		errs <- r.Context().Err()
		io.WriteString(w, "done")
	})
	b := startFront(t, h, Config{ReadHeaderTimeout: d, IdleTimeout: d, WatchAfter: d / 10}, nil)
	c := dial(t, b.addr)
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // the first request, then one after an idle wait
		send(t, c, get("/"))
		if a := mustAnswer(t, br, "GET"); a.Status != "200 OK" || a.Body != "done" {
			t.Fatalf("request %d: %s %q", i, a.Status, a.Body)
		}
		if err := receive(t, errs, "the handler's end"); err != nil {
			t.Fatalf("request %d: context ended: %v", i, err)
		}
	}
}

// TestBodyReadOnAnotherGoroutine: a handler whose request body is read on
// a goroutine of its own while it writes the answer, as net/http's
// Transport does in a reverse proxy (its writeLoop reads the end of the
// body after the upstream may have answered). The head reads the rest of
// the body away at the same time; under -race, the two must not race, and
// the connection carries the next request.
func TestBodyReadOnAnotherGoroutine(t *testing.T) {
	servers(t, Config{}, func(t *testing.T, start func(h http.Handler) string) {
		read := make(chan string, 1)
		addr := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != "POST" {
				io.WriteString(w, "second")
				return
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				b, _ := io.ReadAll(r.Body)
				r.Body.Read(make([]byte, 1)) // EOF, or read after close
				read <- string(b)
			}()
			io.WriteString(w, "ok")
			w.(http.Flusher).Flush()
			<-done
		}))
		c := dial(t, addr)
		br := bufio.NewReader(c)
		send(t, c, post("/", "hello")+get("/second"))
		if a := mustAnswer(t, br, "POST"); a.Status != "200 OK" || a.Body != "ok" {
			t.Fatalf("answer: %s %q; want 200 OK %q", a.Status, a.Body, "ok")
		}
		if got := receive(t, read, "the body read"); got != "hello" && got != "" {
			t.Errorf("the goroutine read %q; want %q, or nothing if the head read it away", got, "hello")
		}
		if a := mustAnswer(t, br, "GET"); a.Body != "second" {
			t.Fatalf("the next answer: %s %q; want %q", a.Status, a.Body, "second")
		}
	})
}

// TestSetHeader: a handler hands the response a whole header map, which
// goes out as if set field by field; the map is not taken once a field
// is set the usual way or the head is written.
func TestSetHeader(t *testing.T) {
	type setter interface{ SetHeader(http.Header) bool }
	took := make(chan [3]bool, 1)
	b := startFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := w.(setter)
		if !ok {
			t.Error("the fast path's writer has no SetHeader")
			return
		}
		var got [3]bool
		switch r.URL.Path {
		case "/handed":
			h := http.Header{"X-Up": {"1", "2"}, "Content-Type": {"text/x-up"}}
			got[0] = s.SetHeader(h)
			h.Set("X-Later", "set through the map after")
			w.Header().Add("X-Up", "3") // the same map
		case "/set-first":
			w.Header().Set("X-Own", "own")
			got[1] = s.SetHeader(http.Header{"X-Up": {"1"}})
		case "/after-head":
			w.WriteHeader(http.StatusAccepted)
			got[2] = s.SetHeader(http.Header{"X-Up": {"1"}})
		}
		took <- got
		io.WriteString(w, "body")
	}), Config{}, nil)
	c := dial(t, b.addr)
	br := bufio.NewReader(c)

	send(t, c, get("/handed"))
	a := mustAnswer(t, br, "GET")
	if got := receive(t, took, "the handler"); !got[0] {
		t.Error("SetHeader on a fresh response = false; want true")
	}
	want := http.Header{"X-Up": {"1", "2", "3"}, "Content-Type": {"text/x-up"}, "X-Later": {"set through the map after"}, "Content-Length": {"4"}}
	if diff := cmp.Diff(want, a.Header); diff != "" || a.Body != "body" {
		t.Errorf("handed map: body %q, fields (-want +got):\n%s", a.Body, diff)
	}

	send(t, c, get("/set-first"))
	a = mustAnswer(t, br, "GET")
	if got := receive(t, took, "the handler"); got[1] {
		t.Error("SetHeader after a field was set = true; want false")
	}
	if a.Header.Get("X-Own") != "own" || a.Header.Get("X-Up") != "" {
		t.Errorf("fields set first: got %v; want X-Own kept, no X-Up", a.Header)
	}

	send(t, c, get("/after-head"))
	a = mustAnswer(t, br, "GET")
	if got := receive(t, took, "the handler"); got[2] {
		t.Error("SetHeader after WriteHeader = true; want false")
	}
	if a.Status != "202 Accepted" || a.Header.Get("X-Up") != "" {
		t.Errorf("after the head: %s %v; want 202 without X-Up", a.Status, a.Header)
	}
}
