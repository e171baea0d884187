package main

// An independent, black-box request-smuggling and hardening suite for
// issue 18 ("Why" 1-9, "What to build" 2 and 6). Every test drives the real
// run() and talks raw bytes to it, as an attacker and a strict RFC 9112
// reviewer would; the upstreams are raw TCP listeners that record exactly
// what miffy sends them (smuggle_helpers_test.go), so each case checks what
// the client got, whether the connection was closed, and what reached the
// reference, the candidate and the secondary.
//
// Nothing here asserts the text of miffy's own error bodies: only status
// codes, connection ends and upstream bytes.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smuggled is the request hidden in the body of the ambiguous ones: served,
// it would answer the next client of a front proxy's shared connection.
const smuggled = "GET /api/smuggled-@ID HTTP/1.1\r\nHost: x\r\n\r\n"

// framingProbe is one request whose framing is ambiguous or malformed.
type framingProbe struct {
	name string
	raw  string // "@ID" is replaced by the case's id
	// also are statuses RFC 9112 allows besides 400 (501 for a transfer
	// coding the server does not implement when chunked is final).
	also []int
}

func framingProbes() []framingProbe {
	const post = "POST /api/atk-@ID HTTP/1.1\r\nHost: x\r\n"
	const end = "0\r\n\r\n"
	return []framingProbe{
		// Content-Length with Transfer-Encoding (RFC 9112 6.1, 6.3).
		{name: "CL then TE", raw: post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + end + smuggled},
		{name: "TE then CL", raw: post + "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n" + end + smuggled},
		{name: "CL and TE with HTTP/1.0", raw: "POST /api/atk-@ID HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + end + smuggled},
		// Several or malformed Content-Length values (RFC 9112 6.3 item 5).
		{name: "two different CL", raw: post + "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" + smuggled},
		{name: "two equal CL", raw: post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		{name: "CL list of different values", raw: post + "Content-Length: 3, 5\r\n\r\nabcde"},
		{name: "CL list of equal values", raw: post + "Content-Length: 3, 3\r\n\r\nabc"},
		{name: "CL -0", raw: post + "Content-Length: -0\r\n\r\n" + smuggled},
		{name: "CL +5", raw: post + "Content-Length: +5\r\n\r\nabcde"},
		{name: "CL -1", raw: post + "Content-Length: -1\r\n\r\n" + smuggled},
		{name: "CL hex", raw: post + "Content-Length: 0x5\r\n\r\nabcde"},
		{name: "CL with trailing letters", raw: post + "Content-Length: 5a\r\n\r\nabcde"},
		{name: "CL with inner space", raw: post + "Content-Length: 1 0\r\n\r\nabcdefghij"},
		{name: "CL empty", raw: post + "Content-Length: \r\n\r\n" + smuggled},
		{name: "CL beyond int64", raw: post + "Content-Length: 99999999999999999999\r\n\r\nabc", also: []int{413}},
		{name: "space before the colon", raw: post + "Content-Length : 0\r\nTransfer-Encoding : chunked\r\n\r\n" + end + smuggled},
		// A transfer coding other than one final chunked (RFC 9112 6.1:
		// chunked not final is a 400 and a close).
		{name: "TE gzip", raw: post + "Transfer-Encoding: gzip\r\n\r\n" + end + smuggled},
		{name: "TE identity", raw: post + "Transfer-Encoding: identity\r\n\r\n" + end + smuggled},
		{name: "TE chunked, identity", raw: post + "Transfer-Encoding: chunked, identity\r\n\r\n" + end + smuggled},
		{name: "TE xchunked", raw: post + "Transfer-Encoding: xchunked\r\n\r\n" + end + smuggled},
		{name: "TE empty", raw: post + "Transfer-Encoding: \r\n\r\n" + end + smuggled},
		{name: "TE chunked, chunked", raw: post + "Transfer-Encoding: chunked, chunked\r\n\r\n" + end + smuggled, also: []int{501}},
		{name: "TE chunked on two lines", raw: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + end + smuggled, also: []int{501}},
		{name: "TE gzip, chunked", raw: post + "Transfer-Encoding: gzip, chunked\r\n\r\n" + end + smuggled, also: []int{501}},
		{name: "TE with HTTP/1.0", raw: "POST /api/atk-@ID HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + end + smuggled},
		// Malformed chunked bodies (RFC 9112 7.1: chunk lines end in CRLF).
		{name: "bare LF after a chunk size", raw: post + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n" + end + smuggled},
		{name: "bare LF in a chunk extension", raw: post + "Transfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n" + end + smuggled},
		{name: "chunk size not hex", raw: post + "Transfer-Encoding: chunked\r\n\r\n3g\r\nabc\r\n" + end + smuggled},
		{name: "chunk size beyond int64", raw: post + "Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n" + end + smuggled},
		// obs-fold in any field (RFC 9112 5.2; issue 18: 400).
		{name: "obs-fold in a custom field", raw: post + "X-Note: a\r\n b\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "obs-fold with a tab", raw: post + "X-Note: a\r\n\tb\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "obs-fold in Transfer-Encoding", raw: post + "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + end + smuggled},
		{name: "obs-fold in Content-Length", raw: post + "Content-Length:\r\n 0\r\n\r\n" + smuggled},
		{name: "obs-fold in Host", raw: "POST /api/atk-@ID HTTP/1.1\r\nHost: x\r\n .example\r\nContent-Length: 0\r\n\r\n" + smuggled},
		// Bare CR and bare LF (RFC 9112 2.2).
		{name: "bare CR in a value", raw: post + "X-Note: a\rb\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "bare CR ending a value", raw: post + "X-Note: a\r\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "bare CR in a name", raw: post + "X-No\rte: a\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "bare LF ending a header line", raw: post + "X-Note: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + end + smuggled},
		{name: "bare LF ending the request line", raw: "POST /api/atk-@ID HTTP/1.1\nHost: x\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "bare LF everywhere", raw: "POST /api/atk-@ID HTTP/1.1\nHost: x\nContent-Length: 0\n\n" + smuggled},
		// Control bytes and NUL in names, values and the target.
		{name: "NUL in a value", raw: post + "X-Note: a\x00b\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "NUL in a name", raw: post + "X-No\x00te: a\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "SOH in a value", raw: post + "X-Note: a\x01b\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "VT in a value", raw: post + "X-Note: a\x0bb\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "DEL in a value", raw: post + "X-Note: a\x7fb\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "ESC in a name", raw: post + "X-No\x1bte: a\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "control byte in the target", raw: "POST /api/atk-@ID\x01x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "NUL in the target", raw: "POST /api/atk-@ID\x00x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" + smuggled},
		// Field and request-line syntax (RFC 9112 2.2, 3, 5.1).
		{name: "space in a field name", raw: post + "Content Length: 5\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "whitespace before the first field", raw: "POST /api/atk-@ID HTTP/1.1\r\n Content-Length: 5\r\nHost: x\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "HTTP/0.9 request line", raw: "GET /api/atk-@ID\r\n\r\n" + smuggled},
		// Host (RFC 9112 3.2: none, or more than one, in HTTP/1.1 is a 400).
		{name: "no Host", raw: "POST /api/atk-@ID HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + smuggled},
		{name: "two Host fields", raw: "POST /api/atk-@ID HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 0\r\n\r\n" + smuggled},
	}
}

// TestSmuggleFramingRejected: every request whose framing is ambiguous or
// malformed gets 400 and the connection closed, as the first request on a
// connection and after a valid one on the same keep-alive connection; and
// nothing of it (nor of the request hidden in its body) reaches the
// reference, the candidate or the secondary (issue 18, "What to build" 2).
func TestSmuggleFramingRejected(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	converse(t, st, framingConversations(st))
}

// framingConversations are the framing probes, each first on its
// connection and after a valid request.
func framingConversations(st *smuggleStack) []conversation {
	var convs []conversation
	for i, p := range framingProbes() {
		for _, v := range []struct{ name, prefix string }{
			{"first on its connection", ""},
			{"after a valid request", "GET /api/ok-@ID HTTP/1.1\r\nHost: x\r\n\r\n"},
		} {
			id := fmt.Sprintf("f%03d%c", i, v.name[0])
			steps := []step{{mustReject, p.raw, p.also}}
			if v.prefix != "" {
				steps = append([]step{{kind: mustServe, raw: v.prefix}}, steps...)
			}
			convs = append(convs, conversation{p.name + "/" + v.name, id, p.name, func() []string {
				return runSteps(st.front, id, steps, false)
			}})
		}
	}
	return convs
}

// TestSmuggleAfterUnfollowable: the smuggling of issue 18 ("Why" 1). A
// request the old framing guard could not follow (HTTP/1.0 keep-alive, an
// obs-folded field, an unexpected version, a chunked upload, a CRLF after
// a body, Expect: 100-continue) or a plain valid one, then an ambiguous
// request carrying a second one in its body, on the same connection, as a
// front proxy sharing one connection to miffy sends them: step by step
// and pipelined. The ambiguous request must get 400 and the connection
// closed, whatever came before; nothing of it may reach an upstream.
func TestSmuggleAfterUnfollowable(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	converse(t, st, sequenceConversations(st))
}

// sequenceConversations are the ambiguous requests after each kind of
// request before them, step by step and pipelined.
func sequenceConversations(st *smuggleStack) []conversation {
	prefixes := []struct {
		name  string
		steps []step
	}{
		{"a valid GET", []step{{kind: mustServe, raw: "GET /api/ok-@ID HTTP/1.1\r\nHost: x\r\n\r\n"}}},
		{"a POST with Content-Length", []step{{kind: mustServe, raw: "POST /api/ok-@ID HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"}}},
		{"a chunked POST", []step{{kind: mustServe, raw: "POST /api/ok-@ID HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"}}},
		{"a POST body and a CRLF", []step{{kind: mustServe, raw: "POST /api/ok-@ID HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n"}}},
		{"Expect: 100-continue", []step{{kind: mustServe, raw: "POST /api/ok-@ID HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"}}},
		{"two valid requests", []step{
			{kind: mustServe, raw: "GET /api/ok-@ID HTTP/1.1\r\nHost: x\r\n\r\n"},
			{kind: mustServe, raw: "POST /api/ok-@ID HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"},
		}},
		{"HTTP/1.0 keep-alive", []step{{kind: mayServe, raw: "GET /api/ok-@ID HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"}}},
		{"an unexpected version", []step{{kind: mayServe, raw: "GET /api/ok-@ID HTTP/1.2\r\nHost: x\r\n\r\n"}}},
		{"an obs-folded field", []step{{kind: mustReject, raw: "GET /api/atk-@ID HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n\r\n"}}},
		{"HTTP/1.0 keep-alive with TE", []step{{kind: mustReject, raw: "POST /api/atk-@ID HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}}},
	}
	const post = "POST /api/atk-@ID HTTP/1.1\r\nHost: x\r\n"
	attacks := []struct{ name, raw string }{
		{"CL then TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE then CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + smuggled},
		{"two different CL", post + "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" + smuggled},
		{"CL -0", post + "Content-Length: -0\r\n\r\n" + smuggled},
		{"obs-folded TE", post + "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"bare LF hiding TE", post + "X-Note: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE with HTTP/1.0", "POST /api/atk-@ID HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
	}
	var convs []conversation
	for _, pre := range prefixes {
		for _, atk := range attacks {
			for _, pipelined := range []bool{false, true} {
				mode := "step by step"
				if pipelined {
					mode = "pipelined"
				}
				id := fmt.Sprintf("s%03d", len(convs))
				steps := append(slices.Clone(pre.steps), step{kind: mustReject, raw: atk.raw})
				convs = append(convs, conversation{"after " + pre.name + "/" + atk.name + "/" + mode, id, "", func() []string {
					return runSteps(st.front, id, steps, pipelined)
				}})
			}
		}
	}
	return convs
}

// TestSmuggleCRLFBetweenRequests: RFC 9112 2.2 has a server ignore an
// empty line before a request-line; a CRLF after a POST body is such a
// line, and the next request on the connection is served ("Why" 5: the
// fast path and net/http disagreed).
func TestSmuggleCRLFBetweenRequests(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	for _, pipelined := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelined=%v", pipelined), func(t *testing.T) {
			id := fmt.Sprintf("c%v", pipelined)
			for _, p := range runSteps(st.front, id, []step{
				{kind: mustServe, raw: "POST /api/ok-@ID-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n"},
				{kind: mustServe, raw: "GET /api/ok-@ID-2 HTTP/1.1\r\nHost: x\r\n\r\n"},
				{kind: mustServe, raw: "GET /api/ok-@ID-3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
			}, pipelined) {
				t.Error(p)
			}
			for _, p := range []string{"ok-" + id + "-1", "ok-" + id + "-2"} {
				if !st.ref.sawPath(p) {
					t.Errorf("the reference never got %s", p)
				}
			}
		})
	}
}

// TestSmuggleUnderscoreHeadersDropped: header names with "_" are not
// forwarded to any upstream (CGI, WSGI and PHP fold them into the dashed
// names: X_Shadow_Test_Role would become the role header); the request
// itself is served ("Why" 9).
func TestSmuggleUnderscoreHeadersDropped(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	const fields = "X_Shadow_Test_Role: candidate\r\nX_Forwarded_For: 6.6.6.6\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\nX_Custom: 1\r\n"
	for _, path := range []string{"/api/under", "/unrouted/under"} {
		t.Run(path, func(t *testing.T) {
			w := dialWire(t, st.in)
			if err := w.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n"); err != nil {
				t.Fatal(err)
			}
			a, err := w.next()
			if err != nil || a.status != 200 || a.body != tapeBody {
				t.Errorf("answered %v %v, want the reference's 200", a, err)
			}
		})
	}
	st.settle(t)
	if !st.ref.sawPath("/api/under") || !st.cand.sawPath("/api/under") || !st.ref.sawPath("/unrouted/under") {
		t.Fatalf("the requests did not reach the upstreams: the check below proves nothing")
	}
	for _, tp := range st.tapes() {
		for _, r := range tp.requests() {
			for name := range r.header {
				if strings.Contains(name, "_") {
					t.Errorf("%s got %s %s with the field %q: %q", tp.name, r.method, r.target, name, r.header[name])
				}
			}
		}
	}
}

// TestSmuggleNeverForwarded: asterisk-form requests and the HTTP/2
// connection preface, on a fresh connection and after an HTTP/1.1
// request, are never forwarded to an upstream as requests ("Why" 6 and 9).
// Only the control requests (X-Probe: control) may reach an upstream.
func TestSmuggleNeverForwarded(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	const control = "GET /api/control HTTP/1.1\r\nHost: x\r\nX-Probe: control\r\n\r\n"
	t.Run("control", func(t *testing.T) {
		w := dialWire(t, st.in)
		w.send(control)
		if a, err := w.next(); err != nil || a.status != 200 {
			t.Fatalf("a valid request: %v %v", a, err)
		}
	})
	t.Run("GET *", func(t *testing.T) {
		w := dialWire(t, st.in)
		w.send("GET * HTTP/1.1\r\nHost: x\r\nX-Probe: asterisk\r\n\r\n")
		a, err := w.next()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if a.status != 400 {
			t.Errorf("answered %v, want 400", a)
		}
	})
	t.Run("OPTIONS *", func(t *testing.T) {
		w := dialWire(t, st.in)
		w.send("OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Probe: asterisk\r\n\r\n")
		a, err := w.next()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if a.body == tapeBody {
			t.Errorf("answered %v: the upstream's answer", a)
		}
	})
	t.Run("HTTP/2 preface on a fresh connection", func(t *testing.T) {
		// Either miffy speaks HTTP/2 (h2c prior knowledge: its SETTINGS
		// frame comes first) or it refuses; both are fine, forwarding is
		// not (checked below).
		w := dialWire(t, st.in)
		w.send(preface)
		w.c.SetReadDeadline(time.Now().Add(wireDeadline))
		b, err := w.br.Peek(9)
		if err == nil && strings.HasPrefix(string(b), "HTTP/1.1 2") {
			t.Errorf("answered the preface with %q", b)
		}
		if isTimeout(err) {
			t.Errorf("no answer nor close within %v", wireDeadline)
		}
	})
	t.Run("HTTP/2 preface after an HTTP/1.1 request", func(t *testing.T) {
		w := dialWire(t, st.in)
		w.send(control)
		if a, err := w.next(); err != nil || a.status != 200 {
			t.Fatalf("a valid request: %v %v", a, err)
		}
		w.send(preface)
		a, err := w.next()
		if err == nil && a.status < 400 {
			t.Errorf("answered the preface with %v, want an error", a)
		}
		if err := w.closed(); err != nil {
			t.Errorf("after the preface: %v", err)
		}
	})
	st.settle(t)
	if !st.ref.sawPath("/api/control") {
		t.Fatalf("the control request did not reach the reference: the checks below prove nothing")
	}
	for _, tp := range st.tapes() {
		for _, r := range tp.requests() {
			if r.header.Get("X-Probe") != "control" {
				t.Errorf("%s got %s %s (X-Probe %q): %.200q", tp.name, r.method, r.target, r.header.Get("X-Probe"), r.raw)
			}
		}
		if raw := tp.received(); strings.Contains(raw, "PRI *") || strings.Contains(raw, " * HTTP/") {
			t.Errorf("%s received %.300q", tp.name, excerpt(raw, "*"))
		}
	}
}

// TestSmuggleAbsoluteFormOtherHost: a request-target in absolute form that
// names another host is refused (400) or sent to the configured upstreams
// only, in origin form, with their own Host; the named host is never
// contacted.
func TestSmuggleAbsoluteFormOtherHost(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	trap := newTrap(t)
	tests := []struct{ name, id, raw string }{
		{"absolute-form and Host agree", "a1", "GET http://" + trap.addr + "/api/abs-a1 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n"},
		{"absolute-form and Host differ", "a2", "GET http://" + trap.addr + "/api/abs-a2 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"absolute-form with userinfo", "a3", "GET http://u:p@" + trap.addr + "/api/abs-a3 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n"},
		{"absolute-form https", "a4", "GET https://" + trap.addr + "/api/abs-a4 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n"},
		{"absolute-form unrouted", "a5", "GET http://" + trap.addr + "/abs-a5 HTTP/1.1\r\nHost: " + trap.addr + "\r\n\r\n"},
	}
	statuses := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dialWire(t, st.in)
			w.send(tt.raw)
			a, err := w.next()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if a.status != 200 && a.status != 400 {
				t.Errorf("answered %v, want 400 or the reference's 200", a)
			}
			statuses[tt.id] = a.status
		})
	}
	st.settle(t)
	if n := trap.accepts.Load(); n != 0 {
		t.Errorf("miffy connected %d times to the host the client named", n)
	}
	for _, tt := range tests {
		for _, tp := range st.tapes() {
			for _, r := range tp.requests() {
				if !strings.Contains(r.target, "abs-"+tt.id) {
					continue
				}
				if statuses[tt.id] == 400 {
					t.Errorf("%s: answered 400 but %s got %q", tt.name, tp.name, r.target)
				}
				if !strings.HasPrefix(r.target, "/") {
					t.Errorf("%s: %s got the target %q, want origin-form", tt.name, tp.name, r.target)
				}
				if r.host != tp.addr {
					t.Errorf("%s: %s was sent Host %q, want its own %s", tt.name, tp.name, r.host, tp.addr)
				}
			}
		}
	}
}

// TestSmuggleSameRequestToEverySide: the reference, the candidate and the
// secondary get the same request, byte for byte, apart from the role
// header; X-Forwarded-For keeps every value the client sent and adds the
// client's address; a Via hop names miffy ("What to build" 6).
func TestSmuggleSameRequestToEverySide(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, `, reference_host_header = "svc.example", candidate_host_header = "svc.example"`)
	requests := []struct{ name, id, raw string }{
		{"POST with a body", "i1", "POST /api/same-i1?q=1 HTTP/1.1\r\nHost: front.example\r\n" +
			"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.9, 192.0.2.1\r\n" +
			"Via: 1.1 edge\r\nX-Shadow-Test-Role: spoofed\r\nX-Trace: t1\r\n" +
			"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"},
		{"GET without X-Forwarded-For", "i2", "GET /api/same-i2 HTTP/1.1\r\nHost: front.example\r\nAccept: */*\r\n\r\n"},
	}
	for _, rq := range requests {
		w := dialWire(t, st.in)
		w.send(rq.raw)
		if a, err := w.next(); err != nil || a.status != 200 {
			t.Fatalf("%s: answered %v %v, want 200", rq.name, a, err)
		}
	}
	st.settle(t)
	wantXFF := map[string]string{"i1": "203.0.113.7, 198.51.100.9, 192.0.2.1, 127.0.0.1", "i2": "127.0.0.1"}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			got := map[string]tapedRequest{}
			for _, tp := range st.tapes() {
				var n int
				for _, r := range tp.requests() {
					if strings.Contains(r.target, "same-"+rq.id) {
						got[tp.name] = r
						n++
					}
				}
				if n != 1 {
					t.Fatalf("%s got the request %d times, want once", tp.name, n)
				}
			}
			stripped := map[string]string{}
			for side, r := range got {
				roles := r.header.Values("X-Shadow-Test-Role")
				if len(roles) != 1 || roles[0] != side {
					t.Errorf("%s: role header %q, want exactly one %q", side, roles, side)
				}
				stripped[side] = withoutRole(string(r.raw))
			}
			for _, side := range []string{"candidate", "secondary"} {
				if stripped[side] != stripped["reference"] {
					t.Errorf("%s's request differs from the reference's (role aside):\nreference: %q\n%s: %q",
						side, stripped["reference"], side, stripped[side])
				}
			}
			ref := got["reference"]
			if xff := strings.Join(ref.header.Values("X-Forwarded-For"), ", "); xff != wantXFF[rq.id] {
				t.Errorf("X-Forwarded-For at the reference %q, want %q", xff, wantXFF[rq.id])
			}
			via := strings.Join(ref.header.Values("Via"), ", ")
			if !strings.HasSuffix(via, "1.1 miffy") {
				t.Errorf("Via at the reference %q, want it to end with the hop 1.1 miffy", via)
			}
			if rq.id == "i1" && !strings.HasPrefix(via, "1.1 edge") {
				t.Errorf("Via at the reference %q lost the client's hop 1.1 edge", via)
			}
		})
	}
}

// TestSmuggleViaLoop: a request that already carries miffy's own Via hop
// (a reference pointed back at miffy) gets 508 and is not forwarded;
// another proxy's hop is no loop ("What to build" 6).
func TestSmuggleViaLoop(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	tests := []struct {
		name, path, via string
		want            int
	}{
		{"miffy's hop, routed", "/api/via-v1", "Via: 1.1 miffy\r\n", 508},
		{"miffy's hop, unrouted", "/via-v2", "Via: 1.1 miffy\r\n", 508},
		{"miffy's hop last in a list", "/api/via-v3", "Via: 1.0 edge, 1.1 miffy\r\n", 508},
		{"miffy's hop on a second Via line", "/api/via-v4", "Via: 1.0 edge\r\nVia: 1.1 miffy\r\n", 508},
		{"another proxy's hop", "/api/via-v5", "Via: 1.1 edge\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dialWire(t, st.in)
			w.send("GET " + tt.path + " HTTP/1.1\r\nHost: x\r\n" + tt.via + "\r\n")
			a, err := w.next()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if a.status != tt.want {
				t.Errorf("answered %v, want %d", a, tt.want)
			}
		})
	}
	st.settle(t)
	for _, tt := range tests {
		saw := st.ref.sawPath(tt.path)
		if tt.want == 508 && saw {
			t.Errorf("%s: forwarded to the reference", tt.name)
		}
		if tt.want == 200 && !saw {
			t.Errorf("%s: not forwarded to the reference", tt.name)
		}
	}
}

// TestSmuggleUpgradeNotTunneled: an Upgrade: h2c (not in the default
// [proxy] allow_upgrades) is not forwarded, so a reference willing to
// switch protocols never turns the client's connection into a tunnel: the
// client does not get 101, and what it sends next reaches the upstreams
// only as requests miffy forwarded itself ("Why" 7).
func TestSmuggleUpgradeNotTunneled(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	st.ref.acceptUpgrades()
	for _, path := range []string{"/unrouted/up", "/api/up"} {
		t.Run(path, func(t *testing.T) {
			w := dialWire(t, st.in)
			w.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			a, err := w.next()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if a.status == http.StatusSwitchingProtocols {
				t.Errorf("answered 101: the connection is a tunnel to the reference")
			}
			// What a client sends next: a request miffy would refuse or
			// rewrite (dot segments, a spoofed role and Host).
			if w.send("GET /api/%2e%2e/admin HTTP/1.1\r\nHost: tunnel.example\r\nX-Shadow-Test-Role: spoofed\r\nConnection: close\r\n\r\n") == nil {
				w.next() // any answer, or none
			}
		})
	}
	// WebSocket is allowed by default, but a tunnel only for a path that
	// passes every check first: one with dot segments is refused or
	// cleaned before it is forwarded, never opened as sent.
	for _, path := range []string{"/unrouted/../admin", "/unrouted/%2e%2e/admin", "/api/%2E%2E/%2e%2e/admin"} {
		t.Run("websocket "+path, func(t *testing.T) {
			w := dialWire(t, st.in)
			w.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			if _, err := w.next(); err != nil {
				t.Fatalf("no answer: %v", err)
			}
		})
	}
	st.settle(t)
	roles := []string{"reference", "candidate", "secondary", "upstream"}
	for _, tp := range st.tapes() {
		for _, r := range tp.requests() {
			if r.header.Get("Upgrade") != "" && hasDotSegment(r.target) {
				t.Errorf("%s was sent an upgrade for %s, dot segments and all", tp.name, r.target)
			}
			if r.tunneled {
				t.Errorf("%s got %s %s through a tunnel: %.300q", tp.name, r.method, r.target, r.raw)
			}
			if strings.Contains(strings.ToLower(r.header.Get("Upgrade")), "h2c") {
				t.Errorf("%s was sent Upgrade: %s", tp.name, r.header.Get("Upgrade"))
			}
			if role := r.header.Get("X-Shadow-Test-Role"); !slices.Contains(roles, role) {
				t.Errorf("%s got %s %s with the client's role %q", tp.name, r.method, r.target, role)
			}
		}
	}
}

// TestSmuggleHalfClose: a client that sends a request and then shuts its
// write side down never gets a 200 the reference did not send ("Why" 8:
// the server wrote its implicit 200 when the handler returned on the
// canceled request).
func TestSmuggleHalfClose(t *testing.T) {
	checkLeaks(t)
	refBody := func(path string) string { return `{"from":"reference","path":"` + path + `"}` }
	var sent sync.Map // path -> true once the reference has sent its answer
	// The reference answers after a moment, unless miffy gives the
	// request up first (then it never answers).
	ref := headUpstream(t, func(c *net.TCPConn, r *http.Request) {
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			io.Copy(io.Discard, c)
		}()
		select {
		case <-gone:
			return
		case <-time.After(time.Second):
		}
		body := refBody(r.URL.Path)
		sent.Store(r.URL.Path, true)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body)
		<-gone
	})
	cand := newTape(t, "candidate")
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "2s"
reference = "`+ref+`"
candidate = "`+cand.url()+`"
routes = [{ path = "/api/{v}", key = "v", allow_side_effects = true }]
[publish]
mode = "none"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	for _, tt := range []struct{ path, raw string }{
		{"/api/hc-get", "GET /api/hc-get HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"/unrouted/hc", "GET /unrouted/hc HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"/api/hc-post", "POST /api/hc-post HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := dialWire(t, in)
			w.send(tt.raw)
			if err := w.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			a, err := w.next()
			if err != nil {
				return // no answer at all: fine
			}
			if _, ok := sent.Load(tt.path); a.status == 200 && (!ok || a.body != refBody(tt.path)) {
				t.Errorf("got %v, which the reference never sent", a)
			}
		})
	}
}

