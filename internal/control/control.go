// Package control changes miffy's routing while it runs: reloads of the
// config file, the admin API on the management port and, for a fleet, a
// compacted Kafka control topic. All three end in the same place: a new
// routing table swapped into the proxy atomically, or, for a weight or a
// breaker, a change to the live route itself.
//
// Which one wins: the config file is the base. The admin API and the
// control topic set overrides on top of it, per route and per field; the
// last override to arrive wins. A reload of the file changes the base and
// keeps the overrides. A control-topic record is a route's whole desired
// state: it replaces that route's overrides (an empty record clears them).
package control

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/shadow"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// ErrUnknownRoute is returned for a change to a route that is not configured.
var ErrUnknownRoute = errors.New("no such route")

// Desired is what the admin API or the control topic wants a route to be,
// on top of the config file. A nil field keeps the file's value.
type Desired struct {
	Weight    *float64 `json:"weight,omitempty"`
	Reference *string  `json:"reference,omitempty"`
	Secondary *string  `json:"secondary,omitempty"`
	Candidate *string  `json:"candidate,omitempty"`
	Paused    *bool    `json:"paused,omitempty"`
}

func (d Desired) empty() bool {
	return d.Weight == nil && d.Reference == nil && d.Secondary == nil && d.Candidate == nil && d.Paused == nil
}

// Merge returns d with the fields set in o replaced.
func (d Desired) Merge(o Desired) Desired {
	if o.Weight != nil {
		d.Weight = o.Weight
	}
	if o.Reference != nil {
		d.Reference = o.Reference
	}
	if o.Secondary != nil {
		d.Secondary = o.Secondary
	}
	if o.Candidate != nil {
		d.Candidate = o.Candidate
	}
	if o.Paused != nil {
		d.Paused = o.Paused
	}
	return d
}

// onlyWeight says whether d changes nothing but the weight, which the live
// route takes without a new table.
func (d Desired) onlyWeight() bool {
	return d.Reference == nil && d.Secondary == nil && d.Candidate == nil && d.Paused == nil
}

// Change is one request to change a route.
type Change struct {
	Route string `json:"route"`
	Desired
	// ResetBreaker closes a tripped canary breaker.
	ResetBreaker bool `json:"reset_breaker,omitempty"`
	// Clear drops every override of the route: it is as the file says.
	Clear bool `json:"clear,omitempty"`
}

// RouteState is a route as it serves now.
type RouteState struct {
	Name      string   `json:"name"`
	Pattern   string   `json:"pattern"`
	Mode      string   `json:"mode"`
	Weight    *float64 `json:"weight,omitempty"`
	Breaker   string   `json:"breaker,omitempty"`
	Reference string   `json:"reference"`
	Candidate string   `json:"candidate"`
	Secondary string   `json:"secondary,omitempty"`
	Paused    bool     `json:"paused"`
	Overrides Desired  `json:"overrides"`
	// Counters are the route's counts since start, by name, as the proxy
	// counts them itself (see Counters).
	Counters map[string]int64 `json:"counters,omitempty"`
}

// Builder builds a routing table from the base config with the overrides
// applied. prev is the table in use: routes whose settings did not change
// should carry over their live state (canary counters, breakers).
type Builder func(overrides map[string]Desired, prev *shadow.Table) (*shadow.Table, error)

// Proxy is the part of the proxy the manager drives.
type Proxy interface {
	Table() *shadow.Table
	SetTable(*shadow.Table)
}

// Counters returns a route's counts since start, by name (nil: none); the
// proxy's tally collector (tally.Collector.Totals) gives them.
type Counters func(route string) map[string]int64

// Manager holds the overrides and rebuilds the routing table on change.
type Manager struct {
	mu        sync.Mutex
	build     Builder
	proxy     Proxy
	overrides map[string]Desired
	log       zerolog.Logger
	counters  Counters
	// held is true from safeState until resync: the control topic has not
	// been read yet, so canary routes serve at weight 0 (unless a weight
	// was set at runtime), whatever a table rebuilt meanwhile says.
	held bool

	changes *prometheus.CounterVec
	reloads *prometheus.CounterVec
	lastOK  prometheus.Gauge
	synced  prometheus.Gauge
}

