package shadow

import (
	"time"

	"github.com/miffy-proxy/miffy/internal/canary"
)

// requestIDHeader carries the correlation id of a canary route's request
// upstream, and in its event.
const requestIDHeader = "X-Request-Id"

// correlate gives a canary route's request its correlation id when canary
// events are on: the client's X-Request-Id, else a new one, which is then
// sent upstream as X-Request-Id (replays included: forwardFields).
func (p *Proxy) correlate(c *call) {
	if p.cfg.CanaryEvents == nil {
		return
	}
	c.reqID = c.r.Header.Get(requestIDHeader)
	if c.reqID == "" {
		c.reqID = p.ids.next()
	}
}

// canaryEvent hands the event of a canary route's request to
// Config.CanaryEvents, once its answer is complete.
func (p *Proxy) canaryEvent(c *call) {
	if p.cfg.CanaryEvents == nil || c.dec == nil {
		return
	}
	p.cfg.CanaryEvents(canary.Event{
		Time:          c.start,
		Route:         c.route.Name,
		Side:          c.role,
		Canary:        c.role == "candidate",
		Rule:          c.dec.Rule,
		CorrelationID: c.reqID,
		DurationMS:    float64(time.Since(c.start).Microseconds()) / 1000,
		Status:        c.status,
		Fallback:      c.retried,
	})
}