// TestSmuggleUpstreamHeads: an upstream answer whose head is malformed,
// unbounded, or out of range is a 502 to the client, at once (not at
// reference_timeout, here 10s), and never a panic or an unbounded read
// ("Why" 2, 5, 9; "What to build" 6).
func TestSmuggleUpstreamHeads(t *testing.T) {
	checkLeaks(t)
	const body = `{"a":1}`
	answer := func(head string) func(c *net.TCPConn, _ *http.Request) {
		return func(c *net.TCPConn, _ *http.Request) { io.WriteString(c, head+body) }
	}
	const endlessCap = 32 << 20
	var endlessWritten atomic.Int64
	endless := func(c *net.TCPConn, _ *http.Request) {
		c.SetWriteBuffer(64 << 10)
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Endless: "); err != nil {
			return
		}
		if pump(c, 'a', endlessCap, &endlessWritten) == nil {
			c.Close() // all of it was taken: end the answer
		}
	}
	manyFields := func(n int) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
		line := strings.Repeat("v", 1000)
		for i := range n {
			fmt.Fprintf(&b, "X-F%d: %s\r\n", i, line)
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
		return b.String()
	}
	tests := []struct {
		name    string
		respond func(c *net.TCPConn, r *http.Request)
		want    int
	}{
		{"well-formed (control)", answer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"), 200},
		{"a head of 512 KiB (control)", answer(manyFields(512)), 200},
		{"bare LF line endings", answer("HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 7\n\n"), 502},
		{"bare LF after the status line", answer("HTTP/1.1 200 OK\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"), 502},
		{"bare CR in a value", answer("HTTP/1.1 200 OK\r\nX-Note: a\rb\r\nContent-Length: 7\r\n\r\n"), 502},
		{"NUL in a value", answer("HTTP/1.1 200 OK\r\nX-Note: a\x00b\r\nContent-Length: 7\r\n\r\n"), 502},
		{"status 099", answer("HTTP/1.1 099 Odd\r\nContent-Length: 7\r\n\r\n"), 502},
		{"status 042", answer("HTTP/1.1 042 Odd\r\nContent-Length: 7\r\n\r\n"), 502},
		{"status 600", answer("HTTP/1.1 600 Odd\r\nContent-Length: 7\r\n\r\n"), 502},
		{"status 999", answer("HTTP/1.1 999 Odd\r\nContent-Length: 7\r\n\r\n"), 502},
		{"status of four digits", answer("HTTP/1.1 2000 Odd\r\nContent-Length: 7\r\n\r\n"), 502},
		{"Content-Length -1", answer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), 502},
		{"Content-Length -0", answer("HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n"), 502},
		{"Content-Length +7", answer("HTTP/1.1 200 OK\r\nContent-Length: +7\r\n\r\n"), 502},
		{"two different Content-Length", answer("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"), 502},
		{"Content-Length list of different values", answer("HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n"), 502},
		{"a head of 2 MiB", answer(manyFields(2048)), 502},
		{"an endless header field", endless, 502},
	}
	var routes []string
	for i, tt := range tests {
		routes = append(routes, fmt.Sprintf(`{ path = "/up/%d", name = "up-%d", reference = %q }`, i, i, headUpstream(t, tt.respond)))
	}
	cand := newTape(t, "candidate")
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "2s"
reference = "`+cand.url()+`"
candidate = "`+cand.url()+`"
routes = [`+strings.Join(routes, ", ")+`]
[proxy]
reference_timeout = "10s"
[publish]
mode = "none"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	const fast = 3 * time.Second // "at once", generously; well under reference_timeout
	t.Run("answers", func(t *testing.T) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				client := &http.Client{Timeout: fast, Transport: &http.Transport{DisableKeepAlives: true}}
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("%s/up/%d", in.proxy, i))
				if err != nil {
					t.Fatalf("after %v: %v (want %d)", time.Since(start).Round(time.Millisecond), err, tt.want)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("answered %d %.80q, want %d", resp.StatusCode, b, tt.want)
				}
				if tt.want == 200 && string(b) != body {
					t.Errorf("body %.80q, want %q", b, body)
				}
			})
		}
	})
	t.Run("the endless field was not read to its end", func(t *testing.T) {
		if n := endlessWritten.Load(); n >= endlessCap {
			t.Errorf("miffy took all %d MiB of one header field: its reads of a head are not bounded", n>>20)
		}
	})
}

