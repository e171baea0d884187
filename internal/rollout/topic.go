package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Send writes a command to the rollout topic, keyed by its route (creating
// the topic with one partition if it is missing, so that every route's
// history is in one order).
func Send(ctx context.Context, opts []kgo.Opt, topic string, c Command) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := c.Encode()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	if err := CreateTopic(ctx, cl, topic); err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(c.Route), Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("writing to the rollout topic %s: %w", topic, err)
	}
	return nil
}

// CreateTopic creates the rollout topic, one partition, kept forever
// (retention.ms and retention.bytes -1: its history is the state), if it
// is missing. The lease topic is made the same way (it holds nothing).
func CreateTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	forever := "-1"
	cfg := map[string]*string{"retention.ms": &forever, "retention.bytes": &forever}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, cfg, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the topic %s: %w", topic, err)
	}
	return nil
}

// checkTopic fails if the rollout topic has more than one partition: the
// decisions are fenced by their order, which only one partition keeps.
func checkTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("reading the metadata of the rollout topic %s: %w", topic, err)
	}
	if td, ok := tds[topic]; ok && len(td.Partitions) > 1 {
		return fmt.Errorf("rollout.topic: %q has %d partitions; a rollout topic needs exactly one (its decisions are fenced in their order); give rollout.topic a new topic name or recreate it with one partition", topic, len(td.Partitions))
	}
	return nil
}

// History reads the rollout topic from its start to its end as it is now
// and returns its values in order, with each one's offset; values that are
// not rollout records are skipped and counted.
func History(ctx context.Context, opts []kgo.Opt, topic string) (vals []Entry, unreadable int, err error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, 0, fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the rollout topic %s: %w", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	if err := ends.Error(); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, 0, fmt.Errorf("reading the rollout topic %s: %w", topic, err)
	}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("reading the rollout topic %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; !ok || r.Offset >= end {
				return
			}
			if v, err := Decode(r.Value); err == nil {
				vals = append(vals, Entry{Value: v, Partition: r.Partition, Offset: r.Offset})
			} else {
				unreadable++
			}
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	return vals, unreadable, nil
}

// Entry is a value read from the topic, with where it stands.
type Entry struct {
	Value
	Partition int32
	Offset    int64
}
