package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
)

func TestConsole(t *testing.T) {
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:4])
	}
	tests := []struct {
		name   string
		change func(r *Record)
		want   []string
	}{
		{
			name: "difference",
			change: func(r *Record) {
				r.Reference.Body = []byte(`{"price":1}`)
				r.Candidate.Body = []byte(`{"price":2}`)
			},
			want: []string{
				"REQUEST 0001 => (GET /api/3?x=1, headers: accept=*/*, authorization=[REDACTED], x-multi=a, b)",
				"RESPONSE 0001 reference => (200, 1.2ms, 11 bytes, sha256:" + sum(`{"price":1}`) + "…)",
				"RESPONSE 0001 candidate => (200, 2.0ms, 11 bytes, sha256:" + sum(`{"price":2}`) + "…)",
				"DIFF 0001 regression $.price",
			},
		},
		{
			name: "equal, with a secondary",
			change: func(r *Record) {
				r.Equal, r.Diffs = true, nil
				r.Request.Header = http.Header{"Accept": {"*/*"}}
				r.Reference.Body = []byte("same")
				r.Candidate.Body = []byte("same")
				r.Secondary = &Side{Status: 200, Body: []byte("same"), Duration: 1100 * time.Microsecond}
			},
			want: []string{
				"REQUEST 0001 => (GET /api/3?x=1, headers: accept=*/*)",
				"RESPONSE 0001 reference => (200, 1.2ms, 4 bytes, sha256:" + sum("same") + "…)",
				"RESPONSE 0001 secondary => (200, 1.1ms, 4 bytes, sha256:" + sum("same") + "…)",
				"RESPONSE 0001 candidate => (200, 2.0ms, 4 bytes, sha256:" + sum("same") + "…)",
			},
		},
		{
			name: "candidate error",
			change: func(r *Record) {
				r.Request.Header = nil
				r.Reference.Body = nil
				r.Candidate = Side{Err: fmt.Errorf("calling: %w", context.DeadlineExceeded), Duration: 5 * time.Second}
				r.Diffs = []compare.Diff{{Path: "error", Kind: compare.Changed, Candidate: "timeout", Class: compare.Regression}}
			},
			want: []string{
				"REQUEST 0001 => (GET /api/3?x=1, headers: )",
				"RESPONSE 0001 reference => (200, 1.2ms, 0 bytes, sha256:" + sum("") + "…)",
				"RESPONSE 0001 candidate => (error: timeout, 5000.0ms)",
				"DIFF 0001 regression error",
			},
		},
	}
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := testRecord()
			tt.change(r)
			if !NewConsole(&buf, enc).Publish(r) {
				t.Fatal("Publish returned false")
			}
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("console lines (-want +got):\n%s", diff)
			}
		})
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

// TestConsoleConcurrent checks that blocks are written whole, one Write each.
func TestConsoleConcurrent(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	var w countingWriter
	c := NewConsole(&w, enc)
	var wg sync.WaitGroup
	const n = 50
	for i := range n {
		wg.Go(func() {
			r := testRecord()
			r.ID = fmt.Sprintf("id%02d", i)
			c.Publish(r)
		})
	}
	wg.Wait()
	if w.writes != n {
		t.Errorf("writes = %d, want %d", w.writes, n)
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	for i := 0; i+4 <= len(lines); i += 4 {
		id := strings.Fields(lines[i])[1]
		for _, l := range lines[i+1 : i+4] {
			if strings.Fields(l)[1] != id {
				t.Fatalf("block of %s interleaved: %q", id, l)
			}
		}
	}
}
