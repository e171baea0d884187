package main

// Helpers of the request-smuggling suite (smuggle_test.go): upstreams on raw
// TCP listeners that record every byte miffy sends them ("tapes"), a client
// that speaks raw bytes and reads answers until the connection ends, the
// stack of miffy (or nginx) in front of three tapes, and the conversations
// that run many cases at once and report each in its own subtest.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// wireDeadline bounds every read and write of the suite's raw clients and
// upstreams. It is only ever reached when a test fails (an answer or a
// close that never comes), so it is very generous: 24 conversations at once
// under -race on two cores shared with other suites took over 5s.
const wireDeadline = 15 * time.Second

// tapeBody is what every tape answers: the same bytes on every side, so
// that replays compare equal and publish nothing.
const tapeBody = `{"ok":true}`

// tapedRequest is one request a tape parsed, with the exact bytes it took.
type tapedRequest struct {
	raw      []byte
	method   string
	target   string      // the request-target as sent
	host     string      // the Host field
	header   http.Header // as Go's parser read it
	tunneled bool        // arrived after the tape had switched protocols
}

// tape is an upstream on a raw TCP listener that records every byte it
// receives, per connection, and answers each request it can parse with a
// keep-alive 200 and tapeBody. With upgrades set, a request carrying
// Upgrade is answered 101 and what follows on that connection is marked
// tunneled (and still parsed and answered, as an upgraded server would).
type tape struct {
	name string
	addr string

	mu       sync.Mutex
	upgrades bool
	conns    []*syncBuffer // raw bytes, one buffer a connection
	reqs     []tapedRequest
	open     map[net.Conn]bool
	changed  chan struct{} // closed and replaced on every change
}

func newTape(t *testing.T, name string) *tape {
	t.Helper()
	tp := &tape{name: name, changed: make(chan struct{})}
	tp.addr = acceptAll(t, tp.serve)
	return tp
}

// acceptAll listens on a loopback port and serves each connection with
// handle on its own goroutine, until the test ends: then it closes the
// listener and every connection still open, and waits for the handlers.
func acceptAll(t *testing.T, handle func(c net.Conn)) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		closed bool
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func (tp *tape) url() string { return "http://" + tp.addr }

// acceptUpgrades makes the tape answer requests carrying Upgrade with 101.
func (tp *tape) acceptUpgrades() {
	tp.mu.Lock()
	tp.upgrades = true
	tp.mu.Unlock()
}

func (tp *tape) serve(c net.Conn) {
	raw := &syncBuffer{}
	tp.mu.Lock()
	tp.conns = append(tp.conns, raw)
	tp.mu.Unlock()
	defer tp.signal()
	c.SetDeadline(time.Now().Add(2 * wireDeadline))
	br := bufio.NewReader(io.TeeReader(c, raw))
	start, tunneled := 0, false
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			// Not a request Go would read: say so at once (a front waiting
			// for an answer gets one) and keep recording what else comes.
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			io.Copy(io.Discard, br)
			return
		}
		_, bodyErr := io.Copy(io.Discard, req.Body)
		end := raw.Len() - br.Buffered()
		tp.mu.Lock()
		tp.reqs = append(tp.reqs, tapedRequest{
			raw: raw.Slice(start, end), method: req.Method, target: req.RequestURI, host: req.Host,
			header: req.Header, tunneled: tunneled,
		})
		tp.mu.Unlock()
		tp.signal()
		start = end
		if bodyErr != nil {
			io.Copy(io.Discard, br)
			return
		}
		tp.mu.Lock()
		upgrades := tp.upgrades
		tp.mu.Unlock()
		if up := req.Header.Get("Upgrade"); up != "" && upgrades && !tunneled {
			tunneled = true
			if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+up+"\r\n\r\n"); err != nil {
				return
			}
			continue
		}
		head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(tapeBody)) + "\r\n\r\n"
		if _, err := io.WriteString(c, head+tapeBody); err != nil || req.Close {
			return
		}
	}
}

