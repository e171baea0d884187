package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Options say what Run reads and how it prints.
type Options struct {
	// Topic to read. Required.
	Topic string
	// TallyTopic, if set, is read over the same range for the instances'
	// tallies ([report] tally_topic); a missing tally topic is no error.
	TallyTopic string
	// Client are the connection options: seed brokers, SASL, TLS (see
	// publish.ClientOptions).
	Client []kgo.Opt
	// Group, if set, names a consumer group: reading starts at its
	// committed offsets (From applies to partitions without one) and the
	// offsets read are committed when Run returns, and after each print
	// when following. The report commits as a standalone consumer, so the
	// group must have no active members.
	Group string
	// From is where reading starts without a committed offset.
	From From
	// Follow keeps reading until ctx is done and prints the summary every
	// Interval. Without it, Run reads until the end offsets that the topic
	// had when Run started, or until ctx is done when UntilEnd is false.
	Follow   bool
	UntilEnd bool
	// Interval between prints when following, and the least time between
	// two progress lines (miffy report -interval). If zero, a print after
	// every fetch.
	Interval time.Duration
	// JSON prints the summary as JSON (one object per print) instead of
	// tables.
	JSON bool
	// Aggregate bounds what is kept per route.
	Aggregate Config
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// progressEvery is the least time between two progress lines on stderr.
const progressEvery = time.Second

// Run reads the topic and writes the summary to stdout; progress and notes
// go to stderr. It returns when the end offsets are reached (UntilEnd), or
// when ctx is done: what was read so far is printed then, and the error is
// nil.
func Run(ctx context.Context, opts Options, stdout, stderr io.Writer) error {
	_, err := RunSummary(ctx, opts, stdout, stderr)
	return err
}

// RunSummary is Run, and returns the summary printed last (nil when
// nothing was printed), e.g. to judge its verdict.
func RunSummary(ctx context.Context, opts Options, stdout, stderr io.Writer) (*Summary, error) {
	if opts.Topic == "" {
		return nil, errors.New("topic: must not be empty")
	}
	interval := opts.Interval
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	admin, err := kgo.NewClient(opts.Client...)
	if err != nil {
		return nil, fmt.Errorf("making the Kafka client: %w", err)
	}
	defer admin.Close()
	agg := NewAggregator(opts.Aggregate)
	recs, err := positions(ctx, admin, opts.Topic, opts)
	if err != nil {
		return nil, err
	}
	recs.add = agg.Add
	topics := []*topicState{recs}
	if opts.TallyTopic != "" && opts.TallyTopic != opts.Topic {
		ts, err := positions(ctx, admin, opts.TallyTopic, opts)
		switch {
		case errors.Is(err, errNoTopic): // no instance published tallies yet
		case err != nil:
			return nil, err
		default:
			ts.add = agg.AddTally
			topics = append(topics, ts)
		}
	}

	r := &reader{
		opts: opts, stdout: stdout, stderr: stderr, now: now,
		admin: admin, agg: agg, topics: topics,
	}
	consume := map[string]map[int32]kgo.Offset{}
	for _, ts := range topics {
		parts := make(map[int32]kgo.Offset, len(ts.pos))
		for _, p := range ts.info.partitions {
			r.total += max(0, ts.end[p]-ts.pos[p])
			parts[p] = kgo.NewOffset().At(ts.pos[p])
		}
		consume[ts.name] = parts
	}
	if !opts.Follow && opts.UntilEnd && r.reachedEnd() {
		err := r.print()
		return r.last, err
	}

	cl, err := kgo.NewClient(append(opts.Client,
		kgo.ConsumePartitions(consume),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("making the Kafka consumer: %w", err)
	}
	defer cl.Close()

	readErr := r.read(ctx, cl, interval)
	if readErr == nil && ctx.Err() != nil && !opts.Follow && opts.UntilEnd {
		fmt.Fprintf(stderr, "miffy report: interrupted before the end of the topic; %d of %d records read\n", r.n, r.total)
	}
	r.progress(true)
	if err := r.print(); err != nil {
		return nil, err
	}
	if opts.Group != "" {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.commit(cctx); err != nil {
			return r.last, errors.Join(readErr, err)
		}
	}
	return r.last, readErr
}

// topicState is one topic being read: its partitions, the next offset to
// read and the end offset at the start, per partition, and what takes its
// values.
type topicState struct {
	name     string
	info     topicInfo
	pos, end map[int32]int64
	add      func([]byte) bool
}

// positions learns a topic's partitions, where to start reading each and
// where each ends now.
func positions(ctx context.Context, cl *kgo.Client, topic string, opts Options) (*topicState, error) {
	ts := &topicState{name: topic}
	var err error
	if ts.info, err = describe(ctx, cl, topic); err != nil {
		return nil, err
	}
	parts := ts.info.partitions
	if ts.end, err = listOffsets(ctx, cl, topic, parts, latestOffset); err != nil {
		return nil, err
	}
	switch opts.From.kind {
	case fromStart:
		ts.pos, err = listOffsets(ctx, cl, topic, parts, earliestOffset)
	case fromEnd:
		ts.pos = maps.Clone(ts.end)
	case fromTime:
		ts.pos, err = listOffsets(ctx, cl, topic, parts, opts.From.at.UnixMilli())
		for p, o := range ts.pos {
			if o < 0 { // nothing written since: start at the end
				ts.pos[p] = ts.end[p]
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if opts.Group != "" {
		committed, err := committedOffsets(ctx, cl, opts.Group, topic, parts)
		if err != nil {
			return nil, err
		}
		maps.Copy(ts.pos, committed)
	}
	return ts, nil
}

// reader consumes records into the aggregator and prints.
type reader struct {
	opts           Options
	stdout, stderr io.Writer
	now            func() time.Time
	agg            *Aggregator
	admin          *kgo.Client // for commits
	topics         []*topicState
	last           *Summary // printed last

	n, total     int64 // values read; values between start and end
	lastProgress time.Time
	progressed   int64 // read_ at the last progress line
}

func (r *reader) reachedEnd() bool {
	for _, ts := range r.topics {
		for p, e := range ts.end {
			if ts.pos[p] < e {
				return false
			}
		}
	}
	return true
}

func (r *reader) topic(name string) *topicState {
	for _, ts := range r.topics {
		if ts.name == name {
			return ts
		}
	}
	return r.topics[0]
}

// commit stores every topic's positions as the group's offsets.
func (r *reader) commit(ctx context.Context) error {
	for _, ts := range r.topics {
		if err := commit(ctx, r.admin, r.opts.Group, ts.name, ts.info, ts.pos); err != nil {
			return err
		}
	}
	return nil
}

// read polls until the end offsets are reached (UntilEnd without Follow)
// or ctx is done; following, it prints every interval.
func (r *reader) read(ctx context.Context, cl *kgo.Client, interval time.Duration) error {
	untilEnd := r.opts.UntilEnd && !r.opts.Follow
	nextPrint := r.now().Add(interval)
	for ctx.Err() == nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if r.opts.Follow {
			pctx, cancel = context.WithDeadline(ctx, nextPrint)
		}
		fs := cl.PollFetches(pctx)
		cancel()
		for _, fe := range fs.Errors() {
			var loss *kgo.ErrDataLoss
			switch {
			case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			case errors.As(fe.Err, &loss):
				fmt.Fprintf(r.stderr, "miffy report: %v\n", loss)
			default:
				return fmt.Errorf("reading partition %d: %w", fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(rec *kgo.Record) {
			ts := r.topic(rec.Topic)
			ts.add(rec.Value)
			r.n++
			ts.pos[rec.Partition] = rec.Offset + 1
		})
		if untilEnd && r.reachedEnd() {
			return nil
		}
		r.progress(false)
		if r.opts.Follow && !r.now().Before(nextPrint) {
			if err := r.print(); err != nil {
				return err
			}
			if r.opts.Group != "" {
				if err := r.commit(ctx); err != nil && ctx.Err() == nil {
					fmt.Fprintf(r.stderr, "miffy report: %v\n", err)
				}
			}
			nextPrint = r.now().Add(interval)
		}
	}
	return nil
}

// progress writes a line with the records read, at most every second
// unless final, and only when more were read.
func (r *reader) progress(final bool) {
	t := r.now()
	if r.n == r.progressed || (!final && t.Sub(r.lastProgress) < progressEvery) {
		return
	}
	if r.lastProgress.IsZero() && !final {
		// The first second is quiet: short reports need no progress.
		r.lastProgress = t
		return
	}
	r.lastProgress, r.progressed = t, r.n
	if r.opts.UntilEnd && !r.opts.Follow && r.total > 0 {
		fmt.Fprintf(r.stderr, "miffy report: %d of %d records read\n", r.n, r.total)
		return
	}
	fmt.Fprintf(r.stderr, "miffy report: %d records read\n", r.n)
}

func (r *reader) print() error {
	s := r.agg.Summary()
	s.Topic = r.opts.Topic
	if len(r.topics) > 1 {
		s.TallyTopic = r.opts.TallyTopic
	}
	r.last = s
	var err error
	if r.opts.JSON {
		err = WriteJSON(r.stdout, s)
	} else {
		if r.opts.Follow {
			fmt.Fprintf(r.stdout, "\n--- %s\n", r.now().UTC().Format(time.RFC3339))
		}
		err = WriteText(r.stdout, s)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
