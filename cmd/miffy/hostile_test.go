package main

// Hostile input: clients that are slow on purpose, oversized, ambiguous
// about where a request ends, or that try to make miffy call somewhere
// else; and secrets that must stay out of records and logs.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// seenRequest is what an upstream was asked.
type seenRequest struct {
	uri, host, role string
}

// recorder is an upstream that keeps what it was asked.
type recorder struct {
	url  string
	mu   sync.Mutex
	seen []seenRequest
}

func newRecorder(t *testing.T, body string) *recorder {
	t.Helper()
	rec := &recorder{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{uri: r.RequestURI, host: r.Host, role: r.Header.Get("X-Shadow-Test-Role")})
		rec.mu.Unlock()
		answerJSON(body)(w, r)
	}))
	t.Cleanup(s.Close)
	rec.url = s.URL
	return rec
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

func (rec *recorder) host() string { return strings.TrimPrefix(rec.url, "http://") }

// trap is a listener nothing should ever connect to.
type trap struct {
	addr    string
	accepts atomic.Int64
}

func newTrap(t *testing.T) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{addr: ln.Addr().String()}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.accepts.Add(1)
			c.Close()
		}
	}()
	return tr
}

// rawRequest writes raw bytes to miffy's proxy port and reads one answer.
func rawRequest(t *testing.T, proxyURL, raw string) (*http.Response, string, error) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestHostileSlowloris: a client that sends its headers a byte at a time is
// cut off at [proxy] read_header_timeout, and the reference never hears of it.
func TestHostileSlowloris(t *testing.T) {
	checkLeaks(t)
	ref := newRecorder(t, `{"a":1}`)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
reference = "`+ref.url+`"
candidate = "`+ref.url+`"
[proxy]
read_header_timeout = "500ms"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	c, err := net.Dial("tcp", strings.TrimPrefix(in.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if _, err := io.WriteString(c, "GET /api/1 HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c) // until miffy closes the connection
	took := time.Since(start)
	close(stop)
	<-writerDone
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", took)
	}
	// Not before the timeout; after it, any time before the client's own
	// 5s deadline (a loaded machine is slow to close).
	if took < 400*time.Millisecond || took > 4*time.Second {
		t.Errorf("connection closed after %v, want about read_header_timeout (500ms)", took)
	}
	if n := len(ref.requests()); n != 0 {
		t.Errorf("the reference got %d requests", n)
	}
}

// TestHostileIdleTimeout: a keep-alive connection left idle is closed at
// [proxy] idle_timeout.
func TestHostileIdleTimeout(t *testing.T) {
	checkLeaks(t)
	ref := newRecorder(t, `{"a":1}`)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref.url+`"
candidate = "`+ref.url+`"
[proxy]
idle_timeout = "500ms"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	c, err := net.Dial("tcp", strings.TrimPrefix(in.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idle := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	// Not before the timeout; after it, any time before the client's own
	// 5s deadline (a loaded machine is slow to close).
	if took := time.Since(idle); took < 300*time.Millisecond || took > 4*time.Second {
		t.Errorf("idle connection closed after %v, want about idle_timeout (500ms)", took)
	}
}

// TestHostileSizeLimits: headers over [proxy] max_header_bytes get 431, a
// body over max_request_body_bytes 413; a declared oversized body never
// reaches the reference.
func TestHostileSizeLimits(t *testing.T) {
	checkLeaks(t)
	ref := newRecorder(t, `{"a":1}`)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
# the broker is down or gone at the end: do not wait 30s for the last tally
shutdown_timeout = "2s"
access_log = false
reference = "`+ref.url+`"
candidate = "`+ref.url+`"
routes = [{ path = "/api/{v}", key = "v" }]
[proxy]
max_header_bytes = 4096
max_request_body_bytes = 1024
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	big := strings.Repeat("b", 4096)
	chunked := func(head string) string {
		return head + "Transfer-Encoding: chunked\r\n\r\n1000\r\n" + big + "\r\n0\r\n\r\n"
	}
	tests := []struct {
		name, raw string
		want      int
		reaches   bool // the reference may see the start of it
	}{
		{"headers over max_header_bytes", "GET /api/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 64<<10) + "\r\n\r\n", 431, false},
		{"declared body, shadowed route", "GET /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + big, 413, false},
		{"declared body, unshadowed method", "POST /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + big, 413, false},
		{"declared body, unrouted", "PUT /other HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + big, 413, false},
		{"chunked body, shadowed route", chunked("GET /api/2 HTTP/1.1\r\nHost: x\r\n"), 413, false},
		{"chunked body, unrouted", chunked("POST /other HTTP/1.1\r\nHost: x\r\n"), 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ref.requests())
			resp, body, err := rawRequest(t, in.proxy, tt.raw)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if n := len(ref.requests()) - before; n != 0 && !tt.reaches {
				t.Errorf("the reference got the request")
			}
		})
	}
	if code, _ := get(t, in.proxy+"/api/3"); code != 200 {
		t.Errorf("a normal request after the limits: %d", code)
	}
}

// TestHostileFraming: requests whose end is ambiguous (request smuggling)
// are rejected and never reach the reference.
func TestHostileFraming(t *testing.T) {
	checkLeaks(t)
	ref := newRecorder(t, `{"a":1}`)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref.url+`"
candidate = "`+ref.url+`"
routes = [{ path = "/api/{v}", key = "v", allow_side_effects = true }]
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	const chunk = "3\r\nabc\r\n0\r\n\r\n"
	tests := []struct {
		name, raw string
		want      int
	}{
		{"Content-Length and Transfer-Encoding", "POST /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, 400},
		{"Transfer-Encoding and Content-Length", "POST /other HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 13\r\n\r\n" + chunk, 400},
		{"two differing Content-Length", "POST /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400},
		{"Content-Length list", "POST /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 5\r\n\r\nabcde", 400},
		{"space before the colon", "POST /api/1 HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", 400},
		{"Transfer-Encoding twice", "POST /api/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, 400},
		{"Transfer-Encoding other than chunked", "POST /api/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunk, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ref.requests())
			resp, body, err := rawRequest(t, in.proxy, tt.raw)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if seen := ref.requests()[before:]; len(seen) != 0 {
				t.Errorf("the reference got %v", seen)
			}
		})
	}
}

// TestHostileRequestTarget: whatever the request line and Host header say,
// miffy calls only the configured upstreams, under their base paths.
func TestHostileRequestTarget(t *testing.T) {
	checkLeaks(t)
	ref := newRecorder(t, `{"a":1}`)
	cand := newRecorder(t, `{"a":1}`)
	trap := newTrap(t)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
# the broker is down or gone at the end: do not wait 30s for the last tally
shutdown_timeout = "2s"
access_log = false
reference = "`+ref.url+`/base"
candidate = "`+cand.url+`/cbase"
routes = [{ path = "/api/{v}", key = "v" }]
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	tests := []struct {
		name, raw string
		want      int
		shadowed  bool // the candidate gets a copy too
	}{
		{"absolute-form URI", "GET http://" + trap.addr + "/api/1 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n", 200, true},
		{"Host header elsewhere", "GET /api/2 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n", 200, true},
		{"authority-like path", "GET //" + trap.addr + "/api/3 HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
		{"encoded slashes and dots", "GET /api/..%2f..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n", 200, true},
		{"encoded dot segments", "GET /api/%2e%2e/%2e%2e/admin HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
		{"dot segments", "GET /api/../../admin HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refBefore, candBefore := len(ref.requests()), len(cand.requests())
			resp, body, err := rawRequest(t, in.proxy, tt.raw)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode == 400 {
				return // refusing is fine too
			}
			if resp.StatusCode != tt.want {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			seen := ref.requests()[refBefore:]
			if len(seen) != 1 {
				t.Fatalf("the reference got %d requests, want 1", len(seen))
			}
			checkUnder(t, "reference", seen[0], "/base/", ref.host())
			if !tt.shadowed {
				return
			}
			waitUntil(t, 5*time.Second, "the candidate's copy", func() bool { return len(cand.requests()) > candBefore })
			checkUnder(t, "candidate", cand.requests()[candBefore], "/cbase/", cand.host())
		})
	}
	t.Run("CONNECT", func(t *testing.T) {
		before := len(ref.requests())
		resp, body, err := rawRequest(t, in.proxy, "CONNECT "+trap.addr+" HTTP/1.1\r\nHost: "+trap.addr+"\r\n\r\n")
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("CONNECT: %d %q, want 400 (authority form is refused)", resp.StatusCode, body)
		}
		if len(ref.requests()) != before {
			t.Errorf("the reference got the CONNECT")
		}
	})
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := trap.accepts.Load(); n != 0 {
		t.Errorf("miffy connected to the address named by the client %d times", n)
	}
}

// checkUnder fails unless an upstream saw the request with its own Host and
// a path that stays under base, as sent and after removing dot segments
// as an upstream that normalises paths would (RFC 3986 6.2.2: "%2E" is
// ".", an unreserved character; "%2F" stays data).
func checkUnder(t *testing.T, side string, r seenRequest, base, host string) {
	t.Helper()
	if r.host != host {
		t.Errorf("%s got Host %q, want its own %q", side, r.host, host)
	}
	p, _, _ := strings.Cut(r.uri, "?")
	if !strings.HasPrefix(p, base) {
		t.Errorf("%s got %q, outside %s", side, r.uri, base)
	}
	dots := strings.NewReplacer("%2e", ".", "%2E", ".").Replace(p)
	if clean := path.Clean(dots); !strings.HasPrefix(clean+"/", base) {
		t.Errorf("%s got %q, which resolves to %q, outside %s", side, r.uri, clean, base)
	}
}

// Secrets.

// TestSecretsRedacted: credentials in headers, query parameters (any case)
// and JSON members (any depth, camelCase too), all by the default lists, are
// redacted in records, and appear nowhere in miffy's output, even at debug
// level with the access log and debug_bodies on.
func TestSecretsRedacted(t *testing.T) {
	checkLeaks(t)
	b := startBroker(t)
	secrets := map[string]string{
		"Authorization":       "Bearer secret-authorization-1",
		"Cookie":              "sid=secret-cookie-2",
		"Proxy-Authorization": "Basic secret-proxy-authorization-3",
		"X-Api-Key":           "secret-api-key-4",
		"X-Auth-Token":        "secret-auth-token-10",
		"X-Csrf-Token":        "secret-csrf-token-11",
	}
	const (
		querySecret1   = "secret-query-api-key-12"
		querySecret2   = "secret-query-access-token-13"
		querySecret3   = "secret-query-unrouted-14"
		unroutedSecret = "secret-unrouted-body-16"
		nestedSecret   = "secret-nested-json-17"
	)
	const (
		reqSecret   = "secret-password-5"
		setCookie   = "session=secret-set-cookie-6"
		refToken    = "secret-token-7"
		candToken   = "secret-token-8"
		respKeyHead = "secret-response-key-9"
		urlPassword = "secret-upstream-password-18"
	)
	upstream := func(token, n string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Set-Cookie", setCookie)
			w.Header().Set("X-Api-Key", respKeyHead)
			answerJSON(`{"token":"`+token+`","n":`+n+`}`)(w, r)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
log_level = "debug"
access_log = true
reference = "`+strings.Replace(upstream(refToken, "1"), "://", "://miffy:"+urlPassword+"@", 1)+`"
candidate = "`+upstream(candToken, "2")+`"
routes = [{ path = "/api/{v}", key = "v", allow_side_effects = true }]
[proxy]
debug_requests = true
debug_bodies = true
[publish]
console = true
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
	req, err := http.NewRequest("POST", in.proxy+"/api/1?api_key="+querySecret1+"&x=1&Access_Token="+querySecret2, strings.NewReader(`{"user":"u","password":"`+reqSecret+`","session":{"accessToken":"`+nestedSecret+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range secrets {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if code, _ := get(t, in.proxy+"/unrouted?TOKEN="+querySecret3); code != 200 {
		t.Errorf("unrouted request: status %d", code)
	}
	unrouted, err := http.Post(in.proxy+"/unrouted", "application/json", strings.NewReader(`{"password":"`+unroutedSecret+`","visible":"unrouted-body-15"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, unrouted.Body)
	unrouted.Body.Close()

	recs := consume(t, b.Addr(), "miffy", 1)
	value := string(recs[0].Value)
	var rec map[string]any
	if err := json.Unmarshal(recs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]string{
		{"request", "headers", "authorization"},
		{"request", "headers", "cookie"},
		{"request", "headers", "x-api-key"},
		{"request", "headers", "x-auth-token"},
		{"request", "headers", "x-csrf-token"},
		{"request", "body", "value", "password"},
		{"request", "body", "value", "session", "accessToken"},
		{"reference", "response", "headers", "set-cookie"},
		{"reference", "response", "headers", "x-api-key"},
		{"reference", "response", "body", "value", "token"},
		{"candidate", "response", "body", "value", "token"},
	} {
		if got := field(rec, p...); got != "[REDACTED]" {
			t.Errorf("record %s = %v, want [REDACTED]", strings.Join(p, "."), got)
		}
	}
	const query = "?api_key=[REDACTED]&x=1&Access_Token=[REDACTED]"
	for _, p := range [][]string{{"request", "uri"}, {"reference", "url"}, {"candidate", "url"}} {
		if got, _ := field(rec, p...).(string); !strings.HasSuffix(got, "/api/1"+query) {
			t.Errorf("record %s = %q, want it to end in /api/1%s", strings.Join(p, "."), got, query)
		}
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	all := []string{reqSecret, setCookie, refToken, candToken, respKeyHead, urlPassword, querySecret1, querySecret2, querySecret3, unroutedSecret, nestedSecret}
	for _, v := range secrets {
		all = append(all, v)
	}
	for where, text := range map[string]string{"record": value, "log": in.stderr.String(), "console": in.stdout.String()} {
		for _, s := range all {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", where, s)
			}
		}
	}
	if !strings.Contains(in.stderr.String(), `"method":"POST"`) && !strings.Contains(in.stderr.String(), "POST") {
		t.Errorf("no access log line: the log check proves nothing\n%s", in.stderr)
	}
	// debug_bodies: the unrouted request's body and the compared answers
	// are logged, redacted; the log checks above would prove nothing
	// without them.
	for _, want := range []string{"unrouted-body-15", `\"n\":2`, `\"n\":1`} {
		if !strings.Contains(in.stderr.String(), want) {
			t.Errorf("the debug log lacks %s\n%s", want, in.stderr)
		}
	}
	if !strings.Contains(in.stderr.String(), "TOKEN=[REDACTED]") {
		t.Errorf("no access log line of the unrouted request: the log check proves nothing\n%s", in.stderr)
	}
}

// TestSecretsKafkaPasswordNeverPrinted: a SASL password given in the
// environment is printed neither by check-config nor in the startup log at
// debug level (which includes the effective config and the Kafka client's
// own lines).
func TestSecretsKafkaPasswordNeverPrinted(t *testing.T) {
	checkLeaks(t)
	const password = "hunter2-sasl-secret"
	b := startBroker(t)
	config := `
port = %[1]d
management_port = %[2]d
log_level = "debug"
shutdown_timeout = "2s"
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
"security.protocol" = "sasl_plaintext"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "miffy"
`
	env := []string{"KAFKA_SASL_PASSWORD=" + password}
	in := startMiffy(t, config, env...)
	// Let the client try (and fail) to authenticate, so that its log lines
	// are in too.
	waitUntil(t, 10*time.Second, "a readiness check", func() bool {
		code, _ := get(t, in.mgmt+"/readyz")
		return code != 0
	})
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	logs := in.stderr.String()
	if !strings.Contains(logs, "sasl.password") {
		t.Errorf("the effective config is not in the debug log: the check proves nothing\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Errorf("the log holds the SASL password:\n%s", logs)
	}

	path := t.TempDir() + "/config.toml"
	if err := writeFile(path, strings.NewReplacer("%[1]d", "8080", "%[2]d", "9000").Replace(config)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"check-config", path}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), password) || !strings.Contains(out.String(), "sasl.password") {
		t.Errorf("check-config output:\n%s", out.String())
	}
}

// TestManagementListensOnLoopbackByDefault: without [management] host the
// management port (metrics, pprof, readiness) binds 127.0.0.1 only.
func TestManagementListensOnLoopbackByDefault(t *testing.T) {
	checkLeaks(t)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
logging = "json"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	var addr string
	for _, line := range strings.Split(in.stderr.String(), "\n") {
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil && v["management"] != nil {
			addr, _ = v["management"].(string)
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Errorf("management listens on %q, want 127.0.0.1 (from the startup log)\n%s", addr, in.stderr)
	}
}

// TestPortInUseFailsCleanly: when the proxy's port is taken, run returns
// an error naming the key, having closed what it started (no goroutine of
// the proxy, the publishers or the listeners is left).
func TestPortInUseFailsCleanly(t *testing.T) {
	checkLeaks(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	writeFile(cfgPath, fmt.Sprintf(`
port = %d
management_port = %d
access_log = false
reference = "http://127.0.0.1:1"
candidate = "http://127.0.0.1:2"
[kafka]
"bootstrap.servers" = %q
`, taken.Addr().(*net.TCPAddr).Port, freePort(t), brokerAddr(t)))
	err = run(t.Context(), []string{"-config", cfgPath}, nil, io.Discard, io.Discard)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "port: listening") {
		t.Errorf("run = %v, want port: listening ... address already in use", err)
	}
}
