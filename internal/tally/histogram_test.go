package tally

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHistogramQuantiles compares the histogram with exact quantiles of
// the same data: within 2.5% (the bucket width is 4%).
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() float64
	}{
		{"uniform 1-100ms", func() float64 { return 1 + 99*rng.Float64() }},
		{"lognormal", func() float64 { return math.Exp(rng.NormFloat64()*1.5 + 2) }},
		{"sub-millisecond", func() float64 { return 0.01 + rng.Float64()*0.5 }},
		{"bimodal", func() float64 {
			if rng.IntN(10) == 0 {
				return 2000 + rng.Float64()*100
			}
			return 5 + rng.Float64()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			vals := make([]float64, 20000)
			for i := range vals {
				vals[i] = tt.gen()
				h.Add(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := h.Quantile(q)
				if rel := math.Abs(got-exact) / exact; rel > 0.025 {
					t.Errorf("q%v = %v, exact %v (off by %.1f%%)", q, got, exact, 100*rel)
				}
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Errorf("empty histogram: %v", h.Quantile(0.5))
	}
	h.Add(0)
	h.Add(-1) // counted as 0
	h.Add(math.NaN())
	if h.Quantile(0.99) != 0 || h.n != 3 {
		t.Errorf("zeros: q99 %v, n %d", h.Quantile(0.99), h.n)
	}
	h.Add(1e12) // beyond the last bucket: reported as the maximum
	if h.Quantile(1) != 1e12 || h.max != 1e12 {
		t.Errorf("huge: %v", h.Quantile(1))
	}
	var one Histogram
	one.Add(42)
	if one.Quantile(0.5) != 42 || one.Quantile(0.01) != 42 {
		t.Errorf("single value: %v %v", one.Quantile(0.5), one.Quantile(0.01))
	}
}

// TestHistogramMergeAndWire: histograms merged (and through their JSON
// form) are the histogram of all durations, exactly.
func TestHistogramMergeAndWire(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var all, a, b Histogram
	for i := range 5000 {
		v := math.Exp(rng.NormFloat64()*2 + 1)
		all.Add(v)
		if i%3 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	var merged Histogram
	for _, h := range []*Histogram{&a, &b} {
		j, err := h.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := back.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		merged.Merge(&back)
	}
	if merged != all {
		t.Errorf("merged n %d min %v max %v, want n %d min %v max %v", merged.n, merged.min, merged.max, all.n, all.min, all.max)
	}
	var empty Histogram
	merged.Merge(&empty)
	merged.Merge(nil)
	if merged != all {
		t.Error("merging nothing changed the histogram")
	}
}

func TestHistogramAbove(t *testing.T) {
	var h Histogram
	for _, ms := range []float64{1, 2, 5, 10, 10, 20, 50} {
		h.Add(ms)
	}
	for _, tt := range []struct {
		ms   float64
		want int64
	}{{0, 7}, {1, 6}, {9, 4}, {9.9, 2}, {10, 2}, {50, 0}, {1e9, 0}, {-1, 7}} { // 9.9 shares 10's bucket
		if got := h.Above(tt.ms); got != tt.want {
			t.Errorf("Above(%v) = %d, want %d", tt.ms, got, tt.want)
		}
	}
}
