package publish

import (
	"sync/atomic"
	"time"
)

// rateLimiter lets at most one log line through per period, so that a flood
// of drops or failures cannot flood the log; each line carries how many
// events happened since the previous one.
type rateLimiter struct {
	every time.Duration
	now   func() time.Time
	last  atomic.Int64 // unix nanoseconds of the last line; 0: none yet
	count atomic.Int64 // events since the last line
}

func newRateLimiter(every time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{every: every, now: now}
}

// event records n events. When a line is due it returns true and the number
// of events it should report (these n included).
func (l *rateLimiter) event(n int64) (int64, bool) {
	l.count.Add(n)
	now := l.now().UnixNano()
	last := l.last.Load()
	if last != 0 && now-last < int64(l.every) {
		return 0, false
	}
	if !l.last.CompareAndSwap(last, now) {
		return 0, false // another goroutine writes this line
	}
	// Events counted by others between our Add and this Swap are reported
	// here rather than on the next line: none is lost or counted twice.
	return l.count.Swap(0), true
}
