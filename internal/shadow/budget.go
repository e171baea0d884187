package shadow

import "sync/atomic"

// budget bounds what replays in flight hold: a count and a number of bytes.
// It never blocks; a caller that cannot get what it asks for gives up.
type budget struct {
	maxCount int64
	maxBytes int64
	count    atomic.Int64
	bytes    atomic.Int64
}

func newBudget(maxCount, maxBytes int64) *budget {
	return &budget{maxCount: maxCount, maxBytes: maxBytes}
}

// start takes one slot and n bytes, or nothing.
func (b *budget) start(n int64) bool {
	if b.count.Add(1) > b.maxCount {
		b.count.Add(-1)
		return false
	}
	if !b.take(n) {
		b.count.Add(-1)
		return false
	}
	return true
}

// take reserves n more bytes, or nothing.
func (b *budget) take(n int64) bool {
	if n <= 0 {
		return true
	}
	if b.bytes.Add(n) > b.maxBytes {
		b.bytes.Add(-n)
		return false
	}
	return true
}

// finish gives back one slot and n bytes.
func (b *budget) finish(n int64) {
	b.bytes.Add(-n)
	b.count.Add(-1)
}

// capture keeps the first bytes of a response body for comparison, up to a
// limit and as far as the budget allows. It never fails the stream it
// watches: past a bound it only stops keeping bytes and says so.
type capture struct {
	b      *budget
	limit  int64
	buf    []byte
	held   int64 // bytes taken from the budget
	total  int64 // bytes seen
	cut    bool  // stopped at limit: compared by its first bytes
	denied bool  // the budget said no: the comparison is dropped
}

func (c *capture) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if c.cut || c.denied {
		return len(p), nil
	}
	keep := p
	if room := c.limit - int64(len(c.buf)); int64(len(keep)) > room {
		keep = keep[:room]
		c.cut = true
	}
	if need := int64(len(c.buf)+len(keep)) - c.held; need > 0 {
		// Reserve in steps so that small bodies do not pay a call per read.
		step := max(need, 32<<10)
		step = min(step, c.limit-c.held)
		step = max(step, need)
		if !c.b.take(step) {
			c.denied = true
			return len(p), nil
		}
		c.held += step
	}
	c.buf = append(c.buf, keep...)
	return len(p), nil
}
