package tally

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzerolog"
)

// KafkaConfig configures the tally publisher.
type KafkaConfig struct {
	// Topic the tallies are written to ([report] tally_topic, which
	// config checks). Required.
	Topic string
	// Client are the connection options (see publish.ClientOptions).
	Client []kgo.Opt
	// Interval between two flushes of the collector ([report]
	// tally_interval). If zero, the tallies are sent at Close only.
	Interval time.Duration
}

// MaxBufferedTallies bounds the tallies waiting for delivery; past it new
// ones are dropped and counted.
const MaxBufferedTallies = 10_000

// Kafka publishes a Collector's tallies every interval, and once more at
// Close, to the tally topic. Delivery is counted like the records'
// (miffy_tally_records_total by result: accepted, delivered, dropped,
// failed).
type Kafka struct {
	cfg         KafkaConfig
	c           *Collector
	cl          *kgo.Client
	log         zerolog.Logger
	maxBuffered int // MaxBufferedTallies; tests lower it

	accepted, delivered, dropped, failed prometheus.Counter
	buffered                             atomic.Int64
	lost                                 atomic.Int64

	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	pending sync.WaitGroup
}

// NewKafka makes the client and starts the interval loop. It does not wait
// for the broker.
func NewKafka(cfg KafkaConfig, c *Collector, log zerolog.Logger, reg prometheus.Registerer) (*Kafka, error) {
	records := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "miffy_tally_records_total",
		Help: "Tally records (one per route and endpoint per [report] tally_interval), by result: accepted (buffered), delivered, dropped (buffer full or closed), failed (not delivered).",
	}, []string{"result"})
	k := &Kafka{
		cfg: cfg, c: c, log: log, maxBuffered: MaxBufferedTallies,
		accepted:  records.WithLabelValues("accepted"),
		delivered: records.WithLabelValues("delivered"),
		dropped:   records.WithLabelValues("dropped"),
		failed:    records.WithLabelValues("failed"),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	opts := append(cfg.Client,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.MaxBufferedRecords(k.maxBuffered+1024),
		kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(kzerolog.New(&log)),
	)
	var err error
	if k.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("tally: making the Kafka client: %w", err)
	}
	go k.loop()
	return k, nil
}

func (k *Kafka) loop() {
	defer close(k.done)
	var tick <-chan time.Time // nil: no interval, Close sends the tallies
	if k.cfg.Interval > 0 {
		t := time.NewTicker(k.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-k.stop:
			return
		case <-tick:
			k.publish(k.c.Flush())
		}
	}
}

// publish hands the tallies to the client; it never blocks.
func (k *Kafka) publish(ts []*Tally) {
	for _, t := range ts {
		b, err := json.Marshal(t)
		if err != nil { // not expected: plain data
			k.dropped.Inc()
			continue
		}
		if k.buffered.Add(1) > int64(k.maxBuffered) {
			k.buffered.Add(-1)
			k.dropped.Inc()
			k.log.Warn().Str("route", t.Route).Msg("tally dropped: buffer full (is the broker down?)")
			continue
		}
		k.accepted.Inc()
		k.pending.Add(1)
		k.cl.TryProduce(context.Background(), &kgo.Record{Key: []byte(t.Route), Value: b}, k.finish)
	}
}

func (k *Kafka) finish(_ *kgo.Record, err error) {
	defer k.pending.Done()
	k.buffered.Add(-1)
	if err == nil {
		k.delivered.Inc()
		return
	}
	k.failed.Inc()
	k.lost.Add(1)
	k.log.Warn().Err(err).Msg("tally not delivered to Kafka")
}

// Close stops the loop, publishes the last interval's tallies and flushes
// them until ctx is done. Call it after the proxy has finished its replays
// and before the record publisher closes. Tallies not delivered are
// counted, logged and reported in the error.
func (k *Kafka) Close(ctx context.Context) error {
	first := false
	k.once.Do(func() { first = true; close(k.stop) })
	if !first {
		return nil
	}
	<-k.done
	k.publish(k.c.Flush())
	flushErr := k.cl.Flush(ctx)
	k.cl.Close()
	k.pending.Wait()
	if n := k.lost.Load(); n > 0 {
		k.log.Error().Err(flushErr).Int64("count", n).Msg("tallies not delivered to Kafka")
		return fmt.Errorf("flushing tallies: %d not delivered: %w", n, cmp.Or(flushErr, errors.New("delivery failed")))
	}
	return nil
}