func (tp *tape) signal() {
	tp.mu.Lock()
	close(tp.changed)
	tp.changed = make(chan struct{})
	tp.mu.Unlock()
}

// requests returns a copy of what the tape has parsed so far.
func (tp *tape) requests() []tapedRequest {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]tapedRequest(nil), tp.reqs...)
}

// received is every byte the tape was sent, connections one after another.
func (tp *tape) received() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var b strings.Builder
	for _, c := range tp.conns {
		b.WriteString(c.String())
		b.WriteString("\n--- next connection ---\n")
	}
	return b.String()
}

// sawPath reports whether a request whose target contains s reached the tape.
func (tp *tape) sawPath(s string) bool {
	for _, r := range tp.requests() {
		if strings.Contains(r.target, s) {
			return true
		}
	}
	return false
}

// waitFor waits until cond holds, woken by every request the tape parses
// and every connection it closes; it fails the test after wireDeadline.
func (tp *tape) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wireDeadline)
	defer deadline.Stop()
	for {
		tp.mu.Lock()
		ch := tp.changed
		tp.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: timed out after %v waiting for %s", tp.name, wireDeadline, what)
		}
	}
}

// Slice returns a copy of bytes [from, to) of what was written.
func (s *syncBuffer) Slice(from, to int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes()[from:to])
}

// Len is how many bytes were written.
func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// wire is one raw client connection to miffy's proxy port.
type wire struct {
	c  net.Conn
	br *bufio.Reader
}

// openWire connects to a front's base URL; the caller closes w.c.
func openWire(front string) (*wire, error) {
	c, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		return nil, err
	}
	return &wire{c: c, br: bufio.NewReader(c)}, nil
}

// dialWire is openWire for the test's goroutine: closed when t ends.
func dialWire(t *testing.T, in *instance) *wire {
	t.Helper()
	w, err := openWire(in.proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.c.Close() })
	return w
}

// send writes raw bytes; an error means miffy had closed the connection.
func (w *wire) send(raw string) error {
	w.c.SetWriteDeadline(time.Now().Add(wireDeadline))
	_, err := io.WriteString(w.c, raw)
	return err
}

// answer is one response as the client read it.
type answer struct {
	status int
	proto  string
	header http.Header
	body   string
	close  bool // the response said the connection ends after it
}

func (a answer) String() string {
	return fmt.Sprintf("%d %.80q", a.status, a.body)
}

// next reads one response (skipping 100 Continue) and its whole body.
func (w *wire) next() (answer, error) {
	w.c.SetReadDeadline(time.Now().Add(wireDeadline))
	for {
		resp, err := http.ReadResponse(w.br, nil)
		if err != nil {
			return answer{}, err
		}
		if resp.StatusCode == http.StatusContinue {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return answer{status: resp.StatusCode, proto: resp.Proto, header: resp.Header, body: string(b), close: resp.Close}, err
	}
}

// closed waits for miffy to end the connection: nil once it has (EOF or
// reset), else what was seen instead (more bytes, or nothing until the
// deadline).
func (w *wire) closed() error {
	w.c.SetReadDeadline(time.Now().Add(wireDeadline))
	b, err := w.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := w.br.Peek(w.br.Buffered())
		return fmt.Errorf("the connection stayed open and sent more: %.120q", append([]byte{b}, rest...))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return nil
	case isTimeout(err):
		return fmt.Errorf("the connection stayed open for %v after the answer", wireDeadline)
	default:
		return nil // any other read error also means it is gone
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// headUpstream is an upstream that reads one request per connection,
// lets respond write raw bytes, and then holds the connection open until
// miffy closes it (so an answer that waits for more bytes would wait).
func headUpstream(t *testing.T, respond func(c *net.TCPConn, r *http.Request)) string {
	t.Helper()
	return "http://" + acceptAll(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(3 * wireDeadline))
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		respond(c.(*net.TCPConn), r)
		io.Copy(io.Discard, c) // until miffy closes it
	})
}

