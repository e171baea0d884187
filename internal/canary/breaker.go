package canary

import (
	"fmt"
	"sync"
	"time"
)

// State is a circuit breaker's state; the numbers are those of the
// miffy_canary_breaker_state gauge.
type State int

const (
	Closed   State = 0 // the candidate gets its share
	Open     State = 1 // tripped: the reference serves everything
	HalfOpen State = 2 // after the cooldown: a few probes reach the candidate
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// BreakerConfig sets when a route stops sending traffic to its candidate.
// Nothing takes a default: a zero means what its field says (package config
// resolves a route's values from [canary]).
type BreakerConfig struct {
	// MaxErrors trips the breaker when the candidate gave this many
	// errors (non-2xx answers or no answer) within Window. Zero: off.
	MaxErrors int
	// MaxErrorRate trips the breaker when more than this share (0..1) of
	// the candidate's answers within Window are errors, once there are at
	// least MinRequests of them. Zero: off.
	MaxErrorRate float64
	// MinRequests is the fewest answers MaxErrorRate is judged on. Zero:
	// no minimum.
	MinRequests int
	// MaxRequests caps the requests sent to the candidate within Window;
	// past it the reference serves. Zero: no cap.
	MaxRequests int
	// MaxRPS caps the requests per second sent to the candidate (a token
	// bucket holding one second's worth). Zero: no cap.
	MaxRPS float64
	// Window is the rolling window errors and requests are counted over.
	// Zero: no rolling window; they count from the breaker's last closing.
	Window time.Duration
	// Cooldown is how long a tripped breaker stays open before it lets
	// probes through. Zero: it stays open until Reset.
	Cooldown time.Duration
	// Probes is how many requests a half-open breaker lets through; all
	// must succeed to close it, one failure opens it again. Zero: the
	// breaker closes when the cooldown is over, without probes.
	Probes int
}

// buckets is the number of slots the rolling window is kept in.
const buckets = 10

type bucket struct {
	slot     int64 // which slot of time this bucket holds counts for
	admitted int   // requests sent to the candidate
	answers  int   // answers judged
	errors   int   // of which errors
}

// verdict is what the breaker says about one request bound for the
// candidate.
type verdict uint8

const (
	pass      verdict = iota
	passProbe         // half-open: this request is a probe, report it
	blocked           // open, or half-open with the probes taken
	limited           // over max_requests or max_rps
)

// Breaker guards a route's candidate: it trips on errors, limits the
// traffic, and recovers through probes. It is safe for concurrent use.
type Breaker struct {
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(from, to State) // called outside the lock

	mu       sync.Mutex
	state    State
	openedAt time.Time
	probes   int // half-open: probes let through and not yet given back
	probeOK  int // half-open: probes that succeeded
	win      [buckets]bucket
	tokens   float64
	refilled time.Time
}

// NewBreaker returns a closed breaker. now is the clock (time.Now if nil);
// onChange, if not nil, hears of every state change.
func NewBreaker(cfg BreakerConfig, now func() time.Time, onChange func(from, to State)) *Breaker {
	if now == nil {
		now = time.Now
	}
	b := &Breaker{cfg: cfg, now: now, onChange: onChange}
	b.tokens = b.burst()
	b.refilled = now()
	return b
}

func (b *Breaker) burst() float64 { return max(1, b.cfg.MaxRPS) }

// State returns the breaker's state now (an open breaker past its cooldown
// is half-open).
func (b *Breaker) State() State {
	b.mu.Lock()
	from, to := b.tick(b.now())
	s := b.state
	b.mu.Unlock()
	b.changed(from, to)
	return s
}

// Reset closes the breaker and forgets the window.
func (b *Breaker) Reset() {
	b.mu.Lock()
	from := b.state
	b.state = Closed
	b.win = [buckets]bucket{}
	b.probes, b.probeOK = 0, 0
	b.mu.Unlock()
	b.changed(from, Closed)
}

func (b *Breaker) changed(from, to State) {
	if from != to && b.onChange != nil {
		b.onChange(from, to)
	}
}

// tick moves an open breaker past its cooldown to half-open. b.mu is held.
func (b *Breaker) tick(now time.Time) (from, to State) {
	from = b.state
	if b.state == Open && b.cfg.Cooldown > 0 && !now.Before(b.openedAt.Add(b.cfg.Cooldown)) {
		b.setState(HalfOpen, now)
		if b.cfg.Probes == 0 {
			b.setState(Closed, now)
		}
	}
	return from, b.state
}

// setState changes state; b.mu is held.
func (b *Breaker) setState(s State, now time.Time) {
	b.state = s
	switch s {
	case Open:
		b.openedAt = now
	case Closed:
		b.win = [buckets]bucket{}
	}
	b.probes, b.probeOK = 0, 0
}

// bucketAt returns the window's bucket for now, cleared if it held an older
// slot. b.mu is held.
func (b *Breaker) bucketAt(now time.Time) *bucket {
	slot := b.slot(now)
	bk := &b.win[slot%buckets]
	if bk.slot != slot {
		*bk = bucket{slot: slot}
	}
	return bk
}

// sum adds up the buckets inside the window ending now. b.mu is held.
func (b *Breaker) sum(now time.Time) (admitted, answers, errors int) {
	slot := b.slot(now)
	for _, bk := range b.win {
		if bk.slot > slot-buckets && bk.slot <= slot {
			admitted += bk.admitted
			answers += bk.answers
			errors += bk.errors
		}
	}
	return admitted, answers, errors
}

// admit judges one request bound for the candidate. external requests
// (decisions for another proxy, whose outcome miffy never sees) are never
// made probes.
func (b *Breaker) admit(external bool) verdict {
	now := b.now()
	b.mu.Lock()
	from, to := b.tick(now)
	v := b.admitLocked(now, external)
	b.mu.Unlock()
	b.changed(from, to)
	return v
}

func (b *Breaker) admitLocked(now time.Time, external bool) verdict {
	switch b.state {
	case Open:
		return blocked
	case HalfOpen:
		if external || b.probes >= b.cfg.Probes {
			return blocked
		}
		b.probes++
		return passProbe
	}
	if b.cfg.MaxRequests > 0 {
		if admitted, _, _ := b.sum(now); admitted >= b.cfg.MaxRequests {
			return limited
		}
	}
	if b.cfg.MaxRPS > 0 {
		b.tokens = min(b.burst(), b.tokens+now.Sub(b.refilled).Seconds()*b.cfg.MaxRPS)
		b.refilled = now
		if b.tokens < 1 {
			return limited
		}
		b.tokens--
	}
	b.bucketAt(now).admitted++
	return pass
}

// outcome is how a candidate answer counts.
type outcome uint8

const (
	success outcome = iota
	failure
	abandoned // the client went away: neither success nor failure
)

// record feeds one candidate answer to the breaker.
func (b *Breaker) record(o outcome, probe bool) {
	now := b.now()
	b.mu.Lock()
	from, _ := b.tick(now)
	b.recordLocked(o, probe, now)
	to := b.state
	b.mu.Unlock()
	b.changed(from, to)
}

func (b *Breaker) recordLocked(o outcome, probe bool, now time.Time) {
	if probe {
		if b.state != HalfOpen {
			return // a probe of an earlier half-open spell
		}
		switch o {
		case abandoned:
			b.probes-- // give the slot back
		case failure:
			b.setState(Open, now)
		case success:
			if b.probeOK++; b.probeOK >= b.cfg.Probes {
				b.setState(Closed, now)
			}
		}
		return
	}
	if b.state != Closed || o == abandoned {
		return // answers to requests let through before the breaker tripped
	}
	bk := b.bucketAt(now)
	bk.answers++
	if o == failure {
		bk.errors++
	}
	_, answers, errors := b.sum(now)
	switch {
	case b.cfg.MaxErrors > 0 && errors >= b.cfg.MaxErrors,
		b.cfg.MaxErrorRate > 0 && answers >= b.cfg.MinRequests && float64(errors)/float64(answers) > b.cfg.MaxErrorRate:
		b.setState(Open, now)
	}
}

// slot is the number of the window's slot that holds now; without a window
// there is one slot, 0, emptied when the breaker closes.
func (b *Breaker) slot(now time.Time) int64 {
	if b.cfg.Window == 0 {
		return 0
	}
	return now.UnixNano() / max(1, int64(b.cfg.Window/buckets))
}
