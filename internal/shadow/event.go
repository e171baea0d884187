package shadow

import (
	"net/http"
	"time"

	"github.com/miffy-proxy/miffy/internal/canary"
)

// requestIDHeader carries the correlation id of a canary route's request
// upstream, and in its event.
const requestIDHeader = "X-Request-Id"

// correlate gives a canary route's request its correlation id when canary
// events are on: the client's X-Request-Id, else a new one, which is then
// sent upstream as X-Request-Id (replays included).
func (p *Proxy) correlate(c *call, r *http.Request) {
	if p.cfg.CanaryEvents == nil {
		return
	}
	c.reqID = r.Header.Get(requestIDHeader)
	if c.reqID == "" {
		c.reqID = p.ids.next()
		r.Header.Set(requestIDHeader, c.reqID)
	}
}

// canaryEvent hands the event of a canary route's request to
// Config.CanaryEvents, once its answer is complete.
func (p *Proxy) canaryEvent(c *call, start time.Time) {
	if p.cfg.CanaryEvents == nil || c.dec == nil {
		return
	}
	p.cfg.CanaryEvents(canary.Event{
		Time:          start,
		Route:         c.route.Name,
		Side:          c.role,
		Canary:        c.role == "candidate",
		Rule:          c.dec.Rule,
		CorrelationID: c.reqID,
		DurationMS:    float64(time.Since(start).Microseconds()) / 1000,
		Status:        c.status,
		Fallback:      c.retried,
	})
}
