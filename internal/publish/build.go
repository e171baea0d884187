package publish

import (
	"net/http"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// Mode says which compared requests become records ([publish] mode, and
// a route's publish).
type Mode string

const (
	// ModeMismatches publishes the requests with differences (and
	// noise only with PublishNoise). The zero Mode means it too.
	ModeMismatches Mode = "mismatches"
	// ModeAll publishes every compared request (noise only with
	// PublishNoise).
	ModeAll Mode = "all"
	// ModeNone publishes nothing (the console and the tallies still see
	// every compared request).
	ModeNone Mode = "none"
)

// Comparison is what the shadow proxy's replay hands over for one compared
// request: what was asked, each side's answer, the differences classed,
// and the route's publish policy. Raw data, as in Record; nothing of it is
// retained after Publish returns.
type Comparison struct {
	ID       string    // unique id (the proxy makes it)
	Time     time.Time // when the client request arrived
	Key      string    // Kafka record key
	Route    string    // route name
	Pattern  string    // route pattern, e.g. "/api/{value}"
	Endpoint string    // noise-statistics endpoint (route name or Canonical-Resource)

	Method string
	URI    string // request URI as received (path?query)
	Params map[string]string
	Header http.Header // as the upstreams got it (role aside)
	Body   []byte

	Reference Answer
	Candidate Answer
	Secondary *Answer // nil without a secondary

	// Diffs are the candidate's differences, each classed (regression or
	// noise); AllNoise says every one of them is noise.
	Diffs    []compare.Diff
	AllNoise bool

	Mode         Mode
	PublishNoise bool // publish requests whose differences are all noise
}

// Answer is one upstream's answer as the proxy captured it.
type Answer struct {
	URL       string // full upstream URL called
	Status    int
	Header    http.Header
	Body      []byte // Content-Encoding undone
	Truncated bool   // the capture was cut at the proxy's limit
	Err       error  // non-nil: no response (timeout, refused, reset...)
	Duration  time.Duration
}

// Record builds the record of c.
func (c *Comparison) Record() *Record {
	r := &Record{
		ID:       c.ID,
		Time:     c.Time,
		Key:      c.Key,
		Route:    c.Route,
		Endpoint: c.Endpoint,
		Equal:    len(c.Diffs) == 0,
		Request: Request{
			Method:          c.Method,
			URI:             c.URI,
			Pattern:         c.Pattern,
			Params:          c.Params,
			Header:          c.Header,
			Body:            c.Body,
			BodyContentType: c.Header.Get("Content-Type"),
		},
		Reference: Side(c.Reference),
		Candidate: Side(c.Candidate),
		Diffs:     c.Diffs,
	}
	if c.Secondary != nil {
		s := Side(*c.Secondary)
		r.Secondary = &s
	}
	return r
}

// Published reports whether the route's publish policy sends c to Kafka.
func (c *Comparison) Published() bool {
	equal := len(c.Diffs) == 0
	switch c.Mode {
	case ModeNone:
		return false
	case ModeAll:
		return equal || !c.AllNoise || c.PublishNoise
	default:
		return !equal && (!c.AllNoise || c.PublishNoise)
	}
}

// Sink takes a record. It must not block; it reports false when it
// dropped the record. Kafka and Console are sinks.
type Sink interface {
	Publish(r *Record) bool
}

var (
	_ Sink = (*Kafka)(nil)
	_ Sink = (*Console)(nil)
)

// Outlet is the shadow proxy's publisher: it builds the record of each
// compared request and hands it on. Console and Compared see every one;
// Sink (Kafka) those the route's publish policy lets through. A nil field
// is skipped.
type Outlet struct {
	Sink     Sink
	Console  Sink
	Compared func(r *Record) // the fleet tallies (tally.Collector.Compared)
}

// Publish builds c's record and hands it on. It reports false when Sink
// dropped it.
func (o *Outlet) Publish(c *Comparison) bool {
	toSink := o.Sink != nil && c.Published()
	if !toSink && o.Console == nil && o.Compared == nil {
		return true // no reader: no record built
	}
	r := c.Record()
	if o.Console != nil {
		o.Console.Publish(r)
	}
	if o.Compared != nil {
		o.Compared(r)
	}
	if !toSink {
		return true
	}
	return o.Sink.Publish(r)
}
