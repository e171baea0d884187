package shadow

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/httpsyntax"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// safeMethods are replayed on every route; others need allow_side_effects.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// prepare decides whether the request is shadowed and, if so, reads its
// body into memory once (up to MaxBodyBytes) and starts the replay. An
// error is the client's answer instead: its body could not be read.
func (p *Proxy) prepare(c *call) error {
	rt := c.route
	if reason := p.skipReason(c); reason != "" {
		rt.m.skipped(reason)
		return nil
	}
	flows := c.body.has() && isGRPC(c.r)
	if !flows {
		whole, err := c.body.fill(p.cfg.MaxBodyBytes)
		if err != nil {
			return bodyError(err)
		}
		if !whole {
			// Too big to keep: the reference gets what was read and the rest.
			rt.m.skipped("body_too_large")
			return nil
		}
	}
	body := c.body.bytes()
	if !p.budget.start(int64(len(body))) {
		rt.m.dropped("in_flight")
		p.drops.log(p.log, "replay dropped: in-flight bound reached (shadow.max_in_flight, shadow.max_in_flight_bytes)")
		return nil
	}
	c.x = p.newExchange(c, body)
	if flows {
		// A call's messages flow both ways before it ends: its body is
		// kept as it is sent, and replayed once the call is over
		// (startFlowed), if it was one message.
		c.tee = c.body.teeStream(p.cfg.MaxBodyBytes)
		return nil
	}
	p.wg.Add(1)
	go p.replay(c.x)
	return nil
}

// skipReason is why a request on a shadow route is not replayed (the
// reason label of miffy_shadow_skipped_total), or "".
func (p *Proxy) skipReason(c *call) string {
	rt, r := c.route, c.r
	switch {
	case rt.Paused:
		return "paused"
	case r.Header["Upgrade"] != nil:
		// A tunnel after a 101 is the client's alone: proxied, not shadowed.
		return "upgrade"
	case !rt.AllowSideEffects && !safeMethod(r.Method):
		return "method"
	case rt.Sample < 1 && (rt.Sample <= 0 || rand.Float64() >= rt.Sample):
		return "sample"
	case r.ContentLength > p.cfg.MaxBodyBytes:
		return "body_too_large"
	}
	return ""
}

// referenceDone tells the replay that the reference's answer is complete
// (on a canary route: the serving side's), and the canary router how the
// side it chose did.
func (p *Proxy) referenceDone(c *call) {
	d := time.Since(c.start)
	if c.route != nil {
		c.route.m.duration(c.role, time.Since(c.attempt))
		c.route.m.status(c.status)
	}
	if c.dec != nil {
		side := canary.Reference
		if c.role == "candidate" {
			side = canary.Candidate
		}
		c.route.Canary.Report(*c.dec, canary.Outcome{Side: side, Status: c.status, Err: c.err, Duration: time.Since(c.attempt)})
		if t := p.cfg.Tally; t != nil {
			t.Served(c.route.Name, c.role, c.status, d)
		}
	}
	p.canaryEvent(c)
	if c.x != nil && !c.x.handedOver {
		// From the reference's own send, as when the answer is read whole
		// first, and as the candidate's is timed.
		p.handOverRef(c, time.Since(c.attempt))
	}
	if c.x != nil && c.tee != nil {
		p.startFlowed(c)
	}
}

// startFlowed starts the replay of a call whose body flowed to the
// reference (gRPC), now that it is over: a call of one message is
// replayed with it; streams are proxied only.
func (p *Proxy) startFlowed(c *call) {
	x, rt := c.x, c.route
	body, ok := c.tee.unary()
	if !ok {
		rt.m.skipped("streaming")
		p.budget.finish(x.ref.cap.held)
		return
	}
	if !p.budget.take(int64(len(body))) {
		rt.m.dropped("memory")
		p.drops.log(p.log, "replay dropped: in-flight bytes bound reached (shadow.max_in_flight_bytes)")
		p.budget.finish(x.ref.cap.held)
		return
	}
	x.body = body
	p.wg.Add(1)
	go p.replay(x)
}

