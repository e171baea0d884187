package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/route"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// exchange is one shadowed request: what was asked, and the reference's
// answer as the client got it. The handler fills ref and then closes
// refDone; the replay reads ref only after that.
type exchange struct {
	id       string
	start    time.Time
	route    *Route
	params   route.Params
	method   string
	uri      string
	path     string
	rawQuery string
	header   http.Header      // the client's, hop-by-hop removed
	fields   []upstream.Field // what miffy adds (forwardFields), as the reference got them
	body     []byte
	endpoint string

	ref     side
	refDone chan struct{}
	// state says who owns ref once the replay has stopped waiting:
	// refPending, then refComplete (the handler finished first: the replay
	// reads ref) or refAbandoned (the replay gave up waiting: the handler
	// gives back what ref's capture holds).
	state atomic.Int32
}

const (
	refPending = iota
	refComplete
	refAbandoned
)

// side is one upstream's answer as captured.
type side struct {
	url      string
	status   int
	header   http.Header
	trailer  http.Header // gRPC's status is here
	cap      capture
	err      error
	duration time.Duration
}

func (s *side) failed() bool { return s.err != nil || s.status == 0 }

// safeMethods are replayed on every route; others need allow_side_effects.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// prepare decides whether the request is shadowed and, if so, reads its
// body once and starts the replay. A non-zero return is the status the
// client must get instead (its body could not be read).
func (p *Proxy) prepare(c *call, r *http.Request, params route.Params, start time.Time) int {
	rt := c.route
	switch {
	case rt.Paused:
		rt.m.skipped("paused")
		return 0
	case r.Header["Upgrade"] != nil:
		// A tunnel after a 101 is the client's alone: proxied, not shadowed.
		rt.m.skipped("upgrade")
		return 0
	case !rt.AllowSideEffects && !safeMethod(r.Method):
		rt.m.skipped("method")
		return 0
	case rt.Sample < 1 && (rt.Sample <= 0 || rand.Float64() >= rt.Sample):
		rt.m.skipped("sample")
		return 0
	case r.ContentLength > p.cfg.MaxBodyBytes:
		rt.m.skipped("body_too_large")
		return 0
	}

	var body []byte
	flows := r.Body != nil && r.Body != http.NoBody && isGRPC(r)
	if r.Body != nil && r.Body != http.NoBody && !flows {
		buf, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.MaxBodyBytes+1))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return http.StatusRequestEntityTooLarge
			}
			return http.StatusBadRequest
		}
		if int64(len(buf)) > p.cfg.MaxBodyBytes {
			// Too big to keep: the reference gets what was read and the rest.
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			rt.m.skipped("body_too_large")
			return 0
		}
		body = buf
		c.body = buf
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}

	if !p.budget.start(int64(len(body))) {
		rt.m.dropped("in_flight")
		p.drops.log(p.log, "replay dropped: in-flight bound reached (shadow.max_in_flight, shadow.max_in_flight_bytes)")
		return 0
	}
	x := &exchange{
		id:       p.ids.next(),
		start:    start,
		route:    rt,
		params:   params,
		method:   r.Method,
		uri:      r.RequestURI,
		path:     c.path,
		rawQuery: r.URL.RawQuery,
		header:   replayHeader(r),
		fields:   p.forwardFields(nil, r),
		body:     body,
		endpoint: rt.Name,
		refDone:  make(chan struct{}),
	}
	if cr := r.Header.Get("Canonical-Resource"); cr != "" {
		x.endpoint = cr
	}
	x.ref.url = joinURL(rt.Reference, x.path, x.rawQuery)
	c.x = x
	if flows {
		// A call's messages flow both ways before it ends: its body is
		// kept as it is sent, and replayed once the call is over
		// (startFlowed), if it was one message.
		c.tee = &streamTee{rc: r.Body, limit: p.cfg.MaxBodyBytes}
		r.Body = c.tee
		return 0
	}
	p.wg.Add(1)
	go p.replay(x)
	return 0
}

