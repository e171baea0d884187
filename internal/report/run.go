package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Options say what Run reads and how it prints.
type Options struct {
	// Topic to read. Required.
	Topic string
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
	// two progress lines. If zero, 5s.
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
	if opts.Topic == "" {
		return errors.New("topic: must not be empty")
	}
	interval := cmp.Or(opts.Interval, 5*time.Second)
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	admin, err := kgo.NewClient(opts.Client...)
	if err != nil {
		return fmt.Errorf("making the Kafka client: %w", err)
	}
	defer admin.Close()
	info, start, end, err := positions(ctx, admin, opts)
	if err != nil {
		return err
	}

	r := &reader{
		opts: opts, stdout: stdout, stderr: stderr, now: now,
		admin: admin, info: info,
		agg: NewAggregator(opts.Aggregate),
		pos: start, end: end,
	}
	for _, p := range info.partitions {
		r.total += max(0, end[p]-start[p])
	}
	if !opts.Follow && opts.UntilEnd && r.reachedEnd() {
		return r.print()
	}

	parts := make(map[int32]kgo.Offset, len(start))
	for p, o := range start {
		parts[p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(opts.Client,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: parts}),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("making the Kafka consumer: %w", err)
	}
	defer cl.Close()

	readErr := r.read(ctx, cl, interval)
	if readErr == nil && ctx.Err() != nil && !opts.Follow && opts.UntilEnd {
		fmt.Fprintf(stderr, "miffy report: interrupted before the end of the topic; %d of %d records read\n", r.n, r.total)
	}
	r.progress(true)
	if err := r.print(); err != nil {
		return err
	}
	if opts.Group != "" {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := commit(cctx, admin, opts.Group, opts.Topic, info, r.pos); err != nil {
			return errors.Join(readErr, err)
		}
	}
	return readErr
}

// positions learns the topic's partitions, where to start reading each and
// where each ends now.
func positions(ctx context.Context, cl *kgo.Client, opts Options) (info topicInfo, start, end map[int32]int64, err error) {
	if info, err = describe(ctx, cl, opts.Topic); err != nil {
		return info, nil, nil, err
	}
	if end, err = listOffsets(ctx, cl, opts.Topic, info.partitions, latestOffset); err != nil {
		return info, nil, nil, err
	}
	switch opts.From.kind {
	case fromStart:
		start, err = listOffsets(ctx, cl, opts.Topic, info.partitions, earliestOffset)
	case fromEnd:
		start = make(map[int32]int64, len(end))
		for p, o := range end {
			start[p] = o
		}
	case fromTime:
		start, err = listOffsets(ctx, cl, opts.Topic, info.partitions, opts.From.at.UnixMilli())
		for p, o := range start {
			if o < 0 { // nothing written since: start at the end
				start[p] = end[p]
			}
		}
	}
	if err != nil {
		return info, nil, nil, err
	}
	if opts.Group != "" {
		committed, err := committedOffsets(ctx, cl, opts.Group, opts.Topic, info.partitions)
		if err != nil {
			return info, nil, nil, err
		}
		for p, o := range committed {
			start[p] = o
		}
	}
	return info, start, end, nil
}

// reader consumes records into the aggregator and prints.
type reader struct {
	opts           Options
	stdout, stderr io.Writer
	now            func() time.Time
	agg            *Aggregator
	admin          *kgo.Client // for commits
	info           topicInfo

	pos, end     map[int32]int64 // next offset to read, end offset at the start
	n, total     int64           // records read; records between start and end
	lastProgress time.Time
	progressed   int64 // read_ at the last progress line
}

func (r *reader) reachedEnd() bool {
	for p, e := range r.end {
		if r.pos[p] < e {
			return false
		}
	}
	return true
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
			r.agg.Add(rec.Value)
			r.n++
			r.pos[rec.Partition] = rec.Offset + 1
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
				if err := commit(ctx, r.admin, r.opts.Group, r.opts.Topic, r.info, r.pos); err != nil && ctx.Err() == nil {
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