// replay calls the candidate (and the secondary), waits for the reference's
// answer, compares and publishes. It runs detached from the client request.
func (p *Proxy) replay(x *exchange) {
	var cand, sec side
	// Who gives back what the replay holds: the compare pool once queued;
	// the handler, for the reference's capture, once abandoned.
	abandoned, queued := false, false
	defer p.wg.Done()
	defer func() {
		switch {
		case abandoned:
			p.budget.finish(int64(len(x.body)) + cand.cap.held + sec.cap.held)
		case !queued:
			p.release(x, &cand, &sec)
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			p.m.panics.Inc()
			p.log.Error().Str("id", x.id).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("replay panicked")
		}
	}()

	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeout)
	defer cancel()
	rt := x.route
	secDone := make(chan struct{})
	if rt.Secondary != nil {
		go p.callSecondary(ctx, x, &sec, secDone)
	} else {
		close(secDone)
	}
	p.callSide(ctx, x, rt.Candidate, "candidate", &cand)
	<-secDone

	// The handler always closes refDone (deferred), but a client that
	// reads slowly holds it up: the replay waits no longer than its own
	// timeout, and then leaves the reference's capture to the handler.
	select {
	case <-x.refDone:
	case <-ctx.Done():
		if x.state.CompareAndSwap(refPending, refAbandoned) {
			abandoned = true
			rt.m.skipped("reference_slow")
			return
		}
		<-x.refDone // completed at the same moment
	}
	if p.ctx.Err() != nil {
		// Shut down past the deadline: what was cut short is not evidence.
		rt.m.replay("abandoned")
		return
	}
	if x.ref.failed() {
		rt.m.skipped("reference_error")
		return
	}
	if x.ref.cap.denied || cand.cap.denied || sec.cap.denied {
		rt.m.dropped("memory")
		p.drops.log(p.log, "replay dropped: in-flight bytes bound reached (shadow.max_in_flight_bytes)")
		return
	}
	queued = p.compareLater(x, &cand, &sec)
}

// callSecondary calls the secondary beside the candidate; a panic is
// logged with its stack and counted, and ends only this call.
func (p *Proxy) callSecondary(ctx context.Context, x *exchange, sec *side, done chan<- struct{}) {
	defer close(done)
	defer func() {
		if v := recover(); v != nil {
			p.m.panics.Inc()
			sec.err = fmt.Errorf("secondary call panicked: %v", v)
			p.log.Error().Str("id", x.id).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("secondary replay panicked")
		}
	}()
	p.callSide(ctx, x, x.route.Secondary, "secondary", sec)
}

// callSide sends the replayed request to one upstream and captures its answer.
func (p *Proxy) callSide(ctx context.Context, x *exchange, base *url.URL, role string, s *side) {
	s.url = joinURL(base, x.path, x.rawQuery)
	s.cap = capture{b: p.budget, limit: p.cfg.MaxResponseBytes}
	start := time.Now()
	defer func() {
		s.duration = time.Since(start)
		x.route.m.duration(role, s.duration)
		if s.err != nil {
			x.route.m.upstreamError(p.m, role, publish.ErrorKind(s.err))
		}
	}()

	req := upstream.Request{
		Method: x.method,
		Scheme: base.Scheme,
		Addr:   base.Host,
		Target: s.url[len(base.Scheme)+len("://")+len(base.Host):], // joinURL's own
		Host:   x.route.hostHeader(role),
		Header: x.header,
		Fields: append([]upstream.Field{{Name: RoleHeader, Value: role}}, x.fields...),
		Body:   x.body,
	}
	if p.cfg.DebugRequests || p.cfg.DebugBodies {
		p.debugReplay(role, s.url, req.Host, x.method, x.body, x.header)
	}
	resp, err := p.tr.sender(x.route, role).Do(ctx, &req)
	if err != nil {
		s.err = err
		return
	}
	defer resp.Body.Close()
	s.status = resp.StatusCode
	s.header = resp.Header
	if resp.Body != http.NoBody {
		s.cap.expect(resp.ContentLength)
	}
	if _, err := p.bufs.copyTo(&s.cap, resp.Body); err != nil {
		s.err = fmt.Errorf("reading body: %w", err)
	}
	s.trailer = resp.Trailer
}

