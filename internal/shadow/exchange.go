package shadow

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/route"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// exchange is one shadowed request: what was asked (newExchange, once),
// and the reference's answer as the client got it. The handler writes ref
// through answered, clientGone and handOver, and nothing else of it, until
// handOver closes refDone; the replay reads ref only after that.
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

	ref        side
	refDone    chan struct{}
	handedOver bool // ref is the replay's now (the handler's to read and write)
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

// newExchange is the shadowed request c, its body body, as the replay
// sends it.
func (p *Proxy) newExchange(c *call, body []byte) *exchange {
	r, rt := c.r, c.route
	x := &exchange{
		id:       p.ids.next(),
		start:    c.start,
		route:    rt,
		params:   c.params,
		method:   r.Method,
		uri:      r.RequestURI,
		path:     c.path,
		rawQuery: r.URL.RawQuery,
		header:   replayHeader(r),
		fields:   p.forwardFields(nil, r, c.reqID),
		body:     body,
		endpoint: rt.Name,
		refDone:  make(chan struct{}),
	}
	if cr := r.Header.Get("Canonical-Resource"); cr != "" {
		x.endpoint = cr
	}
	x.ref.url = joinURL(rt.Reference, x.path, x.rawQuery)
	return x
}

// answered notes the reference's answer head and captures its body as
// the client is sent it (teeBody), within limit and the budget b.
func (x *exchange) answered(resp *http.Response, b *budget, limit int64) {
	x.ref.status = resp.StatusCode
	x.ref.header = resp.Header.Clone()
	x.ref.cap = capture{b: b, limit: limit}
	if resp.Body != http.NoBody {
		x.ref.cap.expect(resp.ContentLength)
	}
	resp.Body = &teeBody{rc: resp.Body, resp: resp, s: &x.ref}
}

// clientGone notes that the client went away mid-answer: what the
// reference sent is not all of it.
func (x *exchange) clientGone(err error) {
	if !x.handedOver && x.ref.err == nil {
		x.ref.err = fmt.Errorf("writing to the client: %w", err)
	}
}

// handOver tells the replay that the reference's answer is complete
// (after d; err and status are the handler's): from here on the handler
// writes nothing of ref. It reports false when the replay gave up waiting:
// the caller then gives back what ref's capture holds.
func (x *exchange) handOver(d time.Duration, err error, status int) bool {
	x.handedOver = true
	x.ref.duration = d
	if err != nil {
		x.ref.err = err
	}
	if x.ref.err == nil && status == 0 {
		x.ref.err = errors.New("reference answer incomplete")
	}
	waited := x.state.CompareAndSwap(refPending, refComplete)
	close(x.refDone)
	return waited
}

// handOverRef hands the reference's answer to the replay (exchange's
// handOver). It is called once the answer has been read from the
// reference (before it is written to the client, when it was read whole
// first), or when the handler ends.
func (p *Proxy) handOverRef(c *call, d time.Duration) {
	if !c.x.handOver(d, c.err, c.status) {
		p.budget.release(c.x.ref.cap.held) // the replay gave up on it
	}
}

// teeBody hands what the client is sent to the side's capture as well,
// and its trailers once the body has ended.
type teeBody struct {
	rc   io.ReadCloser
	resp *http.Response
	s    *side
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 {
		t.s.cap.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		t.s.trailer = t.resp.Trailer
	case err != nil:
		t.s.err = err
	}
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

// comparison is what the publisher is handed of x's request.
func (x *exchange) comparison() *publish.Comparison {
	rt := x.route
	return &publish.Comparison{
		ID:           x.id,
		Time:         x.start,
		Key:          rt.recordKey(x.params),
		Route:        rt.Name,
		Pattern:      rt.Pattern,
		Endpoint:     x.endpoint,
		Method:       x.method,
		URI:          x.uri,
		Params:       x.params.Map(),
		Header:       x.recordHeader(),
		Body:         x.body,
		Mode:         rt.Publish,
		PublishNoise: rt.PublishNoise,
	}
}
