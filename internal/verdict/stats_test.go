package verdict

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestWilson(t *testing.T) {
	// Expected values from the Wilson score formula with z = 1.6449 (a
	// one-sided 95 % bound), computed independently.
	tests := []struct {
		name   string
		k, n   int64
		lo, hi float64
	}{
		{"no regression in 3000", 0, 3000, 0, 0.00090104},
		{"no regression in 2000", 0, 2000, 0, 0.00135094},
		{"8 in 1000", 8, 1000, 0.00451343, 0.01414164},
		{"half", 50, 100, 0.41884780, 0.58115220},
		{"all", 10, 10, 0.78705803, 1},
		{"no evidence", 0, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := Wilson(tt.k, tt.n, 0.95)
			if !near(lo, tt.lo, 1e-5) || !near(hi, tt.hi, 1e-5) {
				t.Errorf("Wilson(%d, %d) = %.8f, %.8f; want %.8f, %.8f", tt.k, tt.n, lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

// TestEvidenceForAPass pins the figure the README quotes: with no
// regression at all, the 95 % upper bound falls under 0.1 % only from 2 703
// compared requests on (the "rule of three" says about 3 000).
func TestEvidenceForAPass(t *testing.T) {
	_, hi := Wilson(0, 2702, 0.95)
	if hi < 0.001 {
		t.Errorf("2702 compared: upper bound %v already under 0.1 %%", hi)
	}
	_, hi = Wilson(0, 2703, 0.95)
	if hi >= 0.001 {
		t.Errorf("2703 compared: upper bound %v not under 0.1 %%", hi)
	}
}

func TestSignTest(t *testing.T) {
	tests := []struct {
		name           string
		slower, faster int64
		want           float64
	}{
		{"all slower of 10", 10, 0, 1.0 / 1024},
		{"even", 5, 5, 0.623046875},
		{"20 of 30", 20, 10, 0.04936857},
		{"none slower", 0, 10, 1},
		{"no pairs", 0, 0, 1},
		// Normal approximation past 100 000 pairs.
		{"100500 of 200000", 100500, 99500, 0.01274707},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignTest(tt.slower, tt.faster); !near(got, tt.want, 1e-6) {
				t.Errorf("SignTest(%d, %d) = %.8f, want %.8f", tt.slower, tt.faster, got, tt.want)
			}
		})
	}
	// The exact sum and the approximation agree where they meet.
	exact, approx := SignTest(50_200, 49_800), SignTest(100_400, 99_600)
	if !(exact < 0.11 && exact > 0.09) || !(approx < 0.04 && approx > 0.03) {
		t.Errorf("exact %v (want ≈ 0.10), approx %v (want ≈ 0.037)", exact, approx)
	}
}
