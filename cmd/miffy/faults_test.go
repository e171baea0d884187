package main

// The fault matrix: each case runs the real run() against real listeners on
// loopback with one upstream (or the broker) misbehaving, and checks what
// the client gets, what is recorded and what is counted. docs/RELIABILITY.md
// lists the cases.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/broker"
)

// clientBound is how long a client may wait for the reference's answer
// (or miffy's 502/504) whatever the other side does. Generous (the
// reference answers at once; -race on two shared cores is slow), and still
// shorter than what waiting would take: a hung replay waits faultTimeout, a
// slow reference answers after 5s.
const clientBound = 2 * time.Second

// faultTimeout is [shadow] timeout in the replay fault matrix.
const faultTimeout = 3 * time.Second

// faultCapBytes is [shadow] max_response_bytes in the fault configs.
const faultCapBytes = 256 << 10

// timedAnswer is a client's view of one request.
type timedAnswer struct {
	status int
	body   string
	err    error // transport error, or an error reading the body
	took   time.Duration
}

// timedGet does a GET with a deadline and reads the whole answer.
func timedGet(t *testing.T, url string, header ...string) timedAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return timedAnswer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return timedAnswer{status: resp.StatusCode, body: string(b), err: err, took: time.Since(start)}
}

// scrapeMetrics returns the management port's /metrics text.
func scrapeMetrics(t *testing.T, in *instance) string {
	t.Helper()
	code, body := get(t, in.mgmt+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}

// metricSample returns the value of the sample whose name and labels are
// exactly series (e.g. `miffy_publish_records_total{result="dropped"}`),
// and whether it is there.
func metricSample(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// metricTotal adds up every sample of a metric whose labels contain all of
// the given label pairs (`side="candidate"`).
func metricTotal(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		lbls, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(lbls, l)
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && match {
			sum += f
		}
	}
	return sum
}

// waitUntil polls cond until it holds, failing after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordsByKey reads n records from a topic and decodes them, by key.
func recordsByKey(t *testing.T, brokerAddr, topic string, n int) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range consume(t, brokerAddr, topic, n) {
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, r.Value)
		}
		out[string(r.Key)] = v
	}
	return out
}

// field walks a decoded record: field(rec, "candidate", "response", "status").
func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// Upstreams that misbehave.

// jsonServer answers every request with a JSON body.
func jsonServer(t *testing.T, body string) string {
	t.Helper()
	s := httptest.NewServer(answerJSON(body))
	t.Cleanup(s.Close)
	return s.URL
}

func answerJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

// slowUpstream answers after d (or gives up when the caller does).
func slowUpstream(d time.Duration) func(t *testing.T, body string) string {
	return func(t *testing.T, body string) string {
		t.Helper()
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
			answerJSON(body)(w, r)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
}

// hungUpstream accepts requests and never answers them.
func hungUpstream(t *testing.T, _ string) string {
	t.Helper()
	stop := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return s.URL
}

// refusedUpstream is a loopback port nobody listens on.
func refusedUpstream(t *testing.T, _ string) string {
	t.Helper()
	return "http://" + deadAddr(t)
}

// deadAddr returns a loopback address that refuses connections until the
// test ends: a socket bound to it that never listens holds the port, so no
// listener started later in the test (miffy's own, a test server) can be
// given it. A port merely closed again could be, and a "refused" upstream
// would then be miffy itself.
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

func TestDeadAddrRefuses(t *testing.T) {
	t.Parallel()
	addr := deadAddr(t)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("%s could be listened on while the test holds it", addr)
	}
}

// rawUpstream reads each request on a connection and lets respond write
// raw bytes; the connection is closed after that.
func rawUpstream(t *testing.T, respond func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				respond(c.(*net.TCPConn))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func jsonHead(contentLength int) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(contentLength) + "\r\n\r\n"
}

// resetMidBody sends the headers and half the body, then a TCP reset.
func resetMidBody(t *testing.T, body string) string {
	return rawUpstream(t, func(c *net.TCPConn) {
		io.WriteString(c, jsonHead(len(body)+100)+body[:len(body)/2])
		c.SetLinger(0)
	})
}