// pump writes chunks of filler to c until limit bytes are written in all
// (counted in written) or a write fails, each write bounded by wireDeadline
// times 3; it returns the error that stopped it, if any.
func pump(c *net.TCPConn, filler byte, limit int64, written *atomic.Int64) error {
	chunk := bytes.Repeat([]byte{filler}, 64<<10)
	for written.Load() < limit {
		c.SetWriteDeadline(time.Now().Add(3 * wireDeadline))
		n, err := c.Write(chunk)
		written.Add(int64(n))
		if err != nil {
			return err
		}
	}
	return nil
}

// startNginxFront runs nginx as a plain reverse proxy in front of the
// stack's reference tape (keep-alive to it, HTTP/1.1), for the suite's
// baseline, and sets st.front to it. It skips the test without nginx.
func startNginxFront(t *testing.T, st *smuggleStack) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		skipWithoutInCI(t, "nginx is not on PATH (.ci/run installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers must reach files under t.TempDir()
	}
	conf := fmt.Sprintf(`%[3]s
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream reference { server %[4]s; keepalive 8; }
    server {
        listen %[2]s;
        location / {
            proxy_pass http://reference;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, addr, user, st.ref.addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runNginx(t, bin, dir, path, addr)
	st.front = "http://" + addr
}

// smuggleStack is a front (miffy, or nginx as a baseline) with three
// recording upstreams.
type smuggleStack struct {
	in             *instance // nil for nginx
	front          string    // base URL clients connect to
	ref, cand, sec *tape
}

// startSmuggleStack runs miffy in front of three tapes, with one shadowed
// route /api/{v} (side effects allowed, so POSTs are replayed too);
// routeExtra is added to that route's inline table.
func startSmuggleStack(t *testing.T, routeExtra string) *smuggleStack {
	t.Helper()
	st := &smuggleStack{ref: newTape(t, "reference"), cand: newTape(t, "candidate"), sec: newTape(t, "secondary")}
	st.in = startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "1s"
reference = "`+st.ref.url()+`"
candidate = "`+st.cand.url()+`"
secondary = "`+st.sec.url()+`"
routes = [{ path = "/api/{v}", key = "v", allow_side_effects = true`+routeExtra+` }]
[publish]
mode = "none"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	st.front = st.in.proxy
	return st
}

func (st *smuggleStack) tapes() []*tape { return []*tape{st.ref, st.cand, st.sec} }

// settle stops miffy: its shutdown drains the client requests and waits
// for the replays, so afterwards every byte miffy was going to send an
// upstream has been sent. The event the "nothing reached an upstream"
// checks wait on.
func (st *smuggleStack) settle(t *testing.T) {
	t.Helper()
	if st.in == nil {
		return // nginx forwards before it answers, and replays nothing
	}
	if err := st.in.stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
}

// leaked reports, for a case's id, which upstreams received bytes of the
// requests that must never be forwarded: those whose paths hold
// "atk-<id>" (the ambiguous request) or "smuggled-<id>" (the request
// hidden in its body).
func (st *smuggleStack) leaked(id string) []string {
	var out []string
	for _, tp := range st.tapes() {
		raw := tp.received()
		for _, m := range []string{"atk-" + id, "smuggled-" + id} {
			if strings.Contains(raw, m) {
				out = append(out, fmt.Sprintf("%s received %q: %.300q", tp.name, m, excerpt(raw, m)))
			}
		}
	}
	return out
}

// excerpt is raw from the start of the line holding the first m, for
// failure messages.
func excerpt(raw, m string) string {
	i := strings.Index(raw, m)
	from := strings.LastIndexByte(raw[:max(i, 0)], '\n') + 1
	return raw[from:min(len(raw), from+300)]
}

// conversation is one case run on its own connection; it returns what
// went wrong, so that all cases can run at once (the waits for a
// connection that is never closed then overlap) and be reported each in
// its own subtest.
type conversation struct {
	name, id string
	probe    string // the framing probe's name, if it is one
	run      func() []string
}

// converse runs the conversations concurrently, lets miffy settle, and
// reports each one's problems, and any bytes of it that reached an
// upstream, under its name.
func converse(t *testing.T, st *smuggleStack, convs []conversation) {
	t.Helper()
	problems := runConcurrently(convs)
	st.settle(t)
	for i, c := range convs {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range problems[i] {
				t.Error(p)
			}
			for _, l := range st.leaked(c.id) {
				t.Error(l)
			}
		})
	}
}

// runConcurrently runs the conversations, a bounded number at a time
// (nginx's baseline has 256 worker connections, two a request), and
// returns each one's problems.
func runConcurrently(convs []conversation) [][]string {
	problems := make([][]string, len(convs))
	sem := make(chan struct{}, 24)
	var wg sync.WaitGroup
	for i, c := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			problems[i] = c.run()
		}()
	}
	wg.Wait()
	return problems
}

// stepKind says what a request on a connection may get.
type stepKind int

const (
	mustServe  stepKind = iota // valid: answered 200 by the reference
	mayServe                   // valid but unusual: 200, or an error and the connection closed
	mustReject                 // ambiguous: 400 (or one of also) and the connection closed
)

type step struct {
	kind stepKind
	raw  string // "@ID" is replaced by the case's id
	also []int
}

// runSteps sends the steps on one connection, step by step or all in one
// write, and checks each answer: the connection must end right after the
// first request that is rejected, and nothing may follow it.
func runSteps(front, id string, steps []step, pipelined bool) (problems []string) {
	w, err := openWire(front)
	if err != nil {
		return []string{err.Error()}
	}
	defer w.c.Close()
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if pipelined {
		var all strings.Builder
		for _, s := range steps {
			all.WriteString(strings.ReplaceAll(s.raw, "@ID", id))
		}
		if err := w.send(all.String()); err != nil {
			bad("sending: %v", err)
			return
		}
	}
	for i, s := range steps {
		if !pipelined {
			if err := w.send(strings.ReplaceAll(s.raw, "@ID", id)); err != nil {
				bad("step %d: sending: %v (the connection was closed after the step before)", i, err)
				return
			}
		}
		a, err := w.next()
		if err != nil {
			want := "200"
			if s.kind == mustReject {
				want = "400 and the connection closed"
			}
			bad("step %d: no answer: %v (want %s)", i, err, want)
			return
		}
		switch {
		case s.kind == mustServe && a.status != 200:
			bad("step %d (valid): answered %v, want 200", i, a)
			return
		case s.kind == mustReject && a.status != 400 && !slices.Contains(s.also, a.status):
			bad("step %d (ambiguous): answered %v, want 400%s", i, a, orAlso(s.also))
		}
		if s.kind == mustReject || a.status != 200 || a.close {
			// Rejected (or the last answer it said): nothing may follow.
			if err := w.closed(); err != nil {
				bad("step %d: after %d: %v (want the connection closed)", i, a.status, err)
			}
			return
		}
	}
	bad("the connection outlived every step")
	return
}

func orAlso(also []int) string {
	var b strings.Builder
	for _, s := range also {
		fmt.Fprintf(&b, " or %d", s)
	}
	return b.String()
}

// withoutRole removes the role header's lines from a raw request.
func withoutRole(raw string) string {
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	var keep []string
	for _, l := range strings.Split(head, "\r\n") {
		if name, _, _ := strings.Cut(l, ":"); strings.EqualFold(name, "X-Shadow-Test-Role") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\r\n") + "\r\n\r\n" + body
}

// hasDotSegment reports whether a request-target's path has a "." or ".."
// segment, percent-encoded or not (RFC 3986 6.2.2: "%2E" is ".").
func hasDotSegment(target string) bool {
	p, _, _ := strings.Cut(target, "?")
	p = strings.NewReplacer("%2e", ".", "%2E", ".").Replace(p)
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
