package report

import "math"

// Durations are counted in log-spaced buckets: bucket 0 holds [0, histMin]
// ms, bucket i ≥ 1 holds (histMin·g^(i-1), histMin·g^i], the last one
// everything above. With g = 1.04 a quantile is reported within about 2%
// of a duration that was seen, from 1µs to about 25 minutes, in a fixed
// 4 KiB whatever the number of records.
const (
	histMin     = 0.001 // ms
	histGrowth  = 1.04
	histBuckets = 540
)

var logGrowth = math.Log(histGrowth)

// histogram summarises durations in milliseconds in fixed memory.
type histogram struct {
	counts   [histBuckets]int64
	n        int64
	min, max float64
}

func (h *histogram) add(ms float64) {
	if !(ms > 0) { // negative or NaN: count as 0
		ms = 0
	}
	h.counts[bucketOf(ms)]++
	if h.n == 0 || ms < h.min {
		h.min = ms
	}
	if ms > h.max {
		h.max = ms
	}
	h.n++
}

func bucketOf(ms float64) int {
	if ms <= histMin {
		return 0
	}
	i := int(math.Ceil(math.Log(ms/histMin) / logGrowth))
	return max(1, min(i, histBuckets-1))
}

// quantile returns the q-quantile (0 < q ≤ 1) of the durations added: the
// geometric middle of the bucket holding the ⌈q·n⌉-th smallest duration,
// kept within the smallest and largest durations seen. 0 when empty.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := max(1, int64(math.Ceil(q*float64(h.n))))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		v := h.max // bucket 0 and the last bucket have no useful middle
		switch {
		case i == 0:
			v = h.min
		case i < histBuckets-1:
			v = histMin * math.Pow(histGrowth, float64(i)-0.5)
		}
		return min(max(v, h.min), h.max)
	}
	return h.max
}
