package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// read is readResponse on in, with a 4 KiB buffer as on a connection.
func read(in io.Reader, method string, max int) (*http.Response, error) {
	br := bufio.NewReaderSize(in, readBufSize)
	return readResponse(&br, in, &http.Request{Method: method}, new(exch), max)
}

// FuzzReadResponse: whatever readResponse accepts, net/http reads the
// same way (status, fields, framing, body); nothing it accepts holds a
// bare CR or LF, a NUL, a status outside 100..599 or a bad Content-Length.
// The seeds are in testdata/fuzz/FuzzReadResponse.
func FuzzReadResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		got, err := read(bytes.NewReader(in), method, 1<<20)
		if err != nil {
			return
		}
		if got.StatusCode < 100 || got.StatusCode > 599 {
			t.Fatalf("%q: accepted status %d", in, got.StatusCode)
		}
		if end := bytes.Index(in, headEnd); end < 0 || !plainLines(in[:end+4]) {
			t.Fatalf("%q: accepted a head without plain CRLF lines", in)
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("accepted %q, net/http: %v", in, err)
		}
		gotBody, gotErr := io.ReadAll(got.Body)
		wantBody, wantErr := io.ReadAll(want.Body)
		type view struct {
			Status        string
			StatusCode    int
			Header        http.Header
			ContentLength int64
			Close         bool
			Body          string
			Truncated     bool
		}
		g := view{got.Status, got.StatusCode, got.Header, got.ContentLength, got.Close, string(gotBody), gotErr != nil}
		w := view{want.Status, want.StatusCode, want.Header, want.ContentLength, want.Close, string(wantBody), wantErr != nil}
		if d := cmp.Diff(w, g); d != "" {
			t.Fatalf("%q: (-net/http +ours):\n%s", in, d)
		}
	})
}

// TestCheckHeadCommon: the kinds left to net/http are not parsed here,
// and those parsed here are.
func TestCheckHeadCommon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		head   string
		method string
		common bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", true},
		{"HTTP/1.1 200\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", "GET", true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "GET", false},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\n\r\n", "GET", false},
		{"HTTP/1.1 204 No Content\r\n\r\n", "GET", false},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", false},
		{"HTTP/1.1 100 Continue\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", "HEAD", false},
	}
	for _, tt := range tests {
		t.Run(tt.head, func(t *testing.T) {
			common, err := checkHead([]byte(tt.head), tt.method, new(http.Response))
			if err != nil || common != tt.common {
				t.Errorf("checkHead = %v, %v; want %v, nil", common, err, tt.common)
			}
		})
	}
}

// stall is a reader that has data, and then would wait forever: a test
// that reaches the wait fails with errStalled instead.
type stall struct{ r io.Reader }

var errStalled = errors.New("stalled: waited for more of the head")

func (s stall) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return n, errStalled
	}
	return n, err
}

