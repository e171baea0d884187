package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// echo answers each request with what it saw: method, target and body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %q", r.Method, r.RequestURI, body)
}

func startServer(t *testing.T, cfg Config, h http.Handler) (addr string, reasons chan string) {
	t.Helper()
	reasons = make(chan string, 100)
	cfg.Rejected = func(r string) { reasons <- r }
	srv, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv), reasons
}

// serveOn serves srv on a loopback port until the test ends.
func serveOn(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// exchange writes stream on a new connection, then reads answers until the
// server closes it (or 5 s pass: a failure).
func exchange(t *testing.T, addr, stream string) (answers []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return answers, !(errors.As(err, &ne) && ne.Timeout())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a := fmt.Sprint(resp.StatusCode)
		if resp.StatusCode == 200 {
			a += " " + string(body)
		}
		answers = append(answers, a)
	}
}

const (
	get   = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	last  = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	okA   = `200 GET /a ""`
	okEnd = `200 GET /last ""`
)

// TestGuard: well-framed requests are served in order; a request whose
// framing is ambiguous gets 400 and the connection is closed, wherever it
// stands on the connection, and nothing of it or after it is served.
func TestGuard(t *testing.T) {
	addr, reasons := startServer(t, Config{}, http.HandlerFunc(echo))
	post := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	chunked := "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"
	// A body that looks like a request with both framings.
	fake := "GET /smuggled HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	served := []struct {
		name, stream string
		want         []string
	}{
		{"pipelined", get + get + last, []string{okA, okA, okEnd}},
		{"Content-Length body", post + last, []string{`200 POST /p "hello"`, okEnd}},
		{"chunked body with extensions and trailers", chunked + last, []string{`200 POST /c "abcde"`, okEnd}},
		{"a body that looks like a request", fmt.Sprintf("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(fake), fake) + last,
			[]string{fmt.Sprintf("200 POST /p %q", fake), okEnd}},
		{"empty line after a POST body", post + "\r\n" + last, []string{`200 POST /p "hello"`, okEnd}},
		{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + last, []string{okA, okEnd}},
		{"absolute form", "GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n" + last, []string{`200 GET http://x/a ""`, okEnd}},
	}
	for _, tt := range served {
		t.Run(tt.name, func(t *testing.T) {
			got, closed := exchange(t, addr, tt.stream)
			if diff := cmp.Diff(tt.want, got); diff != "" || !closed {
				t.Errorf("answers (-want +got):\n%s\nclosed %v", diff, closed)
			}
		})
	}

	refused := []struct{ name, req, reason string }{
		{"Content-Length and Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "content_length_and_transfer_encoding"},
		{"Transfer-Encoding first", "POST /x HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", "content_length_and_transfer_encoding"},
		{"two Content-Length", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", "content_length"},
		{"Content-Length list", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", "content_length"},
		{"signed Content-Length", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na", "content_length"},
		{"minus zero", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n", "content_length"},
		{"gzip transfer coding", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "transfer_encoding"},
		{"two Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer_encoding"},
		{"chunked in HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer_encoding"},
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", "field"},
		{"space before colon", "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n", "field"},
		{"bare LF", "GET /x HTTP/1.1\nHost: x\n\n", "bare_cr_lf"},
		{"bare CR", "GET /x HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n", "bare_cr_lf"},
		{"NUL in a value", "GET /x HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", "field"},
		{"control byte in a name", "GET /x HTTP/1.1\r\nHost: x\r\nX\x01: a\r\n\r\n", "field"},
		{"version 1.2", "GET /x HTTP/1.2\r\nHost: x\r\n\r\n", "version"},
		{"lower-case version", "GET /x http/1.1\r\nHost: x\r\n\r\n", "version"},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "request_target"},
		{"authority form", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", "request_target"},
		{"HTTP/2 preface after a request", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "request_target"},
		{"control byte in the target", "GET /x\x01 HTTP/1.1\r\nHost: x\r\n\r\n", "request_target"},
		{"bad chunk size", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n", "chunk"},
		{"bare LF after chunk data", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n", "chunk"},
		{"obs-fold in a trailer", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n 2\r\n\r\n", "field"},
	}
	// Each comes first on its connection, then after a request the guard
	// follows, then after kinds of request an earlier guard gave up on.
	prefixes := []struct{ name, stream string }{
		{"first", ""},
		{"after a GET", get},
		{"after HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
		{"after a chunked POST", chunked},
	}
	for _, tt := range refused {
		for _, pre := range prefixes {
			if strings.HasPrefix(tt.req, "PRI") && pre.stream == "" {
				continue // a connection's first bytes: h2c (TestH2C)
			}
			t.Run(tt.name+"/"+pre.name, func(t *testing.T) {
				for len(reasons) > 0 {
					<-reasons
				}
				got, closed := exchange(t, addr, pre.stream+tt.req+last)
				if !closed {
					t.Fatalf("connection left open; answers %q", got)
				}
				if len(got) == 0 {
					t.Fatal("no answer")
				}
				served := len(got) - 1
				if got[served] != "400" {
					t.Errorf("last answer %q, want 400; all: %q", got[served], got)
				}
				if want := strings.Count(pre.stream, "HTTP/1."); served != want {
					t.Errorf("%d answered before the 400, want %d: %q", served, want, got)
				}
				select {
				case r := <-reasons:
					if r != tt.reason {
						t.Errorf("reason %q, want %q", r, tt.reason)
					}
				default:
					t.Errorf("no rejection counted")
				}
			})
		}
	}
}

// TestH2C: a client with prior knowledge speaks HTTP/2 on the plain
// listener, and its requests reach the handler as HTTP/2.
func TestH2C(t *testing.T) {
	addr, _ := startServer(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections) // before the server's Shutdown, which an open h2 connection holds a second
	c := &http.Client{Transport: tr}
	for _, path := range []string{"/a", "/b"} {
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "HTTP/2.0 false" {
			t.Errorf("%s: handler saw %q, want HTTP/2.0 without TLS", path, body)
		}
	}
}

// TestPlainHasNoTLS: on the plain listener a request has no TLS state (so
// X-Forwarded-Proto says http).
func TestPlainHasNoTLS(t *testing.T) {
	addr, _ := startServer(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/1.1 false" {
		t.Errorf("handler saw %q, want HTTP/1.1 without TLS", body)
	}
}
