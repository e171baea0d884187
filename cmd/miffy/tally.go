package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/shadow"
	"github.com/miffy-proxy/miffy/internal/tally"
)

var _ shadow.Tally = (*tally.Collector)(nil)

// startTallies makes the collector the proxy counts into and the publisher
// that sends its tallies to [report] tally_topic every tally_interval. Close
// the publisher after the proxy's replays are done and before the record
// publisher.
func startTallies(cfg *config.Config, log zerolog.Logger, reg prometheus.Registerer) (*tally.Collector, *tally.Kafka, error) {
	col := tally.NewCollector(tally.CollectorConfig{LatencyTie: cfg.Report.LatencyTie})
	opts, err := publish.ClientOptions(cfg.Kafka.Properties)
	if err != nil {
		return nil, nil, err
	}
	pub, err := tally.NewKafka(tally.KafkaConfig{
		Topic:    cfg.Report.TallyTopic,
		Client:   opts,
		Interval: cfg.Report.TallyInterval,
	}, col, log.With().Str("component", "tally").Logger(), reg)
	if err != nil {
		return nil, nil, err
	}
	return col, pub, nil
}
