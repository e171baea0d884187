package front

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ioDeadline bounds every client conversation: a server that hangs fails
// the test instead of blocking it.
const ioDeadline = 10 * time.Second

var quietLog = log.New(io.Discard, "", 0)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	return ln
}

// startNetHTTP serves h with net/http's server alone (server A) and
// returns its address.
func startNetHTTP(t *testing.T, h http.Handler, tune func(*http.Server)) string {
	t.Helper()
	ln := listen(t)
	srv := &http.Server{Handler: h, ErrorLog: quietLog}
	if tune != nil {
		tune(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// frontServer is the fast path with net/http's server behind it, for the
// same handler (server B).
type frontServer struct {
	fs       *Server
	addr     string
	serveErr chan error // what fs.Serve returned
}

func startFront(t *testing.T, h http.Handler, cfg Config, tune func(*http.Server)) *frontServer {
	t.Helper()
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = quietLog
	}
	fs := New(h, cfg)
	hs := &http.Server{Handler: h, ErrorLog: quietLog}
	if tune != nil {
		tune(hs)
	}
	ln := listen(t)
	b := &frontServer{fs: fs, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { b.serveErr <- fs.Serve(ln) }()
	go hs.Serve(fs.Handoff())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := fs.Shutdown(ctx); err != nil {
			t.Errorf("front.Shutdown: %v", err)
		}
	})
	return b
}

// handoffs is how many connections fs handed to net/http, by reason
// (reasons with none left out).
func handoffs(fs *Server) map[string]uint64 {
	m := map[string]uint64{}
	for _, r := range Reasons {
		if n := fs.Handoffs(r); n > 0 {
			m[r] = n
		}
	}
	return m
}

// answer is what a client saw of one response.
type answer struct {
	Status           string
	Proto            string
	Header           http.Header // without Date's value
	HasDate          bool
	TransferEncoding []string
	ContentLength    int64
	Close            bool
	Body             string
	BodyErr          string
	Trailer          http.Header
}

// transcript is what a client saw on one connection: the answers, how
// reading stopped if it stopped early, and what became of a GET sent
// after them.
type transcript struct {
	Answers []answer
	End     string
	Probe   string
}

// errClass sorts read errors into what a client can rely on: a closed
// (or reset) connection, a timeout, or a malformed answer.
func errClass(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

func readAnswer(br *bufio.Reader, method string) (answer, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	h := resp.Header.Clone()
	_, hasDate := h["Date"]
	if h.Get("Date") != fixedDate {
		h.Del("Date")
	}
	return answer{
		Status:           resp.Status,
		Proto:            resp.Proto,
		Header:           h,
		HasDate:          hasDate,
		TransferEncoding: resp.TransferEncoding,
		ContentLength:    resp.ContentLength,
		Close:            resp.Close,
		Body:             string(body),
		BodyErr:          errClass(err),
		Trailer:          resp.Trailer,
	}, nil
}

// fixedDate is a Date a handler sets: compared like any field.
const fixedDate = "Mon, 02 Jan 2006 15:04:05 GMT"

const probeRequest = "GET /probe HTTP/1.1\r\nHost: probe.test\r\n\r\n"

// converse writes raw to addr in one Write, reads one final answer (after
// any 1xx) per method, then sends probeRequest on the same connection.
func converse(t *testing.T, addr, raw string, methods []string) transcript {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(ioDeadline))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// An error here (a server that closes on an unread body) shows
		// in what is read.
		io.WriteString(c, raw)
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	br := bufio.NewReader(c)
	var tr transcript
	for _, m := range methods {
		for {
			a, err := readAnswer(br, m)
			if err != nil {
				tr.End = errClass(err)
				return tr
			}
			tr.Answers = append(tr.Answers, a)
			if code := a.Status[:3]; code[0] != '1' || code == "101" {
				break
			}
		}
	}
	<-wrote
	if _, err := io.WriteString(c, probeRequest); err != nil {
		tr.Probe = errClass(err)
		return tr
	}
	a, err := readAnswer(br, "GET")
	if err != nil {
		tr.Probe = errClass(err)
		return tr
	}
	tr.Probe = a.Status + " " + a.Body
	return tr
}

// withProbe answers probeRequest itself, so that every case's connection
// can be tested for reuse the same way.
func withProbe(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/probe" {
			io.WriteString(w, "probe")
			return
		}
		h(w, r)
	})
}

