package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzerolog"
)

// KafkaConfig configures the Kafka publisher (the [kafka] section).
type KafkaConfig struct {
	// Topic the records are written to. Required.
	Topic string
	// Properties are librdkafka-style client properties, e.g.
	// "bootstrap.servers", "sasl.password"; see ClientOptions.
	Properties map[string]string
	// MaxBufferedRecords bounds the records waiting for delivery; past it
	// new records are dropped. Zero buffers none: every record is dropped.
	MaxBufferedRecords int
	// MaxBufferedBytes bounds the bytes (keys and values) waiting for
	// delivery; past it new records are dropped. Zero buffers none.
	MaxBufferedBytes int64
	// DeliveryTimeout is how long a record may wait for delivery, retries
	// included, before it is failed. If zero, records are retried until
	// Close.
	DeliveryTimeout time.Duration
}

// logEvery is the least time between two log lines about dropped or failed
// records.
const logEvery = 10 * time.Second

// clientSlack is how many records franz-go may hold above our own bound. A
// promise runs (and gives back our reservation) just before franz-go gives
// back its own; the slack keeps TryProduce from ever seeing franz-go's
// buffer full because of that.
const clientSlack = 1024

// errNotDelivered is returned by Close when records were lost but the flush
// itself reported no error.
var errNotDelivered = errors.New("records not delivered")

// Kafka publishes records to a Kafka topic. Publish never blocks: records
// are buffered up to a bound (by count and by bytes) and sent in the
// background by franz-go, acks=all and idempotent by default, retried until
// delivered, DeliveryTimeout or Close. Past the bound, records are dropped
// and counted.
type Kafka struct {
	enc *Encoder
	log zerolog.Logger
	cl  *kgo.Client
	m   *metrics

	maxRecords, maxBytes int64
	records, bytes       atomic.Int64 // reserved by records not yet promised
	failed               atomic.Int64 // records promised with an error, ever

	dropLog, failLog, encLog *rateLimiter
	promise                  func(*kgo.Record, error)
	scratch                  sync.Pool // *[]byte encoding buffers

	// mu is held shared by Publish while it hands a record to the client
	// and exclusively by Close to stop that; pending counts the records
	// handed over whose promise has not run.
	mu      sync.RWMutex
	closed  bool
	pending sync.WaitGroup
}

var _ interface{ Publish(*Record) bool } = (*Kafka)(nil)

// NewKafka makes the Kafka client. It does not wait for the broker: records
// are buffered until it can be reached. cfg is as package config checked
// it ([kafka]); errors name the offending property.
func NewKafka(cfg KafkaConfig, enc *Encoder, log zerolog.Logger, reg prometheus.Registerer) (*Kafka, error) {
	opts, err := ClientOptions(cfg.Properties)
	if err != nil {
		return nil, err
	}
	k := &Kafka{
		enc:        enc,
		log:        log,
		maxRecords: int64(cfg.MaxBufferedRecords),
		maxBytes:   cfg.MaxBufferedBytes,
		dropLog:    newRateLimiter(logEvery, time.Now),
		failLog:    newRateLimiter(logEvery, time.Now),
		encLog:     newRateLimiter(logEvery, time.Now),
		scratch:    sync.Pool{New: func() any { return new([]byte) }},
	}
	k.promise = k.finish
	k.m = newMetrics(reg,
		func() float64 { return float64(k.records.Load()) },
		func() float64 { return float64(k.bytes.Load()) })

	opts = append(opts,
		kgo.DefaultProduceTopic(cfg.Topic),
		// Our own bound (see reserve) is the one that counts; franz-go's
		// is set above it so that it never blocks nor refuses.
		kgo.MaxBufferedRecords(int(k.maxRecords)+clientSlack),
		kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(kzerolog.New(&log)),
		kgo.WithHooks(kprom.NewMetrics("miffy", kprom.Subsystem("kafka"), kprom.Registerer(reg))),
	)
	if cfg.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout))
	}
	if k.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka: making the client: %w", err)
	}
	return k, nil
}