// nginxDiffers are the framing probes nginx 1.22 does not refuse with a
// 400 and a close, and why; the baseline logs them instead of failing.
var nginxDiffers = map[string]string{
	"TE gzip":                         "501 (RFC 9112 6.1: chunked not final is a 400)",
	"TE identity":                     "501",
	"TE chunked, identity":            "501",
	"TE xchunked":                     "501",
	"TE empty":                        "501",
	"bare LF after a chunk size":      "accepts a bare LF (RFC 9112 2.2 lets a recipient)",
	"bare LF in a chunk extension":    "accepts a bare LF",
	"bare LF ending the request line": "accepts a bare LF",
	"bare LF everywhere":              "accepts a bare LF",
	"bare CR ending a value":          "takes CR CR LF as the end of the line",
	"SOH in a value":                  "forwards control bytes in values",
	"VT in a value":                   "forwards control bytes in values",
	"DEL in a value":                  "forwards control bytes in values",
	"HTTP/0.9 request line":           "serves HTTP/0.9",
}

// TestSmuggleBaselineNginx runs the framing and sequence cases against
// nginx in front of the same recording upstream: a baseline showing that
// the suite's expectations are met by a widely deployed proxy (it answers
// 400 and closes, and forwards nothing) except for nginxDiffers, which
// are logged. It checks the suite as much as nginx: a case nginx fails
// that is not listed is a wrong expectation or a broken helper. Skipped
// without nginx.
func TestSmuggleBaselineNginx(t *testing.T) {
	t.Parallel()
	st := &smuggleStack{ref: newTape(t, "reference"), cand: newTape(t, "candidate"), sec: newTape(t, "secondary")}
	startNginxFront(t, st)
	convs := append(framingConversations(st), sequenceConversations(st)...)
	problems := runConcurrently(convs)
	for i, c := range convs {
		t.Run(c.name, func(t *testing.T) {
			all := append(problems[i], st.leaked(c.id)...)
			if why, ok := nginxDiffers[c.probe]; ok {
				if len(all) == 0 {
					t.Errorf("nginx now passes; drop it from nginxDiffers (%s)", why)
				}
				t.Logf("nginx differs, as known (%s): %s", why, strings.Join(all, "; "))
				return
			}
			for _, p := range all {
				t.Error(p)
			}
		})
	}
}

