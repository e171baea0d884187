package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A control topic holds one record per route: key the route's name, value
// its Desired state as JSON (an empty value clears it). It should be
// compacted, so that the latest state of each route is all it keeps;
// PublishDesired creates it so.

// followMetadataAge is how often, at most, a follower refreshes the
// topic's metadata (while the topic is missing, or a partition moves).
const followMetadataAge = 250 * time.Millisecond

// followCheckEvery is how often a follower checks that it can still read
// the topic (and, before the first read, retries it). The fetch loop alone
// cannot tell: the client retries a lost broker in silence, so without the
// check an instance cut off from the topic would look healthy.
const followCheckEvery = 2 * time.Second

// followCheckTimeout bounds one check.
const followCheckTimeout = 2 * time.Second

// FollowConfig says which control topic to follow, and how.
type FollowConfig struct {
	// Topic is the control topic.
	Topic string
	// StaleAfter, if set, puts canary routes back to weight 0 when the
	// topic has not been read (nor checked readable) for this long, until
	// it is read again. If zero, the last known state is kept however long
	// the topic is lost.
	StaleAfter time.Duration
}

// Follower applies a control topic to a Manager: first everything up to the
// end of the topic as it was at start, then each new record as it arrives.
// Until that first read is done, canary routes serve at weight 0 (the safe
// state) and Ready fails; a running follower that loses the topic keeps the
// last known state while the client retries, and Ready reports it degraded
// (not failed) until the topic can be read again. With StaleAfter, a topic
// lost for that long puts canary routes back to weight 0 (still degraded,
// Ready saying why) until it is read again.
type Follower struct {
	m          *Manager
	topic      string
	staleAfter time.Duration
	cl         *kgo.Client
	log        zerolog.Logger
	every      time.Duration // between checks

	errs   prometheus.Counter
	lastOK prometheus.Gauge

	mu       sync.Mutex
	caughtUp bool
	stale    bool      // held at weight 0 by StaleAfter
	lastErr  error     // of the latest read or check; nil once one succeeds
	okAt     time.Time // of the latest successful read or check
	stop     context.CancelFunc
	done     chan struct{}
}

// Follow starts following cfg.Topic with a client made from opts (seed
// brokers, SASL, TLS); its metrics are registered with reg. It returns at
// once; Ready says when the topic has been read up to its end at start, and
// whether it can still be read.
func Follow(m *Manager, cfg FollowConfig, opts []kgo.Opt, log zerolog.Logger, reg prometheus.Registerer) (*Follower, error) {
	return follow(m, cfg, opts, log, reg, followCheckEvery)
}

// follow is Follow with the time between checks (shorter in tests).
func follow(m *Manager, cfg FollowConfig, opts []kgo.Opt, log zerolog.Logger, reg prometheus.Registerer, every time.Duration) (*Follower, error) {
	topic := cfg.Topic
	opts = append(append([]kgo.Opt{}, opts...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Until `miffy ctl -fleet` first writes it, the topic does not
		// exist; the client looks for it again at most this often (by
		// default 5s), which bounds how late the first change arrives.
		kgo.MetadataMinAge(followMetadataAge),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the control topic client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fm := promauto.With(reg)
	f := &Follower{m: m, topic: topic, staleAfter: cfg.StaleAfter, cl: cl, log: log, every: every, stop: cancel, done: make(chan struct{}),
		errs: fm.NewCounter(prometheus.CounterOpts{
			Name: "miffy_control_topic_errors_total",
			Help: "Failed reads of the control topic (at start, by the fetch loop, or by the periodic check). While they go on, an instance that has read the topic keeps its last known state.",
		}),
		lastOK: fm.NewGauge(prometheus.GaugeOpts{
			Name: "miffy_control_topic_last_success_timestamp_seconds",
			Help: "When the control topic was last read or checked successfully (Unix time; 0 never). Alert on time() minus this.",
		}),
	}
	m.safeState()
	go f.run(ctx)
	return f, nil
}

// Ready reports whether the control topic has been read up to its end
// (an error while not: canary routes serve at weight 0) and can still be
// read. Once read, a lost topic is an error whose Degraded method says true:
// the instance serves on with its last known state, so a Kafka outage does
// not take a whole fleet out of its load balancers (see mgmt.Check).
func (f *Follower) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.caughtUp:
		reason := "not read to its end yet"
		if f.lastErr != nil {
			reason = f.lastErr.Error()
		}
		return fmt.Errorf("control topic %q: %s; canary routes serve at weight 0", f.topic, reason)
	case f.stale:
		return staleError{fmt.Errorf("control topic %q: not read since %s, longer than stale_after (%s): %w; canary routes serve at weight 0 until it is read again",
			f.topic, f.okAt.UTC().Format(time.RFC3339), f.staleAfter, f.lastErr)}
	case f.lastErr != nil:
		return staleError{fmt.Errorf("control topic %q: %w; keeping the state last read at %s, retrying",
			f.topic, f.lastErr, f.okAt.UTC().Format(time.RFC3339))}
	}
	return nil
}