// NewManager returns a manager for a proxy whose table was built by build
// without overrides. counters, if not nil, gives the per-route counters of
// Routes.
func NewManager(build Builder, p Proxy, log zerolog.Logger, reg prometheus.Registerer, counters Counters) *Manager {
	f := promauto.With(reg)
	return &Manager{
		build:     build,
		proxy:     p,
		overrides: map[string]Desired{},
		log:       log,
		counters:  counters,
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_control_changes_total",
			Help: "Route changes asked for at runtime, by source (admin, control_topic) and result (applied, rejected).",
		}, []string{"source", "result"}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_config_reloads_total",
			Help: "Reloads of the config file, by result (applied, rejected: the old config keeps serving).",
		}, []string{"result"}),
		synced: f.NewGauge(prometheus.GaugeOpts{
			Name: "miffy_control_topic_synced",
			Help: "1 once the control topic has been read to its end at start (0 while canary routes are held at weight 0).",
		}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "miffy_config_last_reload_success_timestamp_seconds",
			Help: "When the config file was last loaded successfully (at start or by a reload).",
		}),
	}
}

// Started records the successful start (for the reload gauge).
func (m *Manager) Started(unixSeconds float64) { m.lastOK.Set(unixSeconds) }

// Reload swaps in a new base config: load reads and validates it and
// returns its builder. An invalid one is rejected, counted and logged, and
// the old one keeps serving.
func (m *Manager) Reload(load func() (Builder, error), unixSeconds float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	build, err := load()
	var t *shadow.Table
	if err == nil {
		t, err = m.buildWith(build, m.overrides, m.proxy.Table())
	}
	if err != nil {
		m.reloads.WithLabelValues("rejected").Inc()
		m.log.Error().Err(err).Msg("config reload rejected; the previous config keeps serving")
		return err
	}
	m.build = build
	m.proxy.SetTable(t)
	m.reloads.WithLabelValues("applied").Inc()
	m.lastOK.Set(unixSeconds)
	m.log.Info().Int("routes", len(t.Routes())).Msg("config reloaded")
	return nil
}

// Apply makes one change, from the admin API (source "admin") or elsewhere.
// who says who asked (a remote address), for the log.
func (m *Manager) Apply(c Change, source, who string) (RouteState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.apply(c)
	result := "applied"
	ev := m.log.Info()
	if err != nil {
		result = "rejected"
		ev = m.log.Warn().Err(err)
	}
	m.changes.WithLabelValues(source, result).Inc()
	ev.Str("source", source).Str("who", who).Str("route", c.Route).Interface("change", c).Msg("route change")
	return st, err
}

// SetDesired replaces a route's overrides with a whole desired state (nil:
// none), as a control-topic record does.
func (m *Manager) SetDesired(route string, d *Desired, source string) error {
	c := Change{Route: route, Clear: true}
	if d != nil {
		c.Desired = *d
	}
	_, err := m.Apply(c, source, source)
	return err
}

func (m *Manager) apply(c Change) (RouteState, error) {
	t := m.proxy.Table()
	r := findRoute(t, c.Route)
	if r == nil {
		return RouteState{}, fmt.Errorf("%w: %q", ErrUnknownRoute, c.Route)
	}
	if err := c.validate(r); err != nil {
		return RouteState{}, err
	}
	next := c.Desired
	if !c.Clear {
		next = m.overrides[c.Route].Merge(c.Desired)
	}

	// A weight alone changes the live route: counters and breaker stay.
	if c.Desired.onlyWeight() && !c.Clear {
		if c.Weight != nil {
			if err := r.Canary.SetWeight(*c.Weight); err != nil {
				return RouteState{}, fmt.Errorf("weight: %w", err)
			}
		}
	} else {
		overrides := copyMap(m.overrides)
		if next.empty() {
			delete(overrides, c.Route)
		} else {
			overrides[c.Route] = next
		}
		nt, err := m.buildWith(m.build, overrides, t)
		if err != nil {
			return RouteState{}, err
		}
		m.proxy.SetTable(nt)
		t, r = nt, findRoute(nt, c.Route)
	}
	if next.empty() {
		delete(m.overrides, c.Route)
	} else {
		m.overrides[c.Route] = next
	}
	if c.ResetBreaker && r.Canary != nil {
		r.Canary.Breaker().Reset()
	}
	return m.state(r), nil
}

