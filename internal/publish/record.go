// Package publish turns compared requests into records and hands them to
// their readers: a Kafka topic (Kafka) or standard output (Console).
//
// The shadow proxy fills a Record with raw data; the Encoder owns the wire
// format (JSON, schema_version 1), redaction and the caps on body sizes.
package publish

import (
	"net/http"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// SchemaVersion is the version of the JSON record format. Fields are only
// ever added within a version; the format is a superset of miffy 1.0's.
const SchemaVersion = 1

// Record is what the shadow proxy hands over for one compared request. Raw
// data; the Encoder applies redaction and caps. Nothing in a Record is
// retained after Publish returns.
type Record struct {
	ID        string    // unique id (the proxy makes it)
	Time      time.Time // when the client request arrived
	Key       string    // Kafka record key
	Route     string    // route name
	Endpoint  string    // noise-statistics endpoint (route name or Canonical-Resource)
	Equal     bool      // no (regression or published-noise) differences
	Request   Request
	Reference Side
	Candidate Side
	Secondary *Side // nil without a secondary
	Diffs     []compare.Diff
}

// Request is the client request as it was replayed.
type Request struct {
	Method          string
	URI             string // request URI as received (path?query)
	Pattern         string // route pattern, e.g. "/api/{value}"
	Params          map[string]string
	Header          http.Header
	Body            []byte
	BodyContentType string
}

// Side is one upstream's answer (reference, candidate or secondary).
type Side struct {
	URL       string // full upstream URL called
	Status    int
	Header    http.Header
	Body      []byte // already Content-Encoding-decoded by the proxy
	Truncated bool   // body capture was cut at the proxy's limit
	Err       error  // non-nil: no response (timeout, refused, reset...)
	Duration  time.Duration
}
