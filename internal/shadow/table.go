package shadow

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/route"
)

// PublishMode says which compared requests become records: publish's
// policy, named here for routes.
type PublishMode = publish.Mode

const (
	PublishMismatches = publish.ModeMismatches
	PublishAll        = publish.ModeAll
	PublishNone       = publish.ModeNone
)

// Route is one route under test, ready to serve. It is not changed once it
// is in a Table.
type Route struct {
	Name    string
	Pattern string
	// Key is the Kafka record key: empty means the pattern, the name of a
	// parameter means its value, anything else is used literally.
	Key     string
	Methods []string // empty means any method

	Reference *url.URL
	Candidate *url.URL
	Secondary *url.URL // nil without a secondary

	AllowSideEffects bool
	Sample           float64     // share of requests replayed, 0..1
	Publish          PublishMode // zero: mismatches
	PublishNoise     bool
	Comparer         *compare.Comparer

	// Canary, when not nil, makes this a canary route: the side it picks
	// answers the client (X-Miffy-Served-By says which).
	Canary *canary.Router
	// Shadow, on a canary route, replays the requests the reference serves
	// to the candidate and compares, as on a shadow route; requests the
	// candidate serves are never replayed. Shadow routes always replay.
	Shadow bool
	// TrimPrefix is cut from the request path before it is forwarded to
	// any upstream (replays included), e.g. "/v2": "/v2/users" -> "/users".
	// It is cut only at a segment boundary.
	TrimPrefix string
	// Paused stops shadowing on the route (set at runtime by the admin API
	// or the control topic); the reference still answers.
	Paused bool

	// ReferenceHost and CandidateHost, if set, are the Host header sent to
	// that side (the secondary gets ReferenceHost). Empty: the upstream
	// URL's host.
	ReferenceHost string
	CandidateHost string

	// ReferenceProtocol, CandidateProtocol and SecondaryProtocol, if set,
	// are the protocol (one of upstream.Protocols) that side's upstream
	// is spoken to in on this route. Empty: Config.Sides'.
	ReferenceProtocol string
	CandidateProtocol string
	SecondaryProtocol string

	keyIsParam bool
	m          routeMetrics
}

// Table is an immutable routing table: routes under test plus the base URL
// that unrouted requests go to.
type Table struct {
	upstream *url.URL
	routes   route.Table[*Route]
	list     []*Route
}

// NewTable builds a table. upstream receives requests that match no route.
func NewTable(upstream *url.URL, routes []*Route) (*Table, error) {
	if upstream == nil {
		return nil, fmt.Errorf("building routing table: no upstream")
	}
	t := &Table{upstream: upstream, list: routes}
	for i, r := range routes {
		if r.Reference == nil || r.Candidate == nil {
			return nil, fmt.Errorf("routes[%d]: reference and candidate are required", i)
		}
		if err := t.routes.Add(r.Pattern, r.Methods, r); err != nil {
			return nil, fmt.Errorf("routes[%d].path: %w", i, err)
		}
		p, _ := route.Parse(r.Pattern)
		for _, n := range p.Names() {
			if n == r.Key {
				r.keyIsParam = true
			}
		}
		if r.Name == "" {
			r.Name = r.Pattern
		}
	}
	return t, nil
}

// Routes returns the routes in configuration order.
func (t *Table) Routes() []*Route { return t.list }

// recordKey returns the Kafka key of a request on this route.
func (r *Route) recordKey(params route.Params) string {
	switch {
	case r.Key == "":
		return r.Pattern
	case r.keyIsParam:
		v, _ := params.Get(r.Key)
		return v
	default:
		return r.Key
	}
}

// forwardPath is the escaped path sent upstream: the request's, with
// TrimPrefix cut at a segment boundary.
func (r *Route) forwardPath(p string) string {
	pre := strings.TrimSuffix(r.TrimPrefix, "/")
	if pre == "" {
		return p
	}
	rest, ok := strings.CutPrefix(p, pre)
	if !ok || rest != "" && rest[0] != '/' {
		return p
	}
	if rest == "" {
		return "/"
	}
	return rest
}

// hostHeader is the Host header for the upstream playing role, or "".
func (r *Route) hostHeader(role string) string {
	if role == "candidate" {
		return r.CandidateHost
	}
	return r.ReferenceHost
}

func unescapePath(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}
