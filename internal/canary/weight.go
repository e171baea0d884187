package canary

import (
	"fmt"
	"math"
	"sync/atomic"
)

// scale is the resolution of a weight: parts per million of the traffic,
// so a weight can be set in steps of 0.0001 %.
const scale = 1_000_000

// weight is a route's share of traffic for the candidate, with the counter
// that spreads that share evenly over the requests. It is replaced whole,
// never changed, so that SetWeight restarts the spreading cleanly.
type weight struct {
	pct float64 // as configured, 0..100
	ppm uint64  // pct in parts per million, 0..scale
	n   atomic.Uint64
}

func newWeight(pct float64) (*weight, error) {
	if !(pct >= 0 && pct <= 100) {
		return nil, fmt.Errorf("weight %v: must be between 0 and 100", pct)
	}
	return &weight{pct: pct, ppm: uint64(math.Round(pct * scale / 100))}, nil
}

// next reports whether the next request without a sticky key goes to the
// candidate. It is a smooth counter (error diffusion in integers): after n
// requests exactly floor(n*ppm/scale) have gone to the candidate, so any
// run of requests is within one request of the weight, 0 % and 100 % are
// exact, and at 50 % every window of 10 consecutive requests holds 5.
// Concurrent callers each get a distinct step of the sequence.
func (w *weight) next() bool {
	// The sequence repeats every scale requests; work modulo scale so that
	// the product never overflows.
	k := (w.n.Add(1) - 1) % scale
	return (k+1)*w.ppm/scale > k*w.ppm/scale
}

// takes reports whether an assignment in [0,1) falls in the candidate's
// share: a raised weight only ever adds assignments to it.
func (w *weight) takes(assignment float64) bool {
	return assignment < float64(w.ppm)/scale
}

// threshold is the candidate's share as a fraction, 0..1.
func (w *weight) threshold() float64 { return float64(w.ppm) / scale }
