package canary

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the canary metrics of every route. Make them once per
// registry with NewMetrics and give them to each NewRouter.
type Metrics struct {
	decisions   *prometheus.CounterVec
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	weight      *prometheus.GaugeVec
	asked       *prometheus.CounterVec
	responses   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
}

// NewMetrics registers the canary metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_decisions_total",
			Help: "Canary routing decisions, by route, side (reference, candidate) and the rule that decided (override, header, decision_url, sticky, weight, breaker, limit, failsafe).",
		}, []string{"route", "side", "rule"}),
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "miffy_canary_breaker_state", Help: "Circuit breaker of a canary route: 0 closed, 1 open, 2 half-open.",
		}, []string{"route"}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_breaker_transitions_total", Help: "Circuit breaker state changes, by route, from and to (closed, open, half-open).",
		}, []string{"route", "from", "to"}),
		weight: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "miffy_canary_weight_percent", Help: "Share of a canary route's traffic meant for the candidate, in percent.",
		}, []string{"route"}),
		asked: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_decision_requests_total", Help: "Questions to a route's decision_url, by route and result (candidate, reference, cached_candidate, cached_reference, error, timeout).",
		}, []string{"route", "result"}),
		responses: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_responses_total", Help: "Answers served to clients on canary routes, by route, side and status class (1xx..5xx, error: no answer).",
		}, []string{"route", "side", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "miffy_canary_duration_seconds", Help: "Time for the serving side of a canary route to answer, by route and side.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "side"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_errors_total", Help: "Answers on canary routes that count as errors (non-2xx or no answer), by route and side.",
		}, []string{"route", "side"}),
		fallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_canary_fallbacks_total", Help: "Requests retried on the reference after the candidate could not be reached, by route.",
		}, []string{"route"}),
	}
}

// routeMetrics are one route's children, looked up once.
type routeMetrics struct {
	m         *Metrics
	name      string
	state     prometheus.Gauge
	weight    prometheus.Gauge
	fallbacks prometheus.Counter
	dur       [2]prometheus.Observer
	errs      [2]prometheus.Counter
}

func (m *Metrics) forRoute(name string) *routeMetrics {
	if m == nil {
		return nil
	}
	rm := &routeMetrics{
		m:         m,
		name:      name,
		state:     m.state.WithLabelValues(name),
		weight:    m.weight.WithLabelValues(name),
		fallbacks: m.fallbacks.WithLabelValues(name),
	}
	for _, s := range []Side{Reference, Candidate} {
		rm.dur[s] = m.duration.WithLabelValues(name, s.String())
		rm.errs[s] = m.errors.WithLabelValues(name, s.String())
	}
	return rm
}

func (rm *routeMetrics) decision(s Side, rule Rule) {
	if rm != nil {
		rm.m.decisions.WithLabelValues(rm.name, s.String(), string(rule)).Inc()
	}
}

func (rm *routeMetrics) transition(from, to State) {
	if rm != nil {
		rm.state.Set(float64(to))
		rm.m.transitions.WithLabelValues(rm.name, from.String(), to.String()).Inc()
	}
}

func (rm *routeMetrics) asked(result string) {
	if rm != nil {
		rm.m.asked.WithLabelValues(rm.name, result).Inc()
	}
}

func (rm *routeMetrics) served(s Side, status int, failed bool, d time.Duration) {
	if rm == nil {
		return
	}
	code := "error"
	if c := status / 100; status > 0 && c >= 1 && c <= 5 {
		code = strconv.Itoa(c) + "xx"
	}
	rm.m.responses.WithLabelValues(rm.name, s.String(), code).Inc()
	rm.dur[s].Observe(d.Seconds())
	if failed {
		rm.errs[s].Inc()
	}
}
