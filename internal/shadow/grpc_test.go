package shadow

import (
	"io"
	"strings"
	"testing"
)

// grpcMsg frames one gRPC message.
func grpcMsg(payload string) string {
	n := len(payload)
	return string([]byte{0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}) + payload
}

// TestStreamTee: a call body is replayed only when it was read to its end
// and held exactly one message within the limit.
func TestStreamTee(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		readAll  bool
		limit    int64
		wantBody bool
	}{
		{"one message", grpcMsg("hello"), true, 100, true},
		{"empty message", grpcMsg(""), true, 100, true},
		{"two messages: a client stream", grpcMsg("a") + grpcMsg("b"), true, 100, false},
		{"not read to its end: still streaming", grpcMsg("a"), false, 100, false},
		{"over the limit", grpcMsg(strings.Repeat("x", 200)), true, 100, false},
		{"a cut message", grpcMsg("hello")[:7], true, 100, false},
		{"no message", "", true, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tee := &streamTee{rc: io.NopCloser(strings.NewReader(tt.body)), limit: tt.limit}
			if tt.readAll {
				if got, _ := io.ReadAll(tee); string(got) != tt.body {
					t.Fatalf("passed %q, want %q", got, tt.body)
				}
			} else {
				io.ReadFull(tee, make([]byte, len(tt.body)))
			}
			b, ok := tee.unary()
			if ok != tt.wantBody || ok && string(b) != tt.body {
				t.Errorf("unary() = %q, %v; want the body: %v", b, ok, tt.wantBody)
			}
		})
	}
}