// declaresMore promises more bytes than it sends, then closes cleanly.
func declaresMore(t *testing.T, body string) string {
	return rawUpstream(t, func(c *net.TCPConn) {
		io.WriteString(c, jsonHead(len(body)+100)+body)
	})
}

// declaresLess sends more bytes than its Content-Length says.
func declaresLess(t *testing.T, body string) string {
	return rawUpstream(t, func(c *net.TCPConn) {
		io.WriteString(c, jsonHead(len(body))+body+`{"smuggled":true}`)
	})
}

// notHTTP answers with bytes that are not HTTP.
func notHTTP(t *testing.T, _ string) string {
	return rawUpstream(t, func(c *net.TCPConn) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP\r\n\r\n")
	})
}

// hugeBody is the size of the answers of hugeUpstream: 8 times the cap.
const hugeBody = 8 * faultCapBytes

// hugeUpstream answers with hugeBody bytes of text.
func hugeUpstream(t *testing.T, _ string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(hugeBody))
		line := strings.Repeat("x", 1023) + "\n"
		for range hugeBody / len(line) {
			if _, err := io.WriteString(w, line); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// httpsToPlain is an https URL whose listener speaks plain HTTP.
func httpsToPlain(t *testing.T, body string) string {
	return "https://" + strings.TrimPrefix(jsonServer(t, body), "http://")
}

// selfSigned is an https upstream whose certificate nobody trusts.
func selfSigned(t *testing.T, body string) string {
	t.Helper()
	s := httptest.NewTLSServer(answerJSON(body))
	// The handshake fails on miffy's side; the server's log line about it
	// is noise.
	s.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	t.Cleanup(s.Close)
	return s.URL
}

// faultCase is one way an upstream misbehaves.
type faultCase struct {
	name  string
	start func(t *testing.T, body string) string // returns the upstream's base URL
	// kind is the error kind of a replayed side in the record and in
	// miffy_upstream_errors_total; "" means it answered (and was compared).
	kind string
	// check looks further at the faulty side in the record.
	check func(t *testing.T, side map[string]any)
}

func replayFaults() []faultCase {
	return []faultCase{
		{name: "slow but within the shadow timeout", start: slowUpstream(300 * time.Millisecond),
			check: sideStatus(200)},
		{name: "hung", start: hungUpstream, kind: "timeout"},
		{name: "connection refused", start: refusedUpstream, kind: "refused"},
		{name: "reset mid-body", start: resetMidBody, kind: "reset",
			check: sideStatus(200)}, // the status line came, then the body broke off
		{name: "Content-Length larger than the body", start: declaresMore, kind: "reset"},
		{name: "Content-Length smaller than the body", start: declaresLess,
			check: func(t *testing.T, s map[string]any) {
				// Compared as framed: the declared bytes, not what followed.
				if v := field(s, "response", "body", "value", "smuggled"); v != nil {
					t.Errorf("bytes past Content-Length were kept: %v", field(s, "response", "body"))
				}
			}},
		{name: "huge body", start: hugeUpstream,
			check: func(t *testing.T, s map[string]any) {
				body := field(s, "response", "body")
				if field(body, "truncated") != true || field(body, "size") != float64(faultCapBytes) {
					t.Errorf("body %.200v: want truncated at %d bytes ([shadow] max_response_bytes)", body, faultCapBytes)
				}
			}},
		{name: "invalid HTTP", start: notHTTP, kind: "malformed_response"},
		{name: "https URL, plain HTTP listener", start: httpsToPlain, kind: "other",
			check: sideError("TLS handshake")},
		{name: "self-signed certificate", start: selfSigned, kind: "other",
			check: sideError("certificate")},
	}
}

func sideStatus(code int) func(t *testing.T, s map[string]any) {
	return func(t *testing.T, s map[string]any) {
		t.Helper()
		if got := field(s, "response", "status"); got != float64(code) {
			t.Errorf("response status %v, want %d: %v", got, code, s)
		}
	}
}

func sideError(substr string) func(t *testing.T, s map[string]any) {
	return func(t *testing.T, s map[string]any) {
		t.Helper()
		if e := field(s, "response", "error"); e != "request" && e != "body" {
			t.Errorf("response error %v, want miffy 1.0's request or body", e)
		}
		if msg, _ := field(s, "response", "error_detail").(string); !strings.Contains(msg, substr) {
			t.Errorf("response error_detail %q, want it to mention %q", msg, substr)
		}
	}
}

// TestFaultCandidate: whatever the candidate does, the client gets the
// reference's answer within clientBound, and the failure is in the record
// (candidate.error_kind) and in miffy_upstream_errors_total.
func TestFaultCandidate(t *testing.T) { replayFaultMatrix(t, "candidate") }

// TestFaultSecondary: the same faults on the secondary reference.
func TestFaultSecondary(t *testing.T) {
	if testing.Short() {
		t.Skip("the candidate matrix covers the same code in -short")
	}
	replayFaultMatrix(t, "secondary")
}

func replayFaultMatrix(t *testing.T, side string) {
	for _, tc := range replayFaults() {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			b := startBroker(t)
			ref := jsonServer(t, `{"a":1}`)
			var cand, secondary string
			if side == "candidate" {
				cand = tc.start(t, `{"a":2}`)
			} else {
				cand = jsonServer(t, `{"a":2}`) // differs: a record is published
				secondary = `, secondary = "` + tc.start(t, `{"a":1}`) + `"`
			}
			in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+cand+`"
routes = [{ path = "/api/{v}", key = "v"`+secondary+` }]
[shadow]
timeout = "`+faultTimeout.String()+`"
max_response_bytes = `+strconv.Itoa(faultCapBytes)+`
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
			got := timedGet(t, in.proxy+"/api/1")
			if got.err != nil || got.status != 200 || got.body != `{"a":1}` {
				t.Fatalf("client got %d %q %v, want the reference's answer", got.status, got.body, got.err)
			}
			if got.took > clientBound {
				t.Errorf("client waited %v for the reference's answer", got.took)
			}

			rec := recordsByKey(t, b.Addr(), "miffy", 1)["1"]
			s, _ := field(rec, side).(map[string]any)
			if s == nil {
				t.Fatalf("record has no %s: %v", side, rec)
			}
			if kind, _ := s["error_kind"].(string); kind != tc.kind {
				t.Errorf("%s.error_kind = %q, want %q (%v)", side, kind, tc.kind, s["response"])
			}
			if tc.check != nil {
				tc.check(t, s)
			}
			metrics := scrapeMetrics(t, in)
			errs := metricTotal(metrics, "miffy_upstream_errors_total", `side="`+side+`"`)
			if tc.kind == "" {
				if errs != 0 {
					t.Errorf("miffy_upstream_errors_total{side=%q} = %v, want 0", side, errs)
				}
				return
			}
			series := `miffy_upstream_errors_total{kind="` + tc.kind + `",route="/api/{v}",side="` + side + `"}`
			if v, _ := metricSample(metrics, series); v != 1 {
				t.Errorf("%s = %v, want 1", series, v)
			}
		})
	}
}

// TestFaultReference: when the reference fails the client gets 502 (cannot
// be reached, invalid answer, TLS error) or 504 (slower than [proxy]
// reference_timeout) within clientBound; a reference that breaks off
// mid-body breaks the client's answer the same way. No record is published
// for the failed request, and the next request on a healthy route works.
func TestFaultReference(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, body string) string
		// want is the client's status; 200 with bodyErr when the body
		// breaks off, as it did from the reference.
		want    int
		bodyErr bool
		kind    string // miffy_upstream_errors_total{side="reference"}; "" = none
		failed  bool   // the replay is skipped: reference_error, no record
	}{
		{"slower than reference_timeout", slowUpstream(5 * time.Second), 504, false, "timeout", true},
		{"hung", hungUpstream, 504, false, "timeout", true},
		{"connection refused", refusedUpstream, 502, false, "refused", true},
		{"reset mid-body", resetMidBody, 200, true, "", true},
		{"Content-Length larger than the body", declaresMore, 200, true, "", true},
		{"Content-Length smaller than the body", declaresLess, 200, false, "", false},
		{"invalid HTTP", notHTTP, 502, false, "malformed_response", true},
		{"https URL, plain HTTP listener", httpsToPlain, 502, false, "other", true},
		{"self-signed certificate", selfSigned, 502, false, "other", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			b := startBroker(t)
			in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+tt.start(t, `{"a":1}`)+`"
candidate = "`+jsonServer(t, `{"a":1}`)+`"
routes = [
  { path = "/api/{v}", key = "v" },
  { path = "/ok/{v}", key = "marker", reference = "`+jsonServer(t, `{"ok":1}`)+`", candidate = "`+jsonServer(t, `{"ok":2}`)+`" },
]
[proxy]
reference_timeout = "300ms"
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
			got := timedGet(t, in.proxy+"/api/1")
			if got.status != tt.want || (got.err != nil) != tt.bodyErr {
				t.Errorf("client got %d %q (error %v), want %d with a broken body: %v", got.status, got.body, got.err, tt.want, tt.bodyErr)
			}
			if tt.want == 200 && !tt.bodyErr && got.body != `{"a":1}` {
				t.Errorf("client got body %q, want the declared %q", got.body, `{"a":1}`)
			}
			if got.took > clientBound {
				t.Errorf("client waited %v", got.took)
			}

			// Nothing else is broken: a healthy route answers, and its
			// mismatch is the only record.
			ok := timedGet(t, in.proxy+"/ok/1")
			if ok.err != nil || ok.status != 200 || ok.body != `{"ok":1}` || ok.took > clientBound {
				t.Errorf("healthy route after the fault: %d %q %v in %v", ok.status, ok.body, ok.err, ok.took)
			}
			if recs := recordsByKey(t, b.Addr(), "miffy", 1); recs["marker"] == nil {
				t.Fatalf("first record is not the healthy route's: %v", recs)
			}
			metrics := scrapeMetrics(t, in)
			skipped, _ := metricSample(metrics, `miffy_shadow_skipped_total{reason="reference_error",route="/api/{v}"}`)
			if want := map[bool]float64{true: 1, false: 0}[tt.failed]; skipped != want {
				t.Errorf("miffy_shadow_skipped_total{reason=reference_error} = %v, want %v", skipped, want)
			}
			if tt.kind != "" {
				series := `miffy_upstream_errors_total{kind="` + tt.kind + `",route="/api/{v}",side="reference"}`
				if v, _ := metricSample(metrics, series); v != 1 {
					t.Errorf("%s = %v, want 1", series, v)
				}
			}
			if err := in.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			if n := countRecords(t, b.Addr(), "miffy"); n != 1 {
				t.Errorf("topic holds %d records after shutdown, want only the healthy route's", n)
			}
		})
	}
}

