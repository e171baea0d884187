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

// release gives back n bytes (of a slot already finished).
func (b *budget) release(n int64) { b.bytes.Add(-n) }

// finish gives back one slot and n bytes.
func (b *budget) finish(n int64) {
	b.bytes.Add(-n)
	b.count.Add(-1)
}

// capture keeps the first bytes of a response body for comparison, up to a
// limit and as far as the budget allows. It never fails the stream it
// watches: past a bound it only stops keeping bytes and says so. What it
// takes from the budget is what its buffer holds (its capacity), so that
// the in-flight bytes bound and metric count memory, not a guess.
type capture struct {
	b      *budget
	limit  int64
	buf    []byte
	held   int64 // bytes taken from the budget: cap(buf)
	total  int64 // bytes seen
	cut    bool  // stopped at limit: compared by its first bytes
	denied bool  // the budget said no: the comparison is dropped
}

// expect sizes the buffer for a body of n bytes (its Content-Length), so
// that it is allocated once, at its size.
func (c *capture) expect(n int64) {
	if n > 0 && c.buf == nil && !c.denied {
		c.grow(min(n, c.limit))
	}
}

// grow gives the buffer a capacity of size bytes, or marks the capture
// denied.
func (c *capture) grow(size int64) bool {
	if !c.b.take(size - c.held) {
		c.denied = true
		return false
	}
	buf := make([]byte, len(c.buf), size)
	copy(buf, c.buf)
	c.buf, c.held = buf, size
	return true
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
	if n := int64(len(c.buf) + len(keep)); n > int64(cap(c.buf)) {
		size := max(n, 2*int64(cap(c.buf)))
		if !c.grow(max(min(size, c.limit), n)) {
			return len(p), nil
		}
	}
	c.buf = append(c.buf, keep...)
	return len(p), nil
}
