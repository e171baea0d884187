package shadow

import (
	"strconv"
	"testing"
)

// TestFramingScanner feeds request streams to the framing scanner in
// pieces of every size, as reads of a connection would deliver them.
func TestFramingScanner(t *testing.T) {
	get := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	both := "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	// Bodies that hold text that looks like a conflicting head.
	fake := "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name      string
		stream    string
		conflict  bool
		wantState int // where the scanner ends, when there is no conflict
	}{
		{"pipelined GETs", get + get + get, false, frameHead},
		{"blank lines before a request", "\r\n\r\n" + get, false, frameHead},
		{"Content-Length body that looks like a head", "POST /c HTTP/1.1\r\nContent-Length: " + itoa(len(fake)) + "\r\n\r\n" + fake + get, false, frameHead},
		{"chunked body that looks like a head", "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + hexLen(len(fake)) + ";ext=1\r\n" + fake + "\r\n0\r\nX-Trailer: 1\r\n\r\n" + get, false, frameHead},
		{"both fields", both, true, 0},
		{"both fields, after other requests", get + "POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nab" + both, true, 0},
		{"Transfer-Encoding first, lower case", "POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 13\r\n\r\n0\r\n\r\n", true, 0},
		{"bare line feeds", "POST /b HTTP/1.1\nHost: x\nContent-Length: 5\nTransfer-Encoding: chunked\n\n", true, 0},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + both, false, frameOff},
		{"Transfer-Encoding other than chunked", "POST /b HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n" + both, false, frameOff},
		{"a body still coming", "POST /c HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc", false, frameBody},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 2, 3, 5, 8, 13, 64, len(tt.stream)} {
			var f framing
			for s := tt.stream; len(s) > 0; {
				n := min(size, len(s))
				f.feed([]byte(s[:n]))
				s = s[n:]
			}
			if f.conflict != tt.conflict {
				t.Errorf("%s, reads of %d bytes: conflict %v, want %v", tt.name, size, f.conflict, tt.conflict)
			}
			if !tt.conflict && f.state != tt.wantState {
				t.Errorf("%s, reads of %d bytes: ends in state %d, want %d", tt.name, size, f.state, tt.wantState)
			}
		}
	}
}

func itoa(n int) string   { return strconv.Itoa(n) }
func hexLen(n int) string { return strconv.FormatInt(int64(n), 16) }

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/api/1", false},
		{"/api/v1.2/x", false},
		{"/api/..x", false},
		{"/api/..%2f..%2fadmin", false}, // %2f is data: one segment
		{"/files/.hidden", false},
		{"/api/../admin", true},
		{"/api/./x", true},
		{"/api/..", true},
		{"/api/%2e%2e/admin", true},
		{"/api/%2E./admin", true},
		{"/api/.%2e", true},
		{"/%2e/x", true},
	}
	for _, tt := range tests {
		if got := hasDotSegment(tt.path); got != tt.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// FuzzFraming: however a stream is cut into reads, the scanner comes to the
// same verdict.
func FuzzFraming(f *testing.F) {
	f.Add("POST /b HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 3)
	f.Add("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\nc\r\n0\r\n\r\n", 7)
	f.Fuzz(func(t *testing.T, stream string, size int) {
		size = 1 + abs(size)%64
		var whole, pieces framing
		whole.feed([]byte(stream))
		for s := stream; len(s) > 0; {
			n := min(size, len(s))
			pieces.feed([]byte(s[:n]))
			s = s[n:]
		}
		if whole.conflict != pieces.conflict || whole.state != pieces.state || whole.left != pieces.left {
			t.Errorf("whole: conflict %v state %d left %d; in reads of %d: conflict %v state %d left %d",
				whole.conflict, whole.state, whole.left, size, pieces.conflict, pieces.state, pieces.left)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
