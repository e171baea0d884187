package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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

// Follower applies a control topic to a Manager: first everything up to the
// end of the topic as it was at start, then each new record as it arrives.
// Until that first read is done, canary routes serve at weight 0 (the safe
// state); a running follower that loses the broker keeps the last known
// state while the client retries.
type Follower struct {
	m     *Manager
	topic string
	cl    *kgo.Client
	log   zerolog.Logger

	mu       sync.Mutex
	caughtUp bool
	lastErr  error
	stop     context.CancelFunc
	done     chan struct{}
}

// Follow starts following topic with a client made from opts (seed
// brokers, SASL, TLS). It returns at once; Ready says when the topic has
// been read up to its end at start.
func Follow(m *Manager, topic string, opts []kgo.Opt, log zerolog.Logger) (*Follower, error) {
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
	f := &Follower{m: m, topic: topic, cl: cl, log: log, stop: cancel, done: make(chan struct{}),
		lastErr: errors.New("not read yet")}
	m.safeState()
	go f.run(ctx)
	return f, nil
}

// Ready reports whether the control topic has been read up to its end.
func (f *Follower) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.caughtUp {
		return nil
	}
	return fmt.Errorf("control topic %q: %v; canary routes serve at weight 0", f.topic, f.lastErr)
}

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
		f.setErr(err)
		f.log.Warn().Err(err).Str("topic", f.topic).Msg("cannot read the control topic; canary routes stay at weight 0, retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		end, err = f.endOffsets(ctx)
	}
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
				f.setErr(err)
				f.log.Warn().Err(err).Msg("reading the control topic; keeping the last known state")
			}
		})
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

func (f *Follower) setErr(err error) {
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
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
	adm := kadm.NewClient(cl)
	compact := "compact"
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic); err != nil &&
		!errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the control topic: %w", err)
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
