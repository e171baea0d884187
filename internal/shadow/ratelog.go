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
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(r.every) || !r.last.CompareAndSwap(last, now) {
		r.missed.Add(1)
		return
	}
	l.Warn().Int64("count", r.missed.Swap(0)+1).Msg(msg)
}