// TestReadResponseRefuses: malformed heads fail as soon as they are read,
// with ErrMalformedResponse, not after a wait for more bytes (an upstream
// that keeps the connection open would hold the exchange until its
// timeout).
func TestReadResponseRefuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 6000)
	tests := []struct{ name, in string }{
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"},
		{"bare LF ends a field", "HTTP/1.1 200 OK\r\nX: 1\nContent-Length: 2\r\n\r\nhi"},
		{"bare LF after a long field", "HTTP/1.1 200 OK\r\nX: " + long + "\nContent-Length: 2\n\nhi"},
		{"bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nhi"},
		{"NUL", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\nhi"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nhi"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi"},
		{"no colon", "HTTP/1.1 200 OK\r\nnonsense\r\nContent-Length: 2\r\n\r\nhi"},
		{"control byte", "HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 2\r\n\r\nhi"},
		{"status 99", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nhi"},
		{"status 000", "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nhi"},
		{"status 600", "HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nhi"},
		{"status 999", "HTTP/1.1 999 High\r\nContent-Length: 2\r\n\r\nhi"},
		{"status not digits", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{"HTTP/2.0 in text", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{"no version", "200 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{"Content-Length -0", "HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n"},
		{"Content-Length -1", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"Content-Length +5", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"},
		{"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhello"},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"},
		{"Content-Length hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello"},
		{"Content-Length huge", "HTTP/1.1 200 OK\r\nContent-Length: " + strings.Repeat("9", 30) + "\r\n\r\n"},
		{"Content-Length differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi"},
		{"Content-Length differ on 204", "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"},
		{"Content-Length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"},
		{"unknown coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhi"},
		{"1xx then bad status", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 050 X\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD"} {
				in := stall{strings.NewReader(tt.in)}
				br := bufio.NewReaderSize(in, readBufSize)
				var err error
				for range 2 { // an interim answer, then the final one
					var resp *http.Response
					resp, err = readResponse(&br, in, &http.Request{Method: method}, new(exch), 1<<20)
					if err != nil || resp.StatusCode >= 200 {
						break
					}
				}
				if !errors.Is(err, ErrMalformedResponse) {
					t.Errorf("%s: err = %v, want ErrMalformedResponse", method, err)
				}
			}
		})
	}
}

// TestReadResponseAccepts: what is well formed passes, including what
// net/http reads itself and heads longer than the read buffer.
func TestReadResponseAccepts(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100<<10)
	tests := []struct {
		name, in string
		status   int
		body     string
	}{
		{"common", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi"},
		{"leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nhi", 200, "hi"},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi", 200, "hi"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, "hi"},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi"},
		{"no reason", "HTTP/1.1 599\r\nContent-Length: 2\r\n\r\nhi", 599, "hi"},
		{"status 100 boundary", "HTTP/1.1 100 Continue\r\n\r\n", 100, ""},
		{"long field", "HTTP/1.1 200 OK\r\nX: " + long + "\r\nContent-Length: 2\r\n\r\nhi", 200, "hi"},
		{"long chunked", "HTTP/1.1 200 OK\r\nX: " + long + "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := read(strings.NewReader(tt.in), "GET", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(result{tt.status, tt.body}, result{resp.StatusCode, string(b)}); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// endless is an upstream that sends one header field forever, counting
// what is read of it.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n == 0 {
		n := copy(p, "HTTP/1.1 200 OK\r\nX-Endless: ")
		e.n += n
		return n, nil
	}
	for i := range p {
		p[i] = 'a'
	}
	e.n += len(p)
	return len(p), nil
}

// TestReadResponseBounded: a head is read up to the limit and no further,
// whichever way it would be parsed; a head of exactly the limit passes.
func TestReadResponseBounded(t *testing.T) {
	t.Parallel()
	for _, max := range []int{100, 4096, 64 << 10, 1 << 20} {
		src := &endless{}
		_, err := read(src, "GET", max)
		if !errors.Is(err, ErrResponseHeaderTooLarge) {
			t.Errorf("max %d: err = %v, want ErrResponseHeaderTooLarge", max, err)
		}
		if src.n > max+readBufSize {
			t.Errorf("max %d: read %d bytes of the endless head", max, src.n)
		}
	}
	for _, max := range []int{100, 5000, 64 << 10} {
		const prefix, suffix = "HTTP/1.1 200 OK\r\nX: ", "\r\nContent-Length: 0\r\n\r\n"
		for _, size := range []int{max, max + 1} {
			in := prefix + strings.Repeat("a", size-len(prefix)-len(suffix)) + suffix
			for _, te := range []bool{false, true} { // common kind, or left to net/http
				if te {
					in = strings.Replace(in, "Content-Length: 0", "Transfer-Encoding: chunked", 1) + "0\r\n\r\n"
					in = strings.Replace(in, strings.Repeat("a", 10), "a", 1) // the same head size
				}
				_, err := read(strings.NewReader(in), "GET", max)
				if tooLarge := errors.Is(err, ErrResponseHeaderTooLarge); tooLarge != (size > max) || (err != nil && !tooLarge) {
					t.Errorf("max %d, head %d, chunked %v: err = %v", max, size, te, err)
				}
			}
		}
	}
}