// staleError is Ready's error for a topic lost after it was read: a
// warning, not a failure.
type staleError struct{ err error }

func (e staleError) Error() string { return e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// Degraded says that the instance still serves (with its last known state).
func (staleError) Degraded() bool { return true }

// Close stops following.
func (f *Follower) Close() {
	f.stop()
	<-f.done
	f.cl.Close()
}

func (f *Follower) run(ctx context.Context) {
	defer close(f.done)
	end, err := f.endOffsets(ctx)
	for err != nil {
		f.failed(err)
		f.log.Warn().Err(err).Str("topic", f.topic).Msg("cannot read the control topic; canary routes stay at weight 0, retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.every):
		}
		end, err = f.endOffsets(ctx)
	}
	f.succeeded()
	checked := make(chan struct{})
	go f.check(ctx, checked)
	defer func() { <-checked }()
	if len(end) == 0 {
		f.markCaughtUp()
	}
	for {
		fs := f.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, kerr.UnknownTopicOrPartition) {
				f.failed(err)
				f.log.Warn().Err(err).Msg("reading the control topic; keeping the last known state")
			}
		})
		if fs.NumRecords() > 0 {
			f.succeeded()
		}
		fs.EachRecord(func(r *kgo.Record) {
			f.apply(r)
			if want, ok := end[r.Partition]; ok && r.Offset+1 >= want {
				delete(end, r.Partition)
				if len(end) == 0 {
					f.markCaughtUp()
				}
			}
		})
	}
}

// check checks every f.every, until ctx is done, that the topic can still
// be read: a broker answers and the topic's offsets can be listed. It logs
// when the topic is lost and when it is back, not at every check.
func (f *Follower) check(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := f.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if f.failed(err) {
				f.log.Warn().Err(err).Str("topic", f.topic).Msg("lost the control topic; keeping the last known state, retrying")
			}
			f.checkStale()
		} else if f.succeeded() {
			f.log.Info().Str("topic", f.topic).Msg("control topic readable again")
		}
	}
}

// probe is one check of the topic.
func (f *Follower) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, followCheckTimeout)
	defer cancel()
	if err := f.cl.Ping(ctx); err != nil {
		return fmt.Errorf("reaching a broker: %w", err)
	}
	if _, err := f.endOffsets(ctx); err != nil {
		return fmt.Errorf("listing offsets: %w", err)
	}
	return nil
}

// endOffsets returns, per partition, the offset the first read must reach
// (partitions with no records are left out). A missing topic is empty.
func (f *Follower) endOffsets(ctx context.Context) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.cl)
	ends, err := adm.ListEndOffsets(ctx, f.topic)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, f.topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var firstErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if !errors.Is(o.Err, kerr.UnknownTopicOrPartition) && firstErr == nil {
				firstErr = o.Err
			}
			return
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil && s.Offset >= o.Offset {
			return // empty
		}
		if o.Offset > 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out, firstErr
}

