package shadow

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/miffy-proxy/miffy/internal/compare"
)

type metrics struct {
	requests       *prometheus.CounterVec
	responses      *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	replays        *prometheus.CounterVec
	skipped        *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	mismatches     *prometheus.CounterVec
	panics         prometheus.Counter
	unrouted       prometheus.Counter
	droppedHeaders *prometheus.CounterVec
	tally          Tally // nil: not tallied
}

func newMetrics(reg prometheus.Registerer, b *budget) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_requests_total", Help: "Client requests, by route (\"unrouted\" for requests that match no route).",
		}, []string{"route"}),
		responses: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_responses_total", Help: "Answers to clients on routes under test, by route and status class.",
		}, []string{"route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "miffy_upstream_duration_seconds", Help: "Time for an upstream to answer in full, by route and side (reference, candidate, secondary).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "side"}),
		droppedHeaders: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_proxy_headers_dropped_total", Help: "Client request header fields not forwarded: names with an underscore (reason underscore), Upgrade offers outside proxy.allow_upgrades (reason upgrade).",
		}, []string{"reason"}),
		upstreamErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_upstream_errors_total", Help: "Upstream calls that got no answer, by route, side and kind (timeout, refused, reset, canceled, other).",
		}, []string{"route", "side", "kind"}),
		replays: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_replays_total", Help: "Replays finished, by route and result (compared, candidate_error, abandoned).",
		}, []string{"route", "result"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_shadow_skipped_total", Help: "Routed requests not shadowed by rule, by route and reason (method, sample, body_too_large, reference_error).",
		}, []string{"route", "reason"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_shadow_dropped_total", Help: "Replays dropped at a bound, by route and reason (in_flight, memory, compare_backlog).",
		}, []string{"route", "reason"}),
		mismatches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_mismatches_total", Help: "Compared requests that differ, by route and class (regression, noise: every difference is noise).",
		}, []string{"route", "class"}),
		panics: f.NewCounter(prometheus.CounterOpts{
			Name: "miffy_replay_panics_total", Help: "Replays that panicked (a bug: the stack is logged).",
		}),
	}
	m.unrouted = m.requests.WithLabelValues("unrouted")
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "miffy_shadow_in_flight", Help: "Replays in flight.",
	}, func() float64 { return float64(b.count.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "miffy_shadow_in_flight_bytes", Help: "Bytes held by replays in flight (request bodies and captured responses).",
	}, func() float64 { return float64(b.bytes.Load()) })
	return m
}

// routeMetrics are one route's metric children, looked up once per table so
// that the request path does no label lookups.
type routeMetrics struct {
	m        *metrics
	name     string
	requests prometheus.Counter
	codes    [6]prometheus.Counter // 1xx..5xx, and other
	refDur   prometheus.Observer
	candDur  prometheus.Observer
	secDur   prometheus.Observer
}

func (m *metrics) forRoute(name string) routeMetrics {
	rm := routeMetrics{
		m:        m,
		name:     name,
		requests: m.requests.WithLabelValues(name),
		refDur:   m.duration.WithLabelValues(name, "reference"),
		candDur:  m.duration.WithLabelValues(name, "candidate"),
		secDur:   m.duration.WithLabelValues(name, "secondary"),
	}
	for i := 1; i <= 5; i++ {
		rm.codes[i-1] = m.responses.WithLabelValues(name, strconv.Itoa(i)+"xx")
	}
	rm.codes[5] = m.responses.WithLabelValues(name, "other")
	return rm
}

func (rm *routeMetrics) status(code int) {
	if c := code / 100; c >= 1 && c <= 5 {
		rm.codes[c-1].Inc()
		return
	}
	rm.codes[5].Inc()
}

func (rm *routeMetrics) duration(side string, d time.Duration) {
	switch side {
	case "reference":
		rm.refDur.Observe(d.Seconds())
	case "candidate":
		rm.candDur.Observe(d.Seconds())
	default:
		rm.secDur.Observe(d.Seconds())
	}
}

func (rm *routeMetrics) upstreamError(m *metrics, side, kind string) {
	m.upstreamErrors.WithLabelValues(rm.name, side, kind).Inc()
}

func (rm *routeMetrics) skipped(reason string) {
	rm.m.skipped.WithLabelValues(rm.name, reason).Inc()
	if rm.m.tally != nil {
		rm.m.tally.Skipped(rm.name, reason)
	}
}

func (rm *routeMetrics) dropped(reason string) {
	rm.m.dropped.WithLabelValues(rm.name, reason).Inc()
	if rm.m.tally != nil {
		rm.m.tally.Dropped(rm.name, reason)
	}
}

func (rm *routeMetrics) replay(result string) { rm.m.replays.WithLabelValues(rm.name, result).Inc() }
func (rm *routeMetrics) mismatch(c compare.Class) {
	rm.m.mismatches.WithLabelValues(rm.name, string(c)).Inc()
}