// TestFaultHugeBodies: answers larger than [shadow] max_response_bytes
// reach the client whole, are compared by their first bytes, and are
// marked truncated in the record.
func TestFaultHugeBodies(t *testing.T) {
	checkLeaks(t)
	b := startBroker(t)
	// Both sides send hugeBody bytes; "same" differs only past the cap,
	// "diff" within it.
	huge := func(diffAt int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body := []byte(strings.Repeat("y", hugeBody))
			if r.Header.Get("X-Shadow-Test-Role") == "candidate" {
				i := diffAt
				if strings.HasSuffix(r.URL.Path, "/diff") {
					i = 10
				}
				body[i] = 'z'
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}
	}
	up := httptest.NewServer(huge(hugeBody - 1))
	t.Cleanup(up.Close)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+up.URL+`"
candidate = "`+up.URL+`"
routes = [{ path = "/h/{v}", key = "v" }]
[shadow]
max_response_bytes = `+strconv.Itoa(faultCapBytes)+`
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
	for _, p := range []string{"/h/same", "/h/diff"} {
		got := timedGet(t, in.proxy+p)
		if got.err != nil || got.status != 200 || len(got.body) != hugeBody || strings.Contains(got.body, "z") {
			t.Fatalf("%s: client got %d, %d bytes, %v; want the reference's %d bytes", p, got.status, len(got.body), got.err, hugeBody)
		}
	}
	rec := recordsByKey(t, b.Addr(), "miffy", 1)["diff"]
	if rec == nil {
		t.Fatal("no record for /h/diff")
	}
	for _, side := range []string{"reference", "candidate"} {
		body := field(rec, side, "response", "body")
		if field(body, "truncated") != true || field(body, "size") != float64(faultCapBytes) {
			t.Errorf("%s body %.120v: want truncated at %d", side, body, faultCapBytes)
		}
	}
	metrics := scrapeMetrics(t, in)
	if v, _ := metricSample(metrics, `miffy_replays_total{result="compared",route="/h/{v}"}`); v != 2 {
		t.Errorf("replays compared = %v, want 2", v)
	}
	if v, _ := metricSample(metrics, `miffy_mismatches_total{class="regression",route="/h/{v}"}`); v != 1 {
		t.Errorf("mismatches = %v, want 1 (/h/same is equal in its first %d bytes)", v, faultCapBytes)
	}
}

// TestFaultBrokerDownAtStart: with nothing listening at bootstrap.servers
// miffy starts, /readyz is 503 naming the broker, clients are unaffected
// and the records wait in the buffer.
func TestFaultBrokerDownAtStart(t *testing.T) {
	checkLeaks(t)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
# nothing can be delivered: the shutdown gives up on the records soon
shutdown_timeout = "200ms"
reference = "`+jsonServer(t, `{"a":1}`)+`"
candidate = "`+jsonServer(t, `{"a":2}`)+`"
routes = [{ path = "/api/{v}", key = "v" }]
[kafka]
"bootstrap.servers" = "`+deadAddr(t)+`"
`)
	for i := range 3 {
		got := timedGet(t, in.proxy+"/api/"+strconv.Itoa(i))
		if got.err != nil || got.status != 200 || got.body != `{"a":1}` || got.took > clientBound {
			t.Fatalf("client got %d %q %v in %v", got.status, got.body, got.err, got.took)
		}
	}
	code, body := get(t, in.mgmt+"/readyz")
	if code != 503 || !strings.Contains(body, `"broker"`) {
		t.Errorf("/readyz = %d %s, want 503 naming the broker", code, body)
	}
	waitUntil(t, 5*time.Second, "3 buffered records", func() bool {
		v, _ := metricSample(scrapeMetrics(t, in), "miffy_publish_buffered_records")
		return v == 3
	})
	if err := in.stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestFaultBrokerRestartReadiness: the broker goes away mid-run and comes