// TestSmuggleSlowReaderCutOff: a client that sends a request and never
// reads the answer is cut off at [proxy] write_timeout: miffy gives up the
// reference's answer (the reference sees its connection end long before
// it could send it all) and closes the client's connection, which then
// yields less than the whole answer ("Why" 3; "What to build" 1 and 6).
func TestSmuggleSlowReaderCutOff(t *testing.T) {
	checkLeaks(t)
	const size = 16 << 20 // far more than the socket buffers on the way hold
	var written atomic.Int64
	stopped := make(chan struct{}) // the reference could write no more
	ref := headUpstream(t, func(c *net.TCPConn, _ *http.Request) {
		defer close(stopped)
		c.SetWriteBuffer(64 << 10)
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			return
		}
		pump(c, 'z', size, &written)
	})
	cand := newTape(t, "candidate")
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
shutdown_timeout = "2s"
reference = "`+ref+`"
candidate = "`+cand.url()+`"
[proxy]
write_timeout = "1s"
[publish]
mode = "none"
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
`)
	w := dialWire(t, in)
	if err := w.send("GET /unrouted/big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(2 * wireDeadline):
		t.Fatalf("the reference could still write after %v: miffy keeps a client that does not read (no write_timeout)", 2*wireDeadline)
	}
	if n := written.Load(); n >= size {
		t.Fatalf("the reference sent all %d MiB to a client that reads nothing: miffy buffered it", n>>20)
	}
	w.c.SetReadDeadline(time.Now().Add(wireDeadline))
	got, err := io.Copy(io.Discard, w.br)
	if isTimeout(err) {
		t.Errorf("the client's connection stayed open after write_timeout (read %d bytes)", got)
	}
	if got >= size {
		t.Errorf("the client got the whole answer (%d bytes): it was not cut off", got)
	}
}

// TestSmuggleH2CPriorKnowledge: a client speaking HTTP/2 with prior
// knowledge (h2c) gets the reference's answer, and the reference gets a
// plain request, not the preface as "PRI *" ("Why" 6).
func TestSmuggleH2CPriorKnowledge(t *testing.T) {
	checkLeaks(t)
	st := startSmuggleStack(t, "")
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: wireDeadline}
	resp, err := client.Get(st.in.proxy + "/api/h2c-1")
	if err != nil {
		t.Fatalf("h2c prior knowledge: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != tapeBody {
		t.Errorf("answered %s %d %.80q, want HTTP/2.0 200 %s", resp.Proto, resp.StatusCode, b, tapeBody)
	}
	tr.CloseIdleConnections() // an HTTP/2 connection left open holds miffy's shutdown for a second
	st.settle(t)
	for _, tp := range st.tapes() {
		for _, r := range tp.requests() {
			if r.method != "GET" || r.target != "/api/h2c-1" {
				t.Errorf("%s got %s %s, want GET /api/h2c-1", tp.name, r.method, r.target)
			}
		}
	}
	if !st.ref.sawPath("/api/h2c-1") || !st.cand.sawPath("/api/h2c-1") {
		t.Errorf("the request was not forwarded to the reference and replayed to the candidate")
	}
}
