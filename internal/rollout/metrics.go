package rollout

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	step      *prometheus.GaugeVec
	weight    *prometheus.GaugeVec
	decisions *prometheus.CounterVec
	leader    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	return metrics{
		step: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "miffy_rollout_step",
			Help: "The stage each route's rollout is at, as its decisions on the rollout topic say (0: shadow only, i: the i-th of [routes.rollout] steps).",
		}, []string{"route"}),
		weight: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "miffy_rollout_weight",
			Help: "The candidate weight in percent each route's rollout set last.",
		}, []string{"route"}),
		decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "miffy_rollout_decisions_total",
			Help: "Decisions of this controller while it acted, by route and decision (advance, hold, rollback, promote, pause, resume, abort); hold counts every evaluation that held, recorded or not.",
		}, []string{"route", "decision"}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "miffy_rollout_leader",
			Help: "1 while this controller holds the lease and acts for the fleet, else 0.",
		}),
	}
}
