package board

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Follow reads the record topic and the tally topic (if set) from start
// into st until ctx is done. tie is [report] latency_tie, for the records'
// latency signs.
func Follow(ctx context.Context, st *Store, client []kgo.Opt, topic, tallyTopic string, start kgo.Offset, tie time.Duration, log zerolog.Logger) error {
	topics := []string{topic}
	if tallyTopic != "" && tallyTopic != topic {
		topics = append(topics, tallyTopic)
	}
	return consume(ctx, client, topics, start, log, func(r *kgo.Record) {
		if r.Topic == topic {
			st.AddRecord(r.Value, Ref{Partition: r.Partition, Offset: r.Offset}, tie)
		} else {
			st.AddTally(r.Value)
		}
	})
}

// consume reads topics from start and hands each record to each until ctx
// is done; read errors are logged and the client retries. Topics that do
// not exist yet are picked up when they appear.
func consume(ctx context.Context, client []kgo.Opt, topics []string, start kgo.Offset, log zerolog.Logger, each func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(client,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("making the Kafka consumer: %w", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			log.Warn().Err(fe.Err).Str("topic", fe.Topic).Int32("partition", fe.Partition).Msg("reading")
		}
		fs.EachRecord(each)
	}
	return nil
}

// fetch reads the record at ref from the topic, within ctx.
func fetch(ctx context.Context, client []kgo.Opt, topic string, ref Ref) ([]byte, error) {
	cl, err := kgo.NewClient(append(client,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {ref.Partition: kgo.NewOffset().At(ref.Offset)}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("making the Kafka consumer: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fetching %s/%d@%d: %w", topic, ref.Partition, ref.Offset, err)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("fetching %s/%d@%d: %w", topic, ref.Partition, ref.Offset, fe.Err)
		}
		var got []byte
		fs.EachRecord(func(r *kgo.Record) {
			if got == nil && r.Offset == ref.Offset {
				got = r.Value
			}
		})
		if got != nil {
			return got, nil
		}
		if !fs.Empty() {
			// Past the offset (compacted or deleted): it is gone.
			return nil, errGone
		}
	}
}

var errGone = errors.New("record no longer in the topic")
