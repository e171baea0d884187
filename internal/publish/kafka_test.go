package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/compare"
)

const testTopic = "miffy-test"

// startKfake starts a one-broker kfake cluster on port (0: any free port)
// that creates topics (one partition: one order) on first use, and keeps its
// data in dataDir if not empty.
func startKfake(t *testing.T, port int, dataDir string) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.Ports(port), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// freePort returns a TCP port nothing listens on (for now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newTestKafka makes a publisher for addr with its own registry.
func newTestKafka(t *testing.T, addr string, cfg KafkaConfig) *Kafka {
	t.Helper()
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Topic = testTopic
	// [kafka]'s bounds where a test leaves them out: NewKafka takes no
	// defaults.
	if cfg.MaxBufferedRecords == 0 {
		cfg.MaxBufferedRecords = 100_000
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = 128 << 20
	}
	cfg.Properties = map[string]string{"bootstrap.servers": addr, "linger.ms": "1", "retry.backoff.ms": "50"}
	k, err := NewKafka(cfg, enc, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		k.Close(ctx)
	})
	return k
}

// record returns a small record with the given id, keyed by it.
func record(id string) *Record {
	r := testRecord()
	r.ID, r.Key = id, "key-"+id
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// published is what the test reads back of one Kafka record.
type published struct {
	Key, ID string
}

// consumeUntil reads the topic from the start until a record with the key
// last arrives (one partition, so everything before it is there too).
func consumeUntil(t *testing.T, addr, last string) []published {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(testTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []published
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming: %v; got %d records", err, len(got))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				ID            string `json:"id"`
				SchemaVersion int    `json:"schema_version"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil || v.SchemaVersion != 1 {
				t.Errorf("record value %q: %v", r.Value, err)
			}
			got = append(got, published{Key: string(r.Key), ID: v.ID})
			done = done || string(r.Key) == last
		})
		if done {
			return got
		}
	}
}

// expected returns the records with ids prefix0..prefixN-1 as read back.
func expected(prefix string, n int) []published {
	var out []published
	for i := range n {
		id := prefix + strconv.Itoa(i)
		out = append(out, published{Key: "key-" + id, ID: id})
	}
	return out
}

func publishN(t *testing.T, k *Kafka, prefix string, n int) {
	t.Helper()
	for i := range n {
		if !k.Publish(record(prefix + strconv.Itoa(i))) {
			t.Fatalf("Publish %s%d dropped", prefix, i)
		}
	}
}

func TestKafkaPublishConsume(t *testing.T) {
	c := startKfake(t, 0, "")
	addr := c.ListenAddrs()[0]
	k := newTestKafka(t, addr, KafkaConfig{})
	const n = 200
	publishN(t, k, "r", n)
	waitFor(t, "delivery", func() bool { return testutil.ToFloat64(k.m.delivered) == n })

	if diff := cmp.Diff(expected("r", n), consumeUntil(t, addr, "key-r199")); diff != "" {
		t.Errorf("records in the topic (-want +got):\n%s", diff)
	}
	if err := k.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	got := map[string]float64{
		"accepted":  testutil.ToFloat64(k.m.accepted),
		"delivered": testutil.ToFloat64(k.m.delivered),
		"dropped":   testutil.ToFloat64(k.m.dropped),
		"failed":    testutil.ToFloat64(k.m.failed),
	}
	if diff := cmp.Diff(map[string]float64{"accepted": n, "delivered": n, "dropped": 0, "failed": 0}, got); diff != "" {
		t.Errorf("miffy_publish_records_total (-want +got):\n%s", diff)
	}
	if k.records.Load() != 0 || k.bytes.Load() != 0 {
		t.Errorf("still buffered after delivery: %d records, %d bytes", k.records.Load(), k.bytes.Load())
	}
}

func TestKafkaCloseFlushes(t *testing.T) {
	c := startKfake(t, 0, "")
	addr := c.ListenAddrs()[0]
	k := newTestKafka(t, addr, KafkaConfig{})
	const n = 500
	publishN(t, k, "c", n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := k.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := testutil.ToFloat64(k.m.delivered); got != n {
		t.Errorf("delivered = %v, want %d", got, n)
	}
	if diff := cmp.Diff(expected("c", n), consumeUntil(t, addr, "key-c499")); diff != "" {
		t.Errorf("records in the topic (-want +got):\n%s", diff)
	}
	if k.Publish(record("late")) {
		t.Error("Publish after Close accepted a record")
	}
}

func TestKafkaBufferBound(t *testing.T) {
	size := func() int64 {
		enc, _ := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
		b, err := enc.Encode(nil, record("b00"))
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(b) + len("key-b00"))
	}()
	tests := []struct {
		name        string
		cfg         KafkaConfig
		wantEntered int
	}{
		{"by records", KafkaConfig{MaxBufferedRecords: 10}, 10},
		{"by bytes", KafkaConfig{MaxBufferedBytes: 7*size + size/2}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens: the client keeps every record buffered.
			k := newTestKafka(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), tt.cfg)
			const n = 25
			entered := 0
			for i := range n {
				start := time.Now()
				if k.Publish(record(fmt.Sprintf("b%02d", i))) {
					entered++
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("Publish blocked for %s", d)
				}
			}
			if entered != tt.wantEntered {
				t.Errorf("accepted %d records, want %d", entered, tt.wantEntered)
			}
			if got, want := testutil.ToFloat64(k.m.dropped), float64(n-tt.wantEntered); got != want {
				t.Errorf("dropped = %v, want %v", got, want)
			}
			if got := k.records.Load(); got != int64(tt.wantEntered) {
				t.Errorf("buffered records = %d, want %d", got, tt.wantEntered)
			}
			if err := k.Ping(context.Background()); err == nil {
				t.Error("Ping succeeded with no broker")
			}

			// Close gives up what it cannot deliver, and says so.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := k.Close(ctx); err == nil {
				t.Error("Close reported no lost records")
			}
			if got := testutil.ToFloat64(k.m.failed); got != float64(tt.wantEntered) {
				t.Errorf("failed = %v, want %d", got, tt.wantEntered)
			}
			if k.records.Load() != 0 || k.bytes.Load() != 0 {
				t.Errorf("still buffered after Close: %d records, %d bytes", k.records.Load(), k.bytes.Load())
			}
		})
	}
}

// TestKafkaOutage stops the broker, publishes while it is down, restarts it
// on the same port and data directory (a broker restart: same topic, same
// topic ID, the records from before kept) and checks that every record
// arrives exactly once: the ones buffered during the outage, and none of the
// ones sent before it twice.
func TestKafkaOutage(t *testing.T) {
	port, dataDir := freePort(t), t.TempDir()
	c1 := startKfake(t, port, dataDir)
	addr := c1.ListenAddrs()[0]
	k := newTestKafka(t, addr, KafkaConfig{MaxBufferedRecords: 1000})

	publishN(t, k, "before", 10)
	waitFor(t, "delivery before the outage", func() bool { return testutil.ToFloat64(k.m.delivered) == 10 })

	c1.Close()
	if err := k.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with the broker down")
	}
	const down = 50
	for i := range down {
		start := time.Now()
		if !k.Publish(record("down" + strconv.Itoa(i))) {
			t.Fatalf("Publish down%d dropped", i)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Publish blocked for %s", d)
		}
	}
	if got := testutil.ToFloat64(k.m.delivered); got != 10 {
		t.Fatalf("delivered with the broker down = %v, want 10", got)
	}

	startKfake(t, port, dataDir)
	waitFor(t, "delivery after recovery", func() bool { return testutil.ToFloat64(k.m.delivered) == 10+down })
	publishN(t, k, "after", 1)

	got := consumeUntil(t, addr, "key-after0")
	want := append(append(expected("before", 10), expected("down", down)...), expected("after", 1)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records in the topic (-want +got):\n%s", diff)
	}
	if n := testutil.ToFloat64(k.m.failed) + testutil.ToFloat64(k.m.dropped); n != 0 {
		t.Errorf("failed+dropped = %v, want 0", n)
	}
}

func TestKafkaEncodeError(t *testing.T) {
	k := newTestKafka(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), KafkaConfig{})
	r := record("bad")
	r.Diffs = []compare.Diff{{Path: "$.x", Kind: compare.Changed, Reference: math.Inf(1)}}
	if k.Publish(r) {
		t.Error("Publish accepted a record it cannot encode")
	}
	if got := testutil.ToFloat64(k.m.encodeErrors); got != 1 {
		t.Errorf("encode errors = %v, want 1", got)
	}
	if got := testutil.ToFloat64(k.m.accepted); got != 0 {
		t.Errorf("accepted = %v, want 0", got)
	}
}