// Publish encodes r and hands it to the client to be sent in the background.
// It never blocks. It returns false when the record is dropped: it could not
// be encoded, a buffer bound is reached, or the publisher is closed.
func (k *Kafka) Publish(r *Record) bool {
	sp := k.scratch.Get().(*[]byte)
	b, err := k.enc.Encode((*sp)[:0], r)
	if err != nil {
		k.scratch.Put(sp)
		k.m.encodeErrors.Inc()
		if n, ok := k.encLog.event(1); ok {
			k.log.Error().Err(err).Str("id", r.ID).Int64("count", n).Msg("encoding record: not published")
		}
		return false
	}
	// One allocation of the exact size holds key and value; the scratch
	// buffer goes back to the pool unless one huge record grew it.
	kv := make([]byte, len(r.Key)+len(b))
	copy(kv, r.Key)
	copy(kv[len(r.Key):], b)
	if cap(b) <= 1<<20 {
		*sp = b[:0]
		k.scratch.Put(sp)
	}
	rec := &kgo.Record{Key: kv[:len(r.Key):len(r.Key)], Value: kv[len(r.Key):]}
	size := int64(len(kv))

	if !k.reserve(size) {
		k.drop(1, "Kafka buffer full (kafka.max_buffered_records, kafka.max_buffered_bytes): record dropped")
		return false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		k.release(size)
		k.drop(1, "Kafka publisher closed: record dropped")
		return false
	}
	k.pending.Add(1)
	k.m.accepted.Inc()
	k.cl.TryProduce(context.Background(), rec, k.promise)
	return true
}

// reserve takes room for one record of size bytes, or reports that a bound
// is reached. Concurrent callers near a bound may both be refused; neither
// can pass it.
func (k *Kafka) reserve(size int64) bool {
	if k.records.Add(1) > k.maxRecords {
		k.records.Add(-1)
		return false
	}
	if k.bytes.Add(size) > k.maxBytes {
		k.bytes.Add(-size)
		k.records.Add(-1)
		return false
	}
	return true
}

func (k *Kafka) release(size int64) {
	k.bytes.Add(-size)
	k.records.Add(-1)
}

// finish is the promise of every produced record: franz-go calls it once,
// serially, when the record is delivered or given up.
func (k *Kafka) finish(r *kgo.Record, err error) {
	defer k.pending.Done()
	k.release(int64(len(r.Key) + len(r.Value)))
	switch {
	case err == nil:
		k.m.delivered.Inc()
	case errors.Is(err, kgo.ErrMaxBuffered):
		// Not expected (see clientSlack), but a drop if it happens.
		k.drop(1, "Kafka client buffer full: record dropped")
	default:
		k.m.failed.Inc()
		k.failed.Add(1)
		if n, ok := k.failLog.event(1); ok {
			k.log.Warn().Err(err).Int64("count", n).Msg("records not delivered to Kafka")
		}
	}
}

// drop counts n dropped records and logs, at most once per logEvery.
func (k *Kafka) drop(n int64, msg string) {
	k.m.dropped.Add(float64(n))
	if c, ok := k.dropLog.event(n); ok {
		k.log.Warn().Int64("count", c).Msg(msg)
	}
}

// Ping reports whether a broker can be reached (for /readyz).
func (k *Kafka) Ping(ctx context.Context) error {
	if err := k.cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging Kafka: %w", err)
	}
	return nil
}

// Close stops accepting records, flushes the buffered ones until ctx is
// done, then closes the client. Records that could not be delivered are
// counted (miffy_publish_records_total{result="failed"}), logged with their
// Buffered returns how many records are accepted and not yet delivered
// (or given up).
func (k *Kafka) Buffered() int64 { return k.records.Load() }

// number, and reported in the error.
func (k *Kafka) Close(ctx context.Context) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()

	failedBefore := k.failed.Load()
	flushErr := k.cl.Flush(ctx)
	// Close fails what is still buffered (kgo.ErrClientClosed) and runs
	// those promises.
	k.cl.Close()
	k.pending.Wait()
	if lost := k.failed.Load() - failedBefore; lost > 0 {
		k.log.Error().Err(flushErr).Int64("count", lost).Msg("records not delivered to Kafka before shutdown")
		return fmt.Errorf("flushing Kafka: %d records not delivered: %w", lost, cmp.Or(flushErr, errNotDelivered))
	}
	return nil
}
