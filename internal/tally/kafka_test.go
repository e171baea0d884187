package tally

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
)

func counts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "miffy_tally_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestKafkaDeliversAtClose: the last interval's tallies are published at
// Close and counted as delivered; a record of each reaches the topic.
func TestKafkaDeliversAtClose(t *testing.T) {
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := NewCollector(CollectorConfig{Instance: "i1"})
	c.Compared(rec("/a", 1, 1))
	c.Compared(rec("/b", 1, 1))
	reg := prometheus.NewRegistry()
	k, err := NewKafka(KafkaConfig{Topic: "tallies", Client: []kgo.Opt{kgo.SeedBrokers(b.Addr())}, Interval: time.Hour}, c, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, reg); got["accepted"] != 2 || got["delivered"] != 2 || got["dropped"] != 0 || got["failed"] != 0 {
		t.Errorf("counts %v, want 2 accepted and delivered", got)
	}
	if err := k.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := testutil.CollectAndCount(reg, "miffy_tally_records_total"); n != 4 {
		t.Errorf("%d series, want 4 results", n)
	}
}

// TestKafkaBoundAndBrokerDown: past the buffer bound tallies are dropped;
// what cannot be delivered by Close's deadline is failed and reported.
func TestKafkaBoundAndBrokerDown(t *testing.T) {
	c := NewCollector(CollectorConfig{Instance: "i1"})
	for _, r := range []string{"/a", "/b", "/c"} {
		c.Compared(rec(r, 1, 1))
	}
	reg := prometheus.NewRegistry()
	k, err := NewKafka(KafkaConfig{Topic: "tallies", Client: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, Interval: time.Hour}, c, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	k.maxBuffered = 1 // MaxBufferedTallies, lowered
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := k.Close(ctx); err == nil {
		t.Error("Close reported no loss with the broker down")
	}
	if got := counts(t, reg); got["accepted"] != 1 || got["dropped"] != 2 || got["failed"] != 1 || got["delivered"] != 0 {
		t.Errorf("counts %v, want 1 accepted and failed, 2 dropped", got)
	}
}