// compareAndPublish compares the candidate's answer (and the
// secondary's) with the reference's, counts the outcome, and hands the
// comparison to the publisher, which builds the record and applies the
// route's publish mode.
func (p *Proxy) compareAndPublish(x *exchange, cand, sec *side) {
	rt := x.route
	c := x.comparison()
	refResp := p.answer(&x.ref, &c.Reference)
	if cand.failed() {
		rt.m.replay("candidate_error")
		c.Candidate = answerOf(cand, nil, false)
		c.Diffs = []compare.Diff{{Path: "error", Kind: compare.Changed, Candidate: publish.ErrorKind(cand.err), Class: compare.Regression}}
	} else {
		rt.m.replay("compared")
		candResp := p.answer(cand, &c.Candidate)
		c.Diffs = append(rt.Comparer.Compare(refResp, candResp), trailerDiffs(&x.ref, cand)...)
	}
	var secDiffs []compare.Diff
	hasSec := rt.Secondary != nil && !sec.failed()
	if rt.Secondary != nil {
		c.Secondary = &publish.Answer{}
		secResp := p.answer(sec, c.Secondary)
		if hasSec {
			secDiffs = append(rt.Comparer.Compare(refResp, secResp), trailerDiffs(&x.ref, sec)...)
		}
	}
	p.classify(rt, c, secDiffs, hasSec)
	p.debugResponses(c)
	if p.pub != nil {
		p.pub.Publish(c)
	}
}

// classify classes c's differences as regressions or noise (by the
// secondary's, and the judge's statistics) and counts a mismatch.
func (p *Proxy) classify(rt *Route, c *publish.Comparison, secDiffs []compare.Diff, hasSec bool) {
	if len(c.Diffs) > 0 && p.judge != nil {
		c.Diffs, c.AllNoise = p.judge.Classify(c.Endpoint, c.Diffs, secDiffs, hasSec)
	}
	for i := range c.Diffs {
		if c.Diffs[i].Class == "" {
			c.Diffs[i].Class = compare.Regression
		}
	}
	switch {
	case len(c.Diffs) == 0:
	case c.AllNoise:
		rt.m.mismatch(compare.Noise)
	default:
		rt.m.mismatch(compare.Regression)
	}
}

// grpcTrailers are the trailers compared: a gRPC call's outcome.
var grpcTrailers = [...]string{"Grpc-Status", "Grpc-Message"}

// trailerDiffs compares the gRPC status trailers of two answers.
func trailerDiffs(ref, other *side) []compare.Diff {
	var diffs []compare.Diff
	for _, name := range grpcTrailers {
		a, b := ref.trailer.Get(name), other.trailer.Get(name)
		if a != b {
			diffs = append(diffs, compare.Diff{Path: "trailer:" + name, Kind: compare.Changed, Reference: a, Candidate: b})
		}
	}
	return diffs
}

// decoded returns a side's answer for comparison, its body with any
// Content-Encoding undone.
func decoded(s *side, limit int64) (compare.Response, []byte, bool) {
	r := compare.Response{Status: s.status, Header: s.header, Body: s.cap.buf}
	if s.cap.cut {
		return r, r.Body, true // a cut body does not decode
	}
	d, truncated, err := compare.Decoded(r, limit)
	if err != nil {
		return r, r.Body, false // Compare reports the encoding error
	}
	return d, d.Body, truncated
}

// answer fills a with s's answer, its body with any Content-Encoding
// undone, and returns that answer for comparison.
func (p *Proxy) answer(s *side, a *publish.Answer) compare.Response {
	resp, body, cut := decoded(s, p.cfg.MaxResponseBytes)
	*a = answerOf(s, body, cut)
	return resp
}

func answerOf(s *side, body []byte, cut bool) publish.Answer {
	return publish.Answer{
		URL:       s.url,
		Status:    s.status,
		Header:    s.header,
		Body:      body,
		Truncated: cut,
		Err:       s.err,
		Duration:  s.duration,
	}
}

// replayHeader copies the client's headers for the replays, without
// hop-by-hop headers; the replays add the reference's fields to them
// (exchange.fields), so that every side gets the same request.
func replayHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	httpsyntax.RemoveHopHeaders(h)
	return h
}

// recordHeader is the request's header as the upstreams got it, for the
// record (role aside).
func (x *exchange) recordHeader() http.Header {
	h := x.header.Clone()
	for _, f := range x.fields {
		h.Set(f.Name, f.Value)
	}
	return h
}