// referenceDone tells the replay that the reference's answer is complete
// (on a canary route: the serving side's), and the canary router how the
// side it chose did.
func (p *Proxy) referenceDone(c *call, start time.Time) {
	d := time.Since(start)
	if c.route != nil {
		c.route.m.duration(c.role, time.Since(c.start))
		c.route.m.status(c.status)
	}
	if c.dec != nil {
		side := canary.Reference
		if c.role == "candidate" {
			side = canary.Candidate
		}
		c.route.Canary.Report(*c.dec, canary.Outcome{Side: side, Status: c.status, Err: c.err, Duration: time.Since(c.start)})
		if t := p.cfg.Tally; t != nil {
			t.Served(c.route.Name, c.role, c.status, d)
		}
	}
	p.canaryEvent(c, start)
	if c.x != nil && !c.refHandedOver {
		p.handOverRef(c, d)
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

// handOverRef tells the replay that the reference's answer is complete:
// from here on the handler writes nothing of c.x.ref. It is called once the
// answer has been read from the reference (before it is written to the
// client, when it was read whole first), or when the handler ends.
func (p *Proxy) handOverRef(c *call, d time.Duration) {
	x := c.x
	c.refHandedOver = true
	x.ref.duration = d
	if c.err != nil {
		x.ref.err = c.err
	}
	if x.ref.err == nil && c.status == 0 {
		x.ref.err = errors.New("reference answer incomplete")
	}
	if !x.state.CompareAndSwap(refPending, refComplete) {
		p.budget.release(x.ref.cap.held) // the replay gave up on it
	}
	close(x.refDone)
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

func (p *Proxy) compareAndPublish(x *exchange, cand, sec *side) {
	rt := x.route
	refResp, refBody, refCut := decoded(&x.ref, p.cfg.MaxResponseBytes)
	rec := &publish.Record{
		ID:       x.id,
		Time:     x.start,
		Key:      rt.recordKey(x.params),
		Route:    rt.Name,
		Endpoint: x.endpoint,
		Request: publish.Request{
			Method:          x.method,
			URI:             x.uri,
			Pattern:         rt.Pattern,
			Params:          x.params.Map(),
			Header:          x.recordHeader(),
			Body:            x.body,
			BodyContentType: x.header.Get("Content-Type"),
		},
		Reference: publishSide(&x.ref, refBody, refCut),
	}

	var diffs []compare.Diff
	if cand.failed() {
		rt.m.replay("candidate_error")
		rec.Candidate = publishSide(cand, nil, false)
		diffs = []compare.Diff{{Path: "error", Kind: compare.Changed, Candidate: publish.ErrorKind(cand.err), Class: compare.Regression}}
	} else {
		rt.m.replay("compared")
		candResp, candBody, candCut := decoded(cand, p.cfg.MaxResponseBytes)
		rec.Candidate = publishSide(cand, candBody, candCut)
		diffs = append(rt.Comparer.Compare(refResp, candResp), trailerDiffs(&x.ref, cand)...)
	}

	var secDiffs []compare.Diff
	hasSec := rt.Secondary != nil && !sec.failed()
	if rt.Secondary != nil {
		secResp, secBody, secCut := decoded(sec, p.cfg.MaxResponseBytes)
		s := publishSide(sec, secBody, secCut)
		rec.Secondary = &s
		if hasSec {
			secDiffs = append(rt.Comparer.Compare(refResp, secResp), trailerDiffs(&x.ref, sec)...)
		}
	}

	allNoise := false
	if len(diffs) > 0 && p.judge != nil {
		diffs, allNoise = p.judge.Classify(x.endpoint, diffs, secDiffs, hasSec)
	}
	for i := range diffs {
		if diffs[i].Class == "" {
			diffs[i].Class = compare.Regression
		}
	}
	rec.Diffs = diffs
	rec.Equal = len(diffs) == 0
	switch {
	case rec.Equal:
	case allNoise:
		rt.m.mismatch(compare.Noise)
	default:
		rt.m.mismatch(compare.Regression)
	}

	p.debugResponses(rec)
	if p.cfg.Console != nil {
		p.cfg.Console.Publish(rec)
	}
	if p.cfg.Tally != nil {
		p.cfg.Tally.Compared(rec)
	}
	if p.pub == nil {
		return
	}
	switch rt.Publish {
	case PublishNone:
		return
	case PublishMismatches:
		if rec.Equal || (allNoise && !rt.PublishNoise) {
			return
		}
	case PublishAll:
		if allNoise && !rt.PublishNoise {
			return
		}
	}
	p.pub.Publish(rec)
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

func publishSide(s *side, body []byte, cut bool) publish.Side {
	return publish.Side{
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
	removeHopHeaders(h)
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