// echo answers with what it saw of the request, as JSON.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"Method":        r.Method,
		"RequestURI":    r.RequestURI,
		"URL":           r.URL.String(),
		"Proto":         r.Proto,
		"Host":          r.Host,
		"Header":        r.Header,
		"ContentLength": r.ContentLength,
		"Close":         r.Close,
		"Body":          string(body),
		"BodyErr":       fmt.Sprint(err),
	})
}

func writeN(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("a"), n))
	}
}

// onlyReader hides a reader's WriteTo, so that io.Copy goes through the
// ResponseWriter's ReadFrom as it does for a network body.
type onlyReader struct{ io.Reader }

func get(path string, fields ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n" + lines(fields) + "\r\n"
}

func lines(fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	return b.String()
}

func post(path, body string, fields ...string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n%s\r\n%s", path, len(body), lines(fields), body)
}

const chunkedPost = "POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"

// diffCase is a raw request sent to both servers.
type diffCase struct {
	name    string
	h       http.HandlerFunc
	raw     string
	methods []string // one per final answer to read; if nil, raw's method
	handoff string   // the reason server B hands the connection off, if it does
}

func diffCases() []diffCase {
	big := strings.Repeat("b", 300<<10)
	kb := strings.Repeat("k", 1<<10)
	longHead := get("/long", "X-Long: "+strings.Repeat("l", 5000))
	return []diffCase{
		{name: "sniffed small body", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><body>hi</body></html>")
		}, raw: get("/")},
		{name: "body of 2048 bytes", h: writeN(2048), raw: get("/")},
		{name: "body of 2049 bytes", h: writeN(2049), raw: get("/")},
		{name: "body of 10000 bytes", h: writeN(10000), raw: get("/")},
		{name: "body in many small writes", h: func(w http.ResponseWriter, r *http.Request) {
			for range 20 {
				io.WriteString(w, strings.Repeat("s", 300))
			}
		}, raw: get("/")},
		{name: "sniffed across a short and a long write", h: func(w http.ResponseWriter, r *http.Request) {
			// net/http sniffs what its 2 KiB buffer holds when it first
			// flushes: both writes.
			io.WriteString(w, "<!DOCTYPE ")
			io.WriteString(w, "HTML><p>"+strings.Repeat("x", 3000))
		}, raw: get("/")},
		{name: "io.Copy from a reader", h: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, onlyReader{strings.NewReader(strings.Repeat("c", 1000))})
		}, raw: get("/")},
		{name: "io.Copy from a short reader", h: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, onlyReader{strings.NewReader("short")})
		}, raw: get("/")},
		{name: "io.Copy after a hand-off", h: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.Copy(w, onlyReader{strings.NewReader(strings.Repeat("c", 1000))})
		}, raw: chunkedPost, handoff: reasonFraming},
		{name: "io.Copy on HEAD", h: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, onlyReader{strings.NewReader(strings.Repeat("c", 1000))})
		}, raw: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{name: "io.Copy with handler Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.Copy(w, onlyReader{strings.NewReader(strings.Repeat("c", 1000))})
		}, raw: get("/")},
		{name: "zero-length writes", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			// A difference in what the handler sees shows as a panic.
			if n, err := w.Write(nil); n != 0 || err != nil {
				panic(fmt.Sprintf("Write(nil) on a 204: %d, %v", n, err))
			}
			if n, err := io.WriteString(w, ""); n != 0 || err != nil {
				panic(fmt.Sprintf(`WriteString("") on a 204: %d, %v`, n, err))
			}
		}, raw: get("/")},
		{name: "zero-length write past Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
			if n, err := w.Write(nil); n != 0 || err != nil {
				panic(fmt.Sprintf("Write(nil) at Content-Length: %d, %v", n, err))
			}
		}, raw: get("/")},
		{name: "handler Date", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", fixedDate)
			io.WriteString(w, "dated")
		}, raw: get("/")},
		{name: "handler Date suppressed", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Date"] = nil
			io.WriteString(w, "undated")
		}, raw: get("/")},
		{name: "Content-Encoding without Content-Type", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, "<html>not sniffed")
		}, raw: get("/")},
		{name: "nil Content-Type", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>not sniffed")
		}, raw: get("/")},
		{name: "Flush before reading the body", h: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%q %v", b, err)
		}, raw: post("/", "unread at the Flush") + get("/second"), methods: []string{"POST", "GET"}},
		{name: "body read whole, Flush, read again", h: func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			w.(http.Flusher).Flush()
			_, err := r.Body.Read(make([]byte, 1))
			fmt.Fprint(w, err)
		}, raw: post("/", "read") + get("/second"), methods: []string{"POST", "GET"}},
		{name: "handler Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}, raw: get("/")},
		{name: "handler Content-Length with a leading zero", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "05")
			io.WriteString(w, "hello")
		}, raw: get("/")},
		{name: "handler Content-Length with a space", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", " 5")
			io.WriteString(w, "hello")
		}, raw: get("/")},
		{name: "handler Content-Length invalid", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "five")
			io.WriteString(w, "hello")
		}, raw: get("/")},
		{name: "shorter than its Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
		}, raw: get("/")},
		{name: "longer than its Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "he")
			if _, err := io.WriteString(w, "llo"); !errors.Is(err, http.ErrContentLength) {
				panic(fmt.Sprintf("writing past Content-Length: %v", err))
			}
		}, raw: get("/")},
		{name: "HEAD without body writes", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
		}, raw: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{name: "HEAD with body writes", h: writeN(10), raw: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{name: "HEAD with a long body", h: writeN(5000), raw: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{name: "HEAD with handler Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "42")
		}, raw: "HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{name: "204", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "abc"); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic(fmt.Sprintf("writing a 204's body: %v", err))
			}
		}, raw: get("/")},
		{name: "304 with Content-Type and Content-Length", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "10")
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		}, raw: get("/")},
		{name: "103 then 200", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-After", "1")
			io.WriteString(w, "ok")
		}, raw: get("/")},
		{name: "Flush before any write", h: func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			io.WriteString(w, "late")
		}, raw: get("/")},
		{name: "Flush mid-body", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "early ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "late")
		}, raw: get("/")},
		{name: "ResponseController Flush", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "early ")
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
			io.WriteString(w, "late")
		}, raw: get("/")},
		{name: "declared trailer", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-T, X-Unset")
			io.WriteString(w, "body")
			w.Header().Set("X-T", "tv")
		}, raw: get("/")},
		{name: "declared trailers net/http forbids", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "Content-Type, Authorization, X-T")
			io.WriteString(w, "body")
			w.Header().Set("Content-Type", "late/type")
			w.Header().Set("Authorization", "late")
			w.Header().Set("X-T", "tv")
		}, raw: get("/")},
		{name: "TrailerPrefix after a Flush", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-P", "pv")
		}, raw: get("/")},
		{name: "TrailerPrefix without a Flush", h: func(w http.ResponseWriter, r *http.Request) {
			// The head goes out when the handler returns, with a
			// Content-Length: the trailer is dropped, as net/http drops it.
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-P", "pv")
		}, raw: get("/")},
		{name: "TrailerPrefix set before the head", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(http.TrailerPrefix+"X-P", "early")
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-P", "pv")
		}, raw: get("/")},
		{name: "handler Connection: close", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}, raw: get("/")},
		{name: "handler Connection: Close", h: func(w http.ResponseWriter, r *http.Request) {
			// net/http closes only for the exact value "close".
			w.Header().Set("Connection", "Close")
			io.WriteString(w, "bye")
		}, raw: get("/")},
		{name: "handler Connection: keep-alive, close", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "keep-alive, close")
			io.WriteString(w, "bye")
		}, raw: get("/")},
		{name: "handler Connection changed after WriteHeader", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "keep-alive")
			w.WriteHeader(200)
			w.Header().Set("Connection", "changed")
			io.WriteString(w, "ok")
		}, raw: get("/")},
		{name: "handler Connection: foo close, request Connection: close", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "foo close")
			io.WriteString(w, "ok")
		}, raw: get("/", "Connection: close")},
		{name: "handler Transfer-Encoding: chunked", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "chunks")
		}, raw: get("/")},
		{name: "handler Transfer-Encoding: identity", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, "until close")
		}, raw: get("/")},
		{name: "request Connection: close", h: echo, raw: get("/", "Connection: close")},
		{name: "request Connection: close then a pipelined request", h: writeN(3),
			raw: get("/", "Connection: close") + get("/second"), methods: []string{"GET", "GET"}},
		{name: "unread 1 KB body then a pipelined request", h: writeN(3),
			raw: post("/", kb) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "unread 300 KB body then a pipelined request", h: writeN(3),
			raw: post("/", big) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "unread body with Connection: close", h: writeN(3),
			raw: post("/", kb, "Connection: close")},
		{name: "body read partly then closed, then a pipelined request", h: func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "POST" {
				buf := make([]byte, 10)
				io.ReadFull(r.Body, buf)
				r.Body.Close()
				w.Write(buf)
				return
			}
			io.WriteString(w, "second")
		}, raw: post("/", kb) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "300 KB body read partly then closed", h: func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 10)
			io.ReadFull(r.Body, buf)
			r.Body.Close()
			w.Write(buf)
		}, raw: post("/", big) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "body of exactly 256 KiB closed unread", h: func(w http.ResponseWriter, r *http.Request) {
			// net/http reads it all at Close, yet closes the connection
			// after the answer (without saying so).
			r.Body.Close()
			io.WriteString(w, "closed")
		}, raw: post("/", strings.Repeat("q", 256<<10)) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "body one byte under 256 KiB closed unread", h: func(w http.ResponseWriter, r *http.Request) {
			r.Body.Close()
			io.WriteString(w, "closed")
		}, raw: post("/", strings.Repeat("q", 256<<10-1)) + get("/second"), methods: []string{"POST", "GET"}},
		{name: "body read after Close", h: func(w http.ResponseWriter, r *http.Request) {
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			io.WriteString(w, fmt.Sprint(err))
		}, raw: post("/", "hello")},
		{name: "body read whole", h: echo, raw: post("/", "hello") + get("/second"), methods: []string{"POST", "GET"}},
		{name: "panic", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "never sent")
			panic("boom")
		}, raw: get("/")},
		{name: "ErrAbortHandler after a Flush", h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, raw: get("/")},
		{name: "ErrAbortHandler after a Flush and a write", h: func(w http.ResponseWriter, r *http.Request) {
			// What the handler wrote after its Flush is still buffered in
			// net/http when it panics: never sent.
			io.WriteString(w, "flushed")
			w.(http.Flusher).Flush()
			io.WriteString(w, "buffered")
			panic(http.ErrAbortHandler)
		}, raw: get("/")},
		{name: "CRLF in a header value", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-A", "a\r\nX-Injected: 1")
			w.Header().Set("X-B", " padded\t")
			io.WriteString(w, "ok")
		}, raw: get("/")},
		{name: "invalid header name", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header()["X Bad"] = []string{"v"}
			w.Header()["X:Colon"] = []string{"v"}
			w.Header()["x-lower"] = []string{"v"}
			w.Header()["X-Good"] = []string{"v"}
			io.WriteString(w, "ok")
		}, raw: get("/")},
		{name: "WriteHeader(999)", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(999)
			io.WriteString(w, "odd")
		}, raw: get("/")},
		{name: "WriteHeader(299)", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(299)
		}, raw: get("/")},
		{name: "WriteHeader twice, header changed after", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(201)
			w.WriteHeader(500)
			w.Header().Set("X-After", "1")
			io.WriteString(w, "created")
		}, raw: get("/")},
		{name: "multiple values of one header", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-M", "1")
			w.Header().Add("X-M", "2")
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			io.WriteString(w, "ok")
		}, raw: get("/")},
		{name: "request Pragma: no-cache", h: echo, raw: get("/", "Pragma: no-cache")},
		{name: "request Pragma: no-cache with Cache-Control", h: echo, raw: get("/", "Pragma: no-cache", "Cache-Control: max-age=1")},
		{name: "duplicate request headers", h: echo, raw: get("/", "X-D: 1", "x-d: 2", "Accept: a", "Accept: b")},

		// Handed off to net/http.
		{name: "chunked body", h: echo, raw: chunkedPost, handoff: reasonFraming},
		{name: "Content-Length and Transfer-Encoding", h: echo,
			raw: "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", handoff: reasonFraming},
		{name: "two different Content-Length", h: echo,
			raw: "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", handoff: reasonFraming},
		{name: "two equal Content-Length", h: echo,
			raw: "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", handoff: reasonFraming},
		{name: "Content-Length +5", h: echo,
			raw: "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: +5\r\n\r\nhello", handoff: reasonFraming},
		{name: "Expect: 100-continue", h: echo,
			raw: post("/", "hello", "Expect: 100-continue"), handoff: reasonExpect},
		{name: "Upgrade: websocket", h: echo,
			raw: get("/ws", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), handoff: reasonUpgrade},
		{name: "HTTP/1.0", h: echo, raw: "GET / HTTP/1.0\r\nHost: example.test\r\n\r\n", handoff: reasonVersion},
		{name: "HTTP/1.0 keep-alive", h: echo, raw: "GET / HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n", handoff: reasonVersion},
		{name: "absolute-form target", h: echo, raw: "GET http://host.test/x?y=1 HTTP/1.1\r\nHost: other.test\r\n\r\n", handoff: reasonTarget},
		{name: "OPTIONS *", h: echo, raw: "OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n", handoff: reasonTarget},
		{name: "CONNECT", h: echo, raw: "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", handoff: reasonTarget},
		{name: "missing Host", h: echo, raw: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", handoff: reasonHeader},
		{name: "two Host headers", h: echo, raw: get("/", "Host: other.test"), handoff: reasonHeader},
		{name: "invalid Host bytes", h: echo, raw: "GET / HTTP/1.1\r\nHost: exa{mple\r\n\r\n", handoff: reasonHeader},
		{name: "empty Host", h: echo, raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", handoff: reasonHeader},
		{name: "space before colon", h: echo, raw: get("/", "X-Sp : v"), handoff: reasonHeader},
		{name: "obs-fold", h: echo, raw: get("/", "X-Fold: a", " b"), handoff: reasonHeader},
		{name: "bare LF line endings", h: echo, raw: "GET / HTTP/1.1\nHost: x\n\n", handoff: reasonFraming},
		{name: "bare CR in a value", h: echo, raw: get("/", "X-Cr: a\rb"), handoff: reasonFraming},
		{name: "NUL in a value", h: echo, raw: get("/", "X-Nul: a\x00b"), handoff: reasonHeader},
		{name: "DEL in a value", h: echo, raw: get("/", "X-Del: a\x7fb"), handoff: reasonHeader},
		{name: "head of 5000 bytes", h: echo, raw: longHead, handoff: reasonSize},
		{name: "leading CRLF", h: echo, raw: "\r\n" + get("/"), handoff: reasonFraming},
		{name: "lowercase http/1.1", h: echo, raw: "GET / http/1.1\r\nHost: example.test\r\n\r\n", handoff: reasonVersion},
		{name: "HTTP/1.2", h: echo, raw: "GET / HTTP/1.2\r\nHost: example.test\r\n\r\n", handoff: reasonVersion},
		{name: "HTTP/2.0", h: echo, raw: "GET / HTTP/2.0\r\nHost: example.test\r\n\r\n", handoff: reasonVersion},
		{name: "garbage bytes", h: echo, raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", handoff: reasonTarget},
		{name: "space in the target", h: echo, raw: "GET /a b HTTP/1.1\r\nHost: example.test\r\n\r\n", handoff: reasonVersion},
		{name: "bad escape in the target", h: echo, raw: get("/%zz"), handoff: reasonTarget},
		{name: "fast request then a chunked one", h: echo, raw: get("/first") + chunkedPost,
			methods: []string{"GET", "POST"}, handoff: reasonFraming},
	}
}

// TestSameAsNetHTTP sends the same bytes to net/http's server alone (A)
// and to the fast path in front of it (B), and requires the client to see
// the same answers (Date aside) and the same fate of its connection.
func TestSameAsNetHTTP(t *testing.T) {
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := withProbe(tc.h)
			a := startNetHTTP(t, h, nil)
			b := startFront(t, h, Config{}, nil)
			methods := tc.methods
			if methods == nil {
				methods = []string{tc.raw[:max(strings.IndexByte(tc.raw, ' '), 0)]}
			}
			want := converse(t, a, tc.raw, methods)
			got := converse(t, b.addr, tc.raw, methods)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("net/http and front differ (-net/http +front):\n%s", diff)
			}
			wantHandoffs := map[string]uint64{}
			if tc.handoff != "" {
				wantHandoffs[tc.handoff] = 1
			}
			if diff := cmp.Diff(wantHandoffs, handoffs(b.fs)); diff != "" {
				t.Errorf("hand-offs (-want +got):\n%s", diff)
			}
		})
	}
}

