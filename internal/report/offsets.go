package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// From says where reading starts when no committed group offset applies.
type From struct {
	kind fromKind
	at   time.Time
}

type fromKind int

const (
	fromStart fromKind = iota
	fromEnd
	fromTime
)

// FromStart, FromEnd and FromTime are the three places reading can start.
var (
	FromStart = From{kind: fromStart}
	FromEnd   = From{kind: fromEnd}
)

// FromTime starts at the first record written at or after t.
func FromTime(t time.Time) From { return From{kind: fromTime, at: t} }

// Time is the time f starts at; zero for start and end.
func (f From) Time() time.Time { return f.at }

func (f From) String() string {
	switch f.kind {
	case fromEnd:
		return "end"
	case fromTime:
		return f.at.UTC().Format(time.RFC3339)
	}
	return "start"
}

// ParseFrom parses a -from value: "start", "end", an RFC 3339 time, or a
// duration ago such as "1h" or "90m" (counted back from now).
func ParseFrom(s string, now time.Time) (From, error) {
	switch strings.ToLower(s) {
	case "start", "beginning", "":
		return FromStart, nil
	case "end":
		return FromEnd, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return FromTime(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return FromTime(now.Add(-d)), nil
	}
	return From{}, fmt.Errorf("want start, end, an RFC 3339 time or a duration such as 1h, got %q", s)
}

// errNoTopic is returned when the topic does not exist.
var errNoTopic = errors.New("topic not found")

// topicInfo is what the metadata says about the topic.
type topicInfo struct {
	id         [16]byte
	partitions []int32
}

// describe returns the topic's partitions; it does not create the topic.
func describe(ctx context.Context, cl *kgo.Client, topic string) (topicInfo, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicInfo{}, fmt.Errorf("asking for the topic's metadata: %w", err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return topicInfo{}, fmt.Errorf("%w: %q", errNoTopic, topic)
			}
			return topicInfo{}, fmt.Errorf("asking for the topic's metadata: %w", err)
		}
		info := topicInfo{id: t.TopicID}
		for _, p := range t.Partitions {
			info.partitions = append(info.partitions, p.Partition)
		}
		if len(info.partitions) == 0 {
			return topicInfo{}, fmt.Errorf("%w: %q has no partitions", errNoTopic, topic)
		}
		return info, nil
	}
	return topicInfo{}, fmt.Errorf("%w: %q", errNoTopic, topic)
}

// ListOffsets timestamps with a special meaning.
const (
	latestOffset   = -1
	earliestOffset = -2
)

// listOffsets returns, per partition, the offset for ts: the end offset
// (latestOffset), the start offset (earliestOffset), or the first offset
// of a record at or after ts in Unix milliseconds (-1 when there is none).
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, parts []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("listing offsets: %w", err)
	}
	offsets := make(map[int32]int64, len(parts))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("listing offsets of partition %d: %w", p.Partition, err)
			}
			offsets[p.Partition] = p.Offset
		}
	}
	for _, p := range parts {
		if _, ok := offsets[p]; !ok {
			return nil, fmt.Errorf("listing offsets: no answer for partition %d", p)
		}
	}
	return offsets, nil
}

// committedOffsets returns the group's committed offsets for the topic; a
// partition without one is absent.
func committedOffsets(ctx context.Context, cl *kgo.Client, group, topic string, parts []int32) (map[int32]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	rt.Partitions = parts
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("fetching the group's offsets: %w", err)
	}
	offsets := make(map[int32]int64)
	for _, g := range resp.Groups {
		if g.ErrorCode == kerr.GroupIDNotFound.Code {
			continue // a new group: nothing committed yet
		}
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return nil, fmt.Errorf("fetching the group's offsets: %w", err)
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("fetching the group's offset of partition %d: %w", p.Partition, err)
				}
				if p.Offset >= 0 {
					offsets[p.Partition] = p.Offset
				}
			}
		}
	}
	return offsets, nil
}

// commit stores the positions as the group's offsets. The report is not a
// group member: it commits as a standalone consumer (generation -1), which
// Kafka accepts while no member of the group is active.
func commit(ctx context.Context, cl *kgo.Client, group, topic string, info topicInfo, pos map[int32]int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rt.TopicID = info.id
	for _, p := range info.partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rp.Offset = pos[p]
		rp.LeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("committing the group's offsets: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("committing the group's offset of partition %d: %w", p.Partition, err)
			}
		}
	}
	return nil
}
