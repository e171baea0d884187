package tally

import (
	"encoding/json"
	"fmt"
	"math"
)

// Durations are counted in log-spaced buckets: bucket 0 holds [0, histMin]
// ms, bucket i ≥ 1 holds (histMin·g^(i-1), histMin·g^i], the last one
// everything above. With g = 1.04 a quantile is reported within about 2%
// of a duration that was seen, from 1µs to about 25 minutes, in a fixed
// 4 KiB whatever the number of durations. Histograms with the same buckets
// merge exactly: the tallies of many instances and intervals add up to the
// histogram of all their durations.
const (
	histMin     = 0.001 // ms
	histGrowth  = 1.04
	histBuckets = 540
)

var logGrowth = math.Log(histGrowth)

// Histogram summarises durations in milliseconds in fixed memory. The zero
// value is empty and ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts   [histBuckets]int64
	n        int64
	min, max float64
}

// Add counts one duration in milliseconds; negative or NaN counts as 0.
func (h *Histogram) Add(ms float64) {
	if !(ms > 0) {
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

// Merge adds o's durations to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// N is the number of durations counted; Max the largest.
func (h *Histogram) N() int64     { return h.n }
func (h *Histogram) Max() float64 { return h.max }

func bucketOf(ms float64) int {
	if ms <= histMin {
		return 0
	}
	i := int(math.Ceil(math.Log(ms/histMin) / logGrowth))
	return max(1, min(i, histBuckets-1))
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the durations added: the
// geometric middle of the bucket holding the ⌈q·n⌉-th smallest duration,
// kept within the smallest and largest durations seen. 0 when empty.
func (h *Histogram) Quantile(q float64) float64 {
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

// histJSON is the wire form: only the buckets that hold durations, as
// [index, count] pairs, so an interval of a few requests stays small.
type histJSON struct {
	N       int64      `json:"n"`
	Min     float64    `json:"min_ms"`
	Max     float64    `json:"max_ms"`
	Buckets [][2]int64 `json:"buckets"`
}

// MarshalJSON writes the histogram sparsely.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histJSON{N: h.n, Min: h.min, Max: h.max, Buckets: [][2]int64{}}
	for i, c := range h.counts {
		if c != 0 {
			j.Buckets = append(j.Buckets, [2]int64{int64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote; bucket indexes out of range,
// negative counts or counts that do not add up to n are errors.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var got Histogram
	for _, bc := range j.Buckets {
		if bc[0] < 0 || bc[0] >= histBuckets || bc[1] < 0 {
			return fmt.Errorf("histogram bucket %d count %d out of range", bc[0], bc[1])
		}
		got.counts[bc[0]] += bc[1]
		got.n += bc[1]
	}
	if got.n != j.N || j.N < 0 || math.IsNaN(j.Min) || math.IsNaN(j.Max) {
		return fmt.Errorf("histogram: buckets hold %d durations, n says %d", got.n, j.N)
	}
	got.min, got.max = j.Min, j.Max
	*h = got
	return nil
}

// Above counts the durations in buckets above the one holding ms: those
// surely longer than ms (within the buckets' 4 %).
func (h *Histogram) Above(ms float64) int64 {
	var n int64
	for _, c := range h.counts[bucketOf(max(ms, 0))+1:] {
		n += c
	}
	return n
}