// back on the same address with the same data: clients never notice and
// /readyz follows the broker. That the records made meanwhile are delivered
// (and those past the buffer dropped and counted) is
// TestBrokerOutageBuffersAndRecovers (delivery_test.go).
func TestFaultBrokerRestartReadiness(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	b1, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", DataDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b1.Close)
	addr := b1.Addr()
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
# if the test fails with the broker down: do not wait 30s for the last tally
shutdown_timeout = "2s"
access_log = false
reference = "`+jsonServer(t, `{"a":1}`)+`"
candidate = "`+jsonServer(t, `{"a":2}`)+`"
routes = [{ path = "/api/{v}", key = "v" }]
[kafka]
"bootstrap.servers" = "`+addr+`"
`)
	ask := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			got := timedGet(t, in.proxy+"/api/"+strconv.Itoa(i))
			if got.err != nil || got.status != 200 || got.body != `{"a":1}` || got.took > clientBound {
				t.Fatalf("request %d: client got %d %q %v in %v", i, got.status, got.body, got.err, got.took)
			}
		}
	}
	ask(0, 3)
	recordsByKey(t, addr, "miffy", 3)

	b1.Close()
	ask(3, 8)
	waitUntil(t, 10*time.Second, "/readyz 503 while the broker is down", func() bool {
		code, _ := get(t, in.mgmt+"/readyz")
		return code == 503
	})

	b2, err := broker.Start(broker.Config{Addr: addr, DataDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close)
	waitUntil(t, 10*time.Second, "/readyz 200 after the restart", func() bool {
		code, _ := get(t, in.mgmt+"/readyz")
		return code == 200
	})
	ask(8, 10)
	recordsByKey(t, addr, "miffy", 10)
	// Stopped while b2 is up (its cleanup would run first): the last
	// tallies are delivered at once.
	if err := in.stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
}
