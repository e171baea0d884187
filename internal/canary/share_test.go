package canary

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestWeightShareConcurrent is the arithmetic shadow's TestCanaryShare
// once proved with 50,000 HTTP requests: n decisions taken by eight
// callers at once give the candidate exactly floor(n*weight/100), at any
// weight, 0 % and 100 % included.
func TestWeightShareConcurrent(t *testing.T) {
	t.Parallel()
	for _, w := range []float64{0, 0.1, 12.5, 50, 99.9, 100} {
		t.Run(strconv.FormatFloat(w, 'f', -1, 64), func(t *testing.T) {
			t.Parallel()
			r := newRouter(t, Config{Weight: w})
			const n, callers = 10000, 8
			var cand, ref atomic.Int64
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for i := c; i < n; i += callers {
						switch d := r.Decide(get(t), nil, "/x", nil); {
						case d.Rule != RuleWeight:
							t.Errorf("rule %q, want weight", d.Rule)
							return
						case d.Side == Candidate:
							cand.Add(1)
						default:
							ref.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := cand.Load() + ref.Load(); got != n {
				t.Fatalf("%d decisions, want %d", got, n)
			}
			if got, want := cand.Load(), int64(math.Floor(n*w/100)); got != want {
				t.Errorf("candidate got %d of %d, want exactly %d", got, n, want)
			}
		})
	}
}