// seen is what a handler saw of a request.
type seen struct {
	Method, RequestURI, Host, Proto string
	URL                             string
	Path, RawPath, RawQuery         string
	URLHost, URLScheme              string
	ProtoMajor, ProtoMinor          int
	Header                          http.Header
	ContentLength                   int64
	Close                           bool
	NoBody                          bool
	Body                            string
	BodyErr                         string
	TransferEncoding                []string
	Trailer                         http.Header
	RemoteAddrOK                    bool
}

func record(ch chan<- seen) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noBody := r.Body == http.NoBody
		body, err := io.ReadAll(r.Body)
		_, _, aerr := net.SplitHostPort(r.RemoteAddr)
		ch <- seen{
			Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto,
			URL: r.URL.String(), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
			URLHost: r.URL.Host, URLScheme: r.URL.Scheme,
			ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
			Header: r.Header, ContentLength: r.ContentLength, Close: r.Close,
			NoBody: noBody, Body: string(body), BodyErr: fmt.Sprint(err),
			TransferEncoding: r.TransferEncoding, Trailer: r.Trailer,
			RemoteAddrOK: aerr == nil,
		}
		io.WriteString(w, "seen")
	}
}

// seenCases are requests the fast path serves itself.
func seenCases() []struct{ name, raw string } {
	return []struct{ name, raw string }{
		{"plain", get("/")},
		{"query", get("/p?q=1&r=%20&s=a+b&&t")},
		{"encoded slash", get("/a%2Fb/c")},
		{"encoded unicode", get("/%E2%82%AC/%7e?x=%E2%82%AC")},
		{"raw unicode", get("/é?q=ü")},
		{"double slash", get("//double//slash")},
		{"dot segments", get("/a/../b/./c")},
		{"repeated headers", get("/", "Accept: text/html", "Accept: */*", "Cookie: a=1", "Cookie: b=2")},
		{"mixed-case names", get("/", "x-lower-case: 1", "X-UPPER-CASE: 2", "content-TYPE: text/plain", "uSER-aGENT: t", "x_under: 3")},
		{"long name", get("/", "x-a-very-long-header-name-over-thirty-two-bytes: 1", "X-Thirty-Two-Bytes-Exactly-Name1: 2")},
		{"spaces around values", get("/", "X-Sp: \t a  b \t", "X-Empty:", "X-Tab:\tv")},
		{"obs-text value", get("/", "X-Utf: é ü \xff")},
		{"Content-Length body", post("/upload", "hello, body")},
		{"Content-Length: 0", post("/empty", "")},
		{"Content-Length with leading zeros", "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 005\r\n\r\nhello"},
		{"GET with a body", "GET / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc"},
		{"Host with port", "GET / HTTP/1.1\r\nHost: example.test:8080\r\n\r\n"},
		{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
		{"host name case", "GET / HTTP/1.1\r\nhost: Example.TEST\r\n\r\n"},
		{"Pragma: no-cache", get("/", "Pragma: no-cache")},
		{"Pragma: no-cache twice", get("/", "Pragma: x", "Pragma: no-cache")},
		{"Connection: close", get("/", "Connection: close")},
		{"Connection: keep-alive, Close", get("/", "Connection: keep-alive, Close")},
		{"Connection: close in a second field", get("/", "Connection: keep-alive", "Connection: close")},
		{"HEAD", "HEAD /h HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{"lowercase method", "get / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{"odd method", "M-SEARCH! / HTTP/1.1\r\nHost: example.test\r\n\r\n"},
		{"DELETE with a body", "DELETE /d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nok"},
	}
}

// TestRequestSeenByHandler compares the *http.Request the handler gets
// from the fast path with the one net/http gives it, for requests the
// fast path serves itself.
func TestRequestSeenByHandler(t *testing.T) {
	for _, tc := range seenCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := make(chan seen, 1)
			h := withProbe(record(ch))
			a := startNetHTTP(t, h, nil)
			b := startFront(t, h, Config{}, nil)
			method := tc.raw[:strings.IndexByte(tc.raw, ' ')]
			saw := func(addr string) seen {
				t.Helper()
				tr := converse(t, addr, tc.raw, []string{method})
				if len(tr.Answers) != 1 || tr.Answers[0].Status != "200 OK" {
					t.Fatalf("answer from %s: %+v", addr, tr)
				}
				select {
				case s := <-ch:
					return s
				default:
					t.Fatalf("the handler at %s saw nothing", addr)
				}
				return seen{}
			}
			want, got := saw(a), saw(b.addr)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request seen by the handler (-net/http +front):\n%s", diff)
			}
			if !got.RemoteAddrOK {
				t.Errorf("RemoteAddr is not host:port")
			}
			if n := handoffs(b.fs); len(n) != 0 {
				t.Errorf("handed off %v; want the fast path to serve it", n)
			}
		})
	}
}
