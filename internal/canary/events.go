package canary

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Event is what one request on a canary route did, as Mule's canary policy
// keeps it: which side served it, why, its correlation id (the request's
// X-Request-Id), how long it took and its status.
type Event struct {
	Time          time.Time `json:"time"`
	Route         string    `json:"route"`
	Side          string    `json:"side"`   // reference or candidate: what served the answer
	Canary        bool      `json:"canary"` // the candidate served it
	Rule          Rule      `json:"rule"`
	CorrelationID string    `json:"correlation_id"`
	DurationMS    float64   `json:"duration_ms"`
	Status        int       `json:"status"`             // 0: no answer (the client went away)
	Fallback      bool      `json:"fallback,omitempty"` // the candidate failed, the reference answered
}

// eventQueue bounds the events waiting to be written; past it they are
// dropped and counted, the request never waits.
const eventQueue = 4096

// EventLog writes Events as JSON lines to a writer, off the request path:
// Add queues, a goroutine writes. Make it with NewEventLog; Close it.
type EventLog struct {
	q       chan Event
	w       *bufio.Writer
	dropped prometheus.Counter
	done    chan struct{}

	mu     sync.RWMutex // closed and closing q
	closed bool
}

// NewEventLog starts writing events to w; its drop counter is registered
// with reg.
func NewEventLog(w io.Writer, reg prometheus.Registerer) *EventLog {
	l := &EventLog{
		q:    make(chan Event, eventQueue),
		w:    bufio.NewWriter(w),
		done: make(chan struct{}),
		dropped: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "miffy_canary_events_dropped_total",
			Help: "Canary events ([canary] events) dropped because the writer fell behind.",
		}),
	}
	go l.run()
	return l
}

// Add queues e; it never blocks (a full queue drops e and counts it). After
// Close, e is dropped: a request that outlived the shutdown deadline may
// still end.
func (l *EventLog) Add(e Event) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Inc()
		return
	}
	select {
	case l.q <- e:
	default:
		l.dropped.Inc()
	}
}

func (l *EventLog) run() {
	defer close(l.done)
	enc := json.NewEncoder(l.w)
	for e := range l.q {
		enc.Encode(e) // an Event always encodes; a write error is the writer's
		if len(l.q) == 0 {
			l.w.Flush()
		}
	}
	l.w.Flush()
}

// Close writes what is queued and stops; it may be called more than once.
func (l *EventLog) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.q)
	}
	l.mu.Unlock()
	<-l.done
}