func (f *Follower) apply(r *kgo.Record) {
	route := string(r.Key)
	var d *Desired
	if len(r.Value) > 0 {
		d = &Desired{}
		if err := json.Unmarshal(r.Value, d); err != nil {
			f.log.Warn().Err(err).Str("route", route).Int64("offset", r.Offset).Msg("ignoring an unreadable control record")
			return
		}
	}
	if err := f.m.SetDesired(route, d, "control_topic"); err != nil && !errors.Is(err, ErrUnknownRoute) {
		f.log.Warn().Err(err).Str("route", route).Msg("control record rejected")
	}
}

// failed counts a failed read or check; it returns whether the topic was
// readable until then.
func (f *Follower) failed(err error) (wasOK bool) {
	f.errs.Inc()
	f.mu.Lock()
	defer f.mu.Unlock()
	wasOK = f.lastErr == nil
	f.lastErr = err
	return wasOK
}

// succeeded records a successful read or check; it returns whether the
// topic was failing until then. Canary routes held by stale_after get
// the topic's weights back.
func (f *Follower) succeeded() (wasFailing bool) {
	f.mu.Lock()
	now := time.Now()
	f.lastOK.Set(float64(now.UnixNano()) / 1e9)
	wasFailing = f.lastErr != nil
	wasStale := f.stale
	f.lastErr = nil
	f.stale = false
	f.okAt = now
	f.mu.Unlock()
	if wasStale {
		f.m.resync()
		f.log.Info().Str("topic", f.topic).Msg("control topic read again; canary routes follow it again")
	}
	return wasFailing
}

// checkStale puts canary routes at weight 0 once the topic has not been
// read for stale_after.
func (f *Follower) checkStale() {
	f.mu.Lock()
	since := time.Since(f.okAt)
	hold := f.staleAfter > 0 && f.caughtUp && !f.stale && f.lastErr != nil && since >= f.staleAfter
	if hold {
		f.stale = true
	}
	f.mu.Unlock()
	if hold {
		f.m.safeState()
		f.log.Warn().Str("topic", f.topic).Dur("unread_for", since).Dur("stale_after", f.staleAfter).
			Msg("control topic not read for stale_after; canary routes serve at weight 0 until it is read again")
	}
}

func (f *Follower) markCaughtUp() {
	f.mu.Lock()
	already := f.caughtUp
	f.caughtUp = true
	f.mu.Unlock()
	if !already {
		f.m.resync()
		f.log.Info().Str("topic", f.topic).Msg("control topic read; routes follow it")
	}
}

// PublishDesired writes a route's desired state to the control topic
// (creating the topic, compacted, if it is missing). d nil clears it.
func PublishDesired(ctx context.Context, opts []kgo.Opt, topic, route string, d *Desired) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	if err := CreateTopic(ctx, cl, topic); err != nil {
		return err
	}
	var value []byte
	if d != nil {
		if value, err = json.Marshal(d); err != nil {
			return err
		}
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(route), Value: value}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("writing to the control topic: %w", err)
	}
	return nil
}

// CreateTopic creates the control topic, one partition and compacted, if
// it is missing.
func CreateTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	compact := "compact"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic); err != nil &&
		!errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the control topic %s: %w", topic, err)
	}
	return nil
}

// ReadDesired reads a control topic to its end and returns each route's
// latest desired state.
func ReadDesired(ctx context.Context, opts []kgo.Opt, topic string) (map[string]Desired, error) {
	opts = append(append([]kgo.Opt{}, opts...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	f := &Follower{cl: cl, topic: topic}
	end, err := f.endOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the control topic: %w", err)
	}
	out := map[string]Desired{}
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the control topic: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var d Desired
			if len(r.Value) == 0 || json.Unmarshal(r.Value, &d) != nil {
				delete(out, string(r.Key))
			} else {
				out[string(r.Key)] = d
			}
			if want, ok := end[r.Partition]; ok && r.Offset+1 >= want {
				delete(end, r.Partition)
			}
		})
	}
	return out, nil
}
