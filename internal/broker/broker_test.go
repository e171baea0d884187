package broker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := Start(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// produce writes records key0..keyN-1 with the given timestamp (zero: now)
// and waits for their acknowledgement.
func produce(t *testing.T, addr, topic string, n int, ts time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "key%d", i), Value: fmt.Appendf(nil, "value%d", i), Timestamp: ts})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// consume reads n records of topic from the start.
func consume(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming: got %d of %d records: %v", len(got), n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+"="+string(r.Value)) })
	}
	return got
}

func want(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("key%d=value%d", i, i))
	}
	return out
}

func TestProduceConsume(t *testing.T) {
	b := start(t, Config{Addr: "127.0.0.1:0"})
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %s, want the bound port", b.Addr())
	}
	produce(t, b.Addr(), "demo", 100, time.Time{})
	if diff := cmp.Diff(want(100), consume(t, b.Addr(), "demo", 100)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestUnspecifiedHostIsAdvertisedAsLoopback(t *testing.T) {
	b := start(t, Config{Addr: "0.0.0.0:0"})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %s, want 127.0.0.1:port", b.Addr())
	}
	produce(t, b.Addr(), "demo", 3, time.Time{})
	if diff := cmp.Diff(want(3), consume(t, b.Addr(), "demo", 3)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b1, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	produce(t, b1.Addr(), "kept", 10, time.Time{})
	b1.Close()
	b1.Close() // twice is fine

	b2 := start(t, Config{Addr: "127.0.0.1:0", DataDir: dir})
	if diff := cmp.Diff(want(10), consume(t, b2.Addr(), "kept", 10)); diff != "" {
		t.Errorf("records after restart (-want +got):\n%s", diff)
	}
}

func TestRetention(t *testing.T) {
	b := start(t, Config{Addr: "127.0.0.1:0", Retention: time.Second})
	produce(t, b.Addr(), "old", 5, time.Now().Add(-time.Hour))

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The earliest offset moves past the expired records.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req := kmsg.NewPtrListOffsetsRequest()
		topic := kmsg.NewListOffsetsRequestTopic()
		topic.Topic = "old"
		part := kmsg.NewListOffsetsRequestTopicPartition()
		part.Timestamp = -2 // earliest
		topic.Partitions = append(topic.Partitions, part)
		req.Topics = append(req.Topics, topic)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode == 0 && p.Offset == 5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired records still there: %+v", resp.Topics[0].Partitions[0])
		}
		<-tick.C
	}
}

func TestStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{}, "addr: "},
		{"no port", Config{Addr: "127.0.0.1"}, "addr: "},
		{"bad port", Config{Addr: "127.0.0.1:x"}, "addr: "},
		{"port in use", Config{Addr: taken.Addr().String()}, "starting kfake: listen tcp " + taken.Addr().String()},
		{"negative retention", Config{Addr: "127.0.0.1:0", Retention: -time.Second}, "retention: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Start(tt.cfg, testLogger(t))
			if err == nil {
				b.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}