func (c Change) validate(r *shadow.Route) error {
	if c.Weight != nil {
		if r.Canary == nil {
			return fmt.Errorf("weight: route %q is not a canary route", c.Route)
		}
		if w := *c.Weight; !(w >= 0 && w <= 100) {
			return fmt.Errorf("weight: must be between 0 and 100, got %v", w)
		}
	}
	if c.ResetBreaker && r.Canary == nil {
		return fmt.Errorf("reset_breaker: route %q is not a canary route", c.Route)
	}
	for key, v := range map[string]*string{"reference": c.Reference, "candidate": c.Candidate} {
		if v != nil {
			if err := checkURL(*v); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	if c.Secondary != nil && *c.Secondary != "" {
		if err := checkURL(*c.Secondary); err != nil {
			return fmt.Errorf("secondary: %w", err)
		}
	}
	return nil
}

func checkURL(s string) error {
	_, err := upstream.ParseBaseURL(s) // as config checks it; a password is not shown
	return err
}

func findRoute(t *shadow.Table, name string) *shadow.Route {
	for _, r := range t.Routes() {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func copyMap(m map[string]Desired) map[string]Desired {
	out := make(map[string]Desired, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Override returns a route's overrides (for builders and tests).
func (m *Manager) Override(route string) Desired {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overrides[route]
}

// Routes lists the routes as they serve now.
func (m *Manager) Routes() []RouteState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []RouteState
	for _, r := range m.proxy.Table().Routes() {
		st := m.state(r)
		if m.counters != nil {
			st.Counters = m.counters(r.Name)
		}
		out = append(out, st)
	}
	return out
}

func (m *Manager) state(r *shadow.Route) RouteState {
	st := RouteState{
		Name:      r.Name,
		Pattern:   r.Pattern,
		Mode:      "shadow",
		Reference: r.Reference.String(),
		Candidate: r.Candidate.String(),
		Paused:    r.Paused,
		Overrides: m.overrides[r.Name],
	}
	if r.Secondary != nil {
		st.Secondary = r.Secondary.String()
	}
	if r.Canary != nil {
		st.Mode = "canary"
		w := r.Canary.Weight()
		st.Weight = &w
		st.Breaker = r.Canary.Breaker().State().String()
	}
	return st
}

// safeState puts every canary route at weight 0 until resync: a canary
// that cannot be controlled must be off (at start until the control topic
// is read, and when it has not been read for stale_after). Tables rebuilt meanwhile (a
// reload, an upstream change) are held there too, see buildWith.
func (m *Manager) safeState() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held = true
	m.synced.Set(0)
	for _, r := range m.proxy.Table().Routes() {
		if r.Canary != nil {
			r.Canary.SetWeight(0)
		}
	}
}

// buildWith builds a table with build. While the manager is held (the
// control topic not read yet), canary routes without a runtime weight
// override get weight 0: routes of prev through the overrides given to
// build (a builder may carry prev's live router over and set its weight,
// so the file's weight must never reach it), routes new in the table
// afterwards.
func (m *Manager) buildWith(build Builder, ov map[string]Desired, prev *shadow.Table) (*shadow.Table, error) {
	if !m.held {
		return build(ov, prev)
	}
	held := copyMap(ov)
	zero := 0.0
	if prev != nil {
		for _, r := range prev.Routes() {
			if d := held[r.Name]; r.Canary != nil && d.Weight == nil {
				d.Weight = &zero
				held[r.Name] = d
			}
		}
	}
	t, err := build(held, prev)
	if err != nil {
		return nil, err
	}
	for _, r := range t.Routes() {
		if r.Canary != nil && ov[r.Name].Weight == nil && r.Canary.Weight() != 0 {
			if err := r.Canary.SetWeight(0); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// resync rebuilds the table from the base config and the overrides, which
// also restores the weights safeState took away.
func (m *Manager) resync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.build(m.overrides, m.proxy.Table())
	if err != nil {
		m.log.Error().Err(err).Msg("rebuilding routes from the control topic")
		return
	}
	m.held = false
	m.proxy.SetTable(t)
	m.synced.Set(1)
}
