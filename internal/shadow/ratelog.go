package shadow

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// rateLog logs a repeated event at most once per period, with the number of
// events since the last line, so that a flood of drops cannot flood the log.
type rateLog struct {
	every  time.Duration
	last   atomic.Int64 // unix nanoseconds of the last line
	missed atomic.Int64
}

func (r *rateLog) log(l zerolog.Logger, msg string) {
	if n, ok := r.allow(); ok {
		l.Warn().Int64("count", n).Msg(msg)
	}
}

// allow reports whether a line may be logged now and, if so, how many
// events it stands for (this one and those not logged since the last).
func (r *rateLog) allow() (count int64, ok bool) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(r.every) || !r.last.CompareAndSwap(last, now) {
		r.missed.Add(1)
		return 0, false
	}
	return r.missed.Swap(0) + 1, true
}
