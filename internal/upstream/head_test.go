package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReadCommon: whatever the common-kind parser accepts, net/http reads
// the same way (status, fields, framing, body).
func FuzzReadCommon(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi",
		"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"HTTP/1.1 200\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"HTTP/1.1 500 Oops\r\nContent-Length:  5 \r\nX-Empty:\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		x := new(exch)
		if !readCommon(bufio.NewReaderSize(bytes.NewReader(in), 4096), method, x) {
			return
		}
		got := &x.resp
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

// TestReadCommonDeclines: the kinds left to net/http are not taken.
func TestReadCommonDeclines(t *testing.T) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 200 OK\r\n\r\nto the close",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\n Folded: x\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: " + strings.Repeat("9", 30) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 0\r\n\r\n",
	} {
		br := bufio.NewReaderSize(strings.NewReader(s), 4096)
		if readCommon(br, "GET", new(exch)) {
			t.Errorf("%.60q: taken, want left to net/http", s)
			continue
		}
		// Nothing consumed: net/http reads it all.
		if got, _ := br.Peek(min(len(s), 4096)); string(got) != s[:len(got)] {
			t.Errorf("%.60q: bytes consumed", s)
		}
	}
	if readCommon(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")), "HEAD", new(exch)) {
		t.Error("HEAD taken")
	}
}
