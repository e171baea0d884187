package shadow

import (
	"bytes"
	"testing"
)

// TestCaptureHoldsWhatItKeeps: a capture takes from the budget what its
// buffer holds, no more (a 150-byte body does not count as 32 KiB) and
// no less (a growing buffer counts its capacity), and gives up, without
// failing the stream, where the budget or its limit ends.
func TestCaptureHoldsWhatItKeeps(t *testing.T) {
	body := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	write := func(c *capture, p []byte, chunk int) {
		for len(p) > 0 {
			n := min(chunk, len(p))
			if got, err := c.Write(p[:n]); got != n || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", got, err, n)
			}
			p = p[n:]
		}
	}
	cases := []struct {
		name       string
		budget     int64
		limit      int64
		length     int64 // Content-Length given to expect; 0 for none
		size       int
		wantHeld   int64
		wantKept   int
		wantCut    bool
		wantDenied bool
	}{
		{"small body with its length", 1 << 20, 1 << 20, 150, 150, 150, 150, false, false},
		{"small body without a length", 1 << 20, 1 << 20, 0, 150, 150, 150, false, false},
		{"large body with its length", 1 << 20, 1 << 20, 100000, 100000, 100000, 100000, false, false},
		{"large body without a length", 1 << 20, 1 << 20, 0, 100000, 131072, 100000, false, false},
		{"over the limit", 1 << 20, 4096, 10000, 10000, 4096, 4096, true, false},
		{"over the limit without a length", 1 << 20, 4096, 0, 10000, 4096, 4096, true, false},
		{"over the budget", 1000, 1 << 20, 5000, 5000, 0, 0, false, true},
		{"over the budget while growing", 100000, 1 << 20, 0, 200000, 65536, 65536, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(10, tc.budget)
			c := &capture{b: b, limit: tc.limit}
			c.expect(tc.length)
			write(c, body(tc.size), 32<<10)
			if c.held != tc.wantHeld || len(c.buf) != tc.wantKept || c.cut != tc.wantCut || c.denied != tc.wantDenied {
				t.Errorf("held %d, kept %d, cut %v, denied %v; want %d, %d, %v, %v",
					c.held, len(c.buf), c.cut, c.denied, tc.wantHeld, tc.wantKept, tc.wantCut, tc.wantDenied)
			}
			if int64(cap(c.buf)) != c.held {
				t.Errorf("buffer capacity %d, held %d: the budget does not count what is kept", cap(c.buf), c.held)
			}
			if got := b.bytes.Load(); got != c.held {
				t.Errorf("budget says %d bytes taken, capture holds %d", got, c.held)
			}
			if c.total != int64(tc.size) {
				t.Errorf("saw %d bytes, want %d", c.total, tc.size)
			}
		})
	}
}
