// Package canary routes a share of a route's traffic to the candidate and
// answers the client from it: weighted and sticky splits, an override
// header, a header-presence rule, an external decision service, a circuit
// breaker with limits, and decision services for other proxies (the
// maxwells-daemon unix socket protocol and an HTTP handler for nginx
// auth_request).
package canary

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Side is the upstream that serves a request.
type Side uint8

const (
	Reference Side = iota
	Candidate
)

func (s Side) String() string {
	if s == Candidate {
		return "candidate"
	}
	return "reference"
}

// Rule names what decided a request, as in miffy_canary_decisions_total.
type Rule string

const (
	RuleOverride    Rule = "override"     // the override header (X-Canary: true|false)
	RuleHeader      Rule = "header"       // the canary_header is present
	RuleDecisionURL Rule = "decision_url" // the decision service answered
	RuleSticky      Rule = "sticky"       // the sticky key or cookie
	RuleWeight      Rule = "weight"       // the weight counter
	RuleBreaker     Rule = "breaker"      // the candidate was chosen, the breaker is open
	RuleLimit       Rule = "limit"        // the candidate was chosen, max_requests or max_rps said no
	RuleFailsafe    Rule = "failsafe"     // the decision service failed
)

// Config is one canary route. The config layer hands it complete values
// (config.default.toml's [canary] section under the route's own); a zero
// means what the field's comment says.
type Config struct {
	// Name names the route in metrics and logs.
	Name string
	// Weight is the candidate's share of the traffic in percent, 0..100.
	Weight float64
	// StickyKey keeps a client on one side: "header:NAME", "cookie:NAME",
	// "param:NAME", "client_ip"; empty: none.
	StickyKey string
	// StickyCookie, if set, is a cookie miffy sets to the client's
	// assignment (a number in [0,1), as maxwells-daemon's) and honours on
	// later requests.
	StickyCookie string
	// OverrideHeader forces a side: exactly "true" the candidate, exactly
	// "false" the reference, whatever else the rules and limits say. If
	// empty, no header overrides the decision.
	OverrideHeader string
	// CanaryHeader, if set, sends every request that has this header (any
	// value) to the candidate, as Mule's "by header" routing.
	CanaryHeader string
	// DecisionURL, if set, is asked where each request goes (200:
	// candidate, 204: reference; anything else or no answer: reference).
	DecisionURL *url.URL
	// DecisionTimeout bounds one question to DecisionURL. If zero, only
	// the client's request bounds it.
	DecisionTimeout time.Duration
	// DecisionCacheTTL keeps answers of DecisionURL per sticky key for this
	// long. Zero: no cache.
	DecisionCacheTTL time.Duration
	// DecisionMaxBodyBytes is how much of the request body DecisionURL
	// gets (a longer body is cut and marked with X-Miffy-Body-Truncated).
	// If zero, it gets none.
	DecisionMaxBodyBytes int64
	// Breaker trips and limits the candidate's traffic.
	Breaker BreakerConfig
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Router decides, per request, which side of one canary route serves it,
// and hears how the candidate did. Make it with NewRouter; it is safe for
// concurrent use.
type Router struct {
	name     string
	override string
	header   string
	sticky   StickyKey
	cookie   string
	decider  *decider
	breaker  *Breaker
	w        atomic.Pointer[weight]
	m        *routeMetrics // nil: counts nothing
	log      zerolog.Logger
}

// NewRouter returns the router of one canary route, counting into m (nil:
// nothing is counted; make m once per registry with NewMetrics and give it
// to every router) and logging to log.
func NewRouter(cfg Config, m *Metrics, log zerolog.Logger) (*Router, error) {
	sk, err := ParseStickyKey(cfg.StickyKey)
	if err != nil {
		return nil, fmt.Errorf("sticky_key: %w", err)
	}
	w, err := newWeight(cfg.Weight)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Router{
		name:   cfg.Name,
		sticky: sk,
		cookie: cfg.StickyCookie,
		m:      m.forRoute(cfg.Name),
		log:    log.With().Str("route", cfg.Name).Logger(),
	}
	if cfg.OverrideHeader != "" {
		r.override = http.CanonicalHeaderKey(cfg.OverrideHeader)
	}
	if cfg.CanaryHeader != "" {
		r.header = http.CanonicalHeaderKey(cfg.CanaryHeader)
	}
	r.w.Store(w)
	r.breaker = NewBreaker(cfg.Breaker, cfg.Now, r.transition)
	if cfg.DecisionURL != nil {
		r.decider = &decider{
			base:    cfg.DecisionURL,
			client:  newDecisionClient(cfg.DecisionTimeout),
			timeout: cfg.DecisionTimeout,
			maxBody: max(cfg.DecisionMaxBodyBytes, 0),
		}
		if cfg.DecisionCacheTTL > 0 && sk.kind != stickyNone {
			r.decider.cache = &decisionCache{ttl: cfg.DecisionCacheTTL, now: cfg.Now, m: map[string]cached{}}
		}
	}
	if r.m != nil {
		r.m.state.Set(float64(r.breaker.State()))
		r.m.weight.Set(w.pct)
	}
	return r, nil
}

// Name returns the route's name.
func (r *Router) Name() string { return r.name }

// Weight returns the candidate's share in percent.
func (r *Router) Weight() float64 { return r.w.Load().pct }

// SetWeight changes the candidate's share (percent, 0..100) at once, for
// requests that start after it. Sticky keys only move from the reference
// to the candidate when the weight rises.
func (r *Router) SetWeight(pct float64) error {
	w, err := newWeight(pct)
	if err != nil {
		return err
	}
	old := r.w.Swap(w)
	if r.m != nil {
		r.m.weight.Set(pct)
	}
	r.log.Info().Float64("from", old.pct).Float64("to", pct).Msg("canary weight changed")
	return nil
}

// Breaker returns the route's circuit breaker (State, Reset).
func (r *Router) Breaker() *Breaker { return r.breaker }

// Status is a route's canary state, for listing.
type Status struct {
	Name    string  `json:"name"`
	Weight  float64 `json:"weight"`
	Breaker string  `json:"breaker"`
}

// State returns the route's canary state now.
func (r *Router) State() Status {
	return Status{Name: r.name, Weight: r.Weight(), Breaker: r.breaker.State().String()}
}

// Close releases the decision client's idle connections.
func (r *Router) Close() {
	if r.decider != nil {
		r.decider.client.CloseIdleConnections()
	}
}

func (r *Router) transition(from, to State) {
	r.m.transition(from, to)
	ev := r.log.Warn()
	if to == Closed {
		ev = r.log.Info()
	}
	ev.Str("from", from.String()).Str("to", to.String()).Msg("canary circuit breaker changed state")
}

// Decision is where one request goes and why.
type Decision struct {
	Side Side
	Rule Rule
	// Cookie, if not nil, is to be set on the response (the sticky cookie).
	Cookie *http.Cookie
	probe  bool
}

// Decide picks the side that serves r. params are the route's path
// parameters (for a param: sticky key); fwdPath is the escaped path as the
// upstreams get it (the decision service gets it too). body is the request
// body as the decision service gets it: read by the caller up to
// BodyLimit()+1 bytes (longer than BodyLimit: cut and marked), or all of
// it; r's own body is not read. Report the candidate's answer with Report.
func (r *Router) Decide(req *http.Request, params Params, fwdPath string, body func() []byte) Decision {
	d := r.decide(req, params, fwdPath, body, false)
	r.m.decision(d.Side, d.Rule)
	return d
}

// DecideExternal is Decide for a proxy that serves the request itself and
// never reports back: a half-open breaker sends it no probes.
func (r *Router) DecideExternal(req *http.Request, params Params, fwdPath string) Decision {
	d := r.decide(req, params, fwdPath, nil, true)
	r.m.decision(d.Side, d.Rule)
	return d
}

// BodyLimit is how much of a request's body Decide wants (the decision
// service's cap), or 0: none.
func (r *Router) BodyLimit() int64 {
	if r.decider == nil {
		return 0
	}
	return r.decider.maxBody
}

func (r *Router) decide(req *http.Request, params Params, fwdPath string, body func() []byte, external bool) Decision {
	if r.override != "" {
		switch req.Header.Get(r.override) {
		case "true":
			return Decision{Side: Candidate, Rule: RuleOverride}
		case "false":
			return Decision{Side: Reference, Rule: RuleOverride}
		}
	}
	var d Decision
	switch {
	case r.header != "" && len(req.Header.Values(r.header)) > 0:
		d = Decision{Side: Candidate, Rule: RuleHeader}
	case r.decider != nil:
		d = r.ask(req, params, fwdPath, body)
	default:
		d = r.split(req, params)
	}
	if d.Side != Candidate {
		return d
	}
	switch r.breaker.admit(external) {
	case passProbe:
		d.probe = true
	case blocked:
		d.Side, d.Rule = Reference, RuleBreaker
	case limited:
		d.Side, d.Rule = Reference, RuleLimit
	}
	return d
}

// ask puts the question to the decision service (or its cache).
func (r *Router) ask(req *http.Request, params Params, fwdPath string, body func() []byte) Decision {
	key := ""
	if c := r.decider.cache; c != nil {
		if key = r.sticky.key(req, params); key != "" {
			if s, ok := c.get(key); ok {
				r.m.asked("cached_" + s.String())
				return Decision{Side: s, Rule: RuleDecisionURL}
			}
		}
	}
	var b []byte
	if body != nil {
		b = body()
	}
	s, err := r.decider.decide(req, fwdPath, b)
	if err != nil {
		result := "error"
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			result = "timeout"
		}
		r.m.asked(result)
		r.log.Debug().Err(err).Msg("decision service failed; the reference serves")
		return Decision{Side: Reference, Rule: RuleFailsafe}
	}
	r.m.asked(s.String())
	if key != "" {
		r.decider.cache.put(key, s)
	}
	return Decision{Side: s, Rule: RuleDecisionURL}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// split applies the weight: by the sticky cookie, else the sticky key,
// else the weight counter.
func (r *Router) split(req *http.Request, params Params) Decision {
	w := r.w.Load()
	if r.cookie != "" {
		if c, err := req.Cookie(r.cookie); err == nil {
			if a, ok := ParseAssignment(c.Value); ok {
				return Decision{Side: sideOf(w.takes(a)), Rule: RuleSticky}
			}
		}
	}
	if key := r.sticky.key(req, params); key != "" {
		a := hashKey(key)
		return Decision{Side: sideOf(w.takes(a)), Rule: RuleSticky, Cookie: r.newCookie(a)}
	}
	cand := w.next()
	d := Decision{Side: sideOf(cand), Rule: RuleWeight}
	if r.cookie != "" {
		d.Cookie = r.newCookie(drawAssignment(cand, w.threshold()))
	}
	return d
}

func sideOf(candidate bool) Side {
	if candidate {
		return Candidate
	}
	return Reference
}

// cookieMaxAge is how long a browser keeps its sticky cookie.
const cookieMaxAge = 30 * 24 * 60 * 60

func (r *Router) newCookie(a float64) *http.Cookie {
	if r.cookie == "" {
		return nil
	}
	return &http.Cookie{
		Name: r.cookie, Value: FormatAssignment(a), Path: "/",
		MaxAge: cookieMaxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// Outcome is how one upstream call of a canary route went.
type Outcome struct {
	Side     Side
	Status   int   // 0 when there was no answer
	Err      error // the call's error, if any
	Duration time.Duration
}

// failed reports whether an answer counts as an error: no answer, or a
// status other than 2xx.
func (o Outcome) failed() bool {
	return o.Err != nil || o.Status < 200 || o.Status > 299
}

// Report tells the router how an upstream call decided by d went; the
// candidate's answers feed the breaker. A call the client abandoned
// (context.Canceled) counts neither way.
func (r *Router) Report(d Decision, o Outcome) {
	abandonedCall := errors.Is(o.Err, context.Canceled) || o.Status == 499
	if !abandonedCall {
		r.m.served(o.Side, o.Status, o.failed(), o.Duration)
	}
	if o.Side != Candidate {
		return
	}
	res := success
	switch {
	case abandonedCall:
		res = abandoned
	case o.failed():
		res = failure
	}
	r.breaker.record(res, d.probe)
}

// Fallback counts a request retried on the reference after the candidate
// could not be reached.
func (r *Router) Fallback() {
	if r.m != nil {
		r.m.fallbacks.Inc()
	}
}

// Assign answers the maxwells-daemon question: given a client's stored
// assignment (possibly empty or invalid), the assignment to keep (a new
// random one when the input is not a number in [0,1)) and the side: the
// candidate exactly when assignment < weight/100. An open (or half-open)
// breaker answers the reference.
func (r *Router) Assign(stored string) (assignment float64, side Side, valid bool) {
	a, ok := ParseAssignment(strings.TrimSuffix(stored, "\r"))
	if !ok {
		a = drawAssignment(true, 1)
	}
	side = sideOf(r.w.Load().takes(a))
	rule := RuleSticky
	if side == Candidate && r.breaker.State() != Closed {
		side, rule = Reference, RuleBreaker
	}
	r.m.decision(side, rule)
	return a, side, ok
}
