package publish

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of a record handed to Kafka.Publish, the "result" label of
// miffy_publish_records_total.
const (
	resultAccepted  = "accepted"  // buffered for sending
	resultDelivered = "delivered" // acknowledged by the broker
	resultDropped   = "dropped"   // not buffered: a buffer bound was reached, or closing
	resultFailed    = "failed"    // buffered but never delivered (delivery timeout, shutdown)
)

// metrics are the publisher's Prometheus metrics.
type metrics struct {
	accepted     prometheus.Counter
	delivered    prometheus.Counter
	dropped      prometheus.Counter
	failed       prometheus.Counter
	encodeErrors prometheus.Counter
}

// newMetrics registers the publisher's metrics with reg; bufferedRecords and
// bufferedBytes are read at scrape time.
func newMetrics(reg prometheus.Registerer, bufferedRecords, bufferedBytes func() float64) *metrics {
	f := promauto.With(reg)
	records := f.NewCounterVec(prometheus.CounterOpts{
		Name: "miffy_publish_records_total",
		Help: "Records handed to the Kafka publisher, by result: accepted (buffered), delivered, dropped (buffer full), failed (not delivered).",
	}, []string{"result"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "miffy_publish_buffered_records",
		Help: "Records buffered in the Kafka publisher, waiting for delivery.",
	}, bufferedRecords)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "miffy_publish_buffered_bytes",
		Help: "Bytes (keys and values) buffered in the Kafka publisher, waiting for delivery.",
	}, bufferedBytes)
	return &metrics{
		accepted:  records.WithLabelValues(resultAccepted),
		delivered: records.WithLabelValues(resultDelivered),
		dropped:   records.WithLabelValues(resultDropped),
		failed:    records.WithLabelValues(resultFailed),
		encodeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "miffy_publish_encode_errors_total",
			Help: "Records that could not be encoded as JSON and were not published.",
		}),
	}
}
