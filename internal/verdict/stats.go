package verdict

import "math"

// z is the one-sided standard normal quantile of confidence: a bound at
// confidence c is exceeded by chance with probability 1-c.
func z(confidence float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*confidence-1)
}

// Wilson returns the Wilson score bounds of a rate k/n, each one-sided at
// confidence (together, a two-sided interval at 2·confidence-1). With n = 0
// they are 0 and 1: no evidence either way.
func Wilson(k, n int64, confidence float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	k = min(max(k, 0), n)
	zz := z(confidence)
	nf, p := float64(n), float64(k)/float64(n)
	z2 := zz * zz
	centre := p + z2/(2*nf)
	spread := zz * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	den := 1 + z2/nf
	lo = max(0, (centre-spread)/den)
	hi = min(1, (centre+spread)/den)
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return lo, hi
}

// SignTest returns the one-sided p-value of the candidate being slower on
// slower of slower+faster paired requests (ties left out) if slower and
// faster were equally likely: P(X ≥ slower) for X ~ Binomial(n, ½). Small
// means the candidate is slower more often than chance allows. 1 without
// pairs.
func SignTest(slower, faster int64) float64 {
	n := slower + faster
	if n <= 0 || slower <= 0 {
		return 1
	}
	if n > 100_000 {
		// Normal approximation with continuity correction.
		nf := float64(n)
		zz := (float64(slower) - 0.5 - nf/2) / math.Sqrt(nf/4)
		return 0.5 * math.Erfc(zz/math.Sqrt2)
	}
	// Exact: sum the binomial terms from slower to n in log space.
	lgN1, _ := math.Lgamma(float64(n) + 1)
	p := 0.0
	for k := slower; k <= n; k++ {
		lgK1, _ := math.Lgamma(float64(k) + 1)
		lgNK1, _ := math.Lgamma(float64(n-k) + 1)
		term := math.Exp(lgN1 - lgK1 - lgNK1 - float64(n)*math.Ln2)
		p += term
		if term < 1e-18*p {
			break
		}
	}
	return min(p, 1)
}
