package control

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
	"github.com/miffy-proxy/miffy/internal/mgmt"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func routeWeight(t *testing.T, p *shadow.Proxy, name string) float64 {
	t.Helper()
	for _, r := range p.Table().Routes() {
		if r.Name == name && r.Canary != nil {
			return r.Canary.Weight()
		}
	}
	t.Fatalf("no canary route %q", name)
	return 0
}

func startBroker(t *testing.T, addr string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: addr}, zerolog.Nop())
	if err != nil {
		t.Fatalf("starting a broker on %s: %v", addr, err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestFollowerLosesTopic: a follower that has read the control topic and
// then loses its broker keeps the state it read; /readyz stays 200 and
// shows the control check "degraded" with the error, the errors counter
// grows and the last-success time stops. With a broker back on the same
// address the check is "ok" again, and the state is still the one read.
func TestFollowerLosesTopic(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	addr := b.Addr()
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	if err := PublishDesired(t.Context(), opts, "ctl", "shop", &Desired{Weight: ptr(50.0)}); err != nil {
		t.Fatal(err)
	}

	fx := newFixture(t)
	reg := prometheus.NewRegistry()
	fol, err := follow(fx.m, FollowConfig{Topic: "ctl"}, opts, zerolog.Nop(), reg, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fol.Close)
	mg := mgmt.New(mgmt.Config{CheckInterval: -1}, reg)
	mg.AddCheck("control", fol.Ready)
	srv := httptest.NewServer(mg)
	t.Cleanup(srv.Close)
	readyz := func() (int, string) { return get(t, srv.URL+"/readyz") }

	eventually(t, 10*time.Second, "the control topic read", func() bool { return fol.Ready(t.Context()) == nil })
	if w := routeWeight(t, fx.proxy, "shop"); w != 50 {
		t.Fatalf("weight %v after reading the topic, want 50", w)
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, `"control":"ok"`) {
		t.Fatalf("readyz while following: %d %s", code, body)
	}
	if got := testutil.ToFloat64(fol.lastOK); got <= 0 {
		t.Errorf("miffy_control_topic_last_success_timestamp_seconds = %v after a read, want a time", got)
	}
	errsBefore := testutil.ToFloat64(fol.errs)

	b.Close()
	var body string
	eventually(t, 10*time.Second, "/readyz to show the control topic lost", func() bool {
		var code int
		code, body = readyz()
		if code != 200 {
			t.Fatalf("readyz with the topic lost after it was read: %d %s, want 200 (degraded, not failed)", code, body)
		}
		return strings.Contains(body, `"control":"degraded: `)
	})
	for _, want := range []string{`"ready":true`, `control topic \"ctl\"`, "keeping the state last read at", "retrying"} {
		if !strings.Contains(body, want) {
			t.Errorf("readyz body lacks %s: %s", want, body)
		}
	}
	lostAt := testutil.ToFloat64(fol.lastOK)
	eventually(t, 10*time.Second, "more failed checks counted", func() bool {
		return testutil.ToFloat64(fol.errs) >= errsBefore+3
	})
	if got := testutil.ToFloat64(fol.lastOK); got != lostAt {
		t.Errorf("last success moved from %v to %v with the broker down", lostAt, got)
	}
	if w := routeWeight(t, fx.proxy, "shop"); w != 50 {
		t.Errorf("weight %v with the topic lost, want the last known 50", w)
	}
	_, metrics := get(t, srv.URL+"/metrics")
	for _, name := range []string{"miffy_control_topic_errors_total ", "miffy_control_topic_last_success_timestamp_seconds "} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	startBroker(t, addr) // empty: the state read before stays
	eventually(t, 10*time.Second, "/readyz to show the control topic back", func() bool {
		code, body := readyz()
		return code == 200 && strings.Contains(body, `"control":"ok"`)
	})
	if got := testutil.ToFloat64(fol.lastOK); got <= lostAt {
		t.Errorf("last success %v not after %v once the broker is back", got, lostAt)
	}
	if w := routeWeight(t, fx.proxy, "shop"); w != 50 {
		t.Errorf("weight %v after the broker came back, want 50", w)
	}
}

// TestFollowerNotRead: until the topic has been read, Ready fails (it is
// not a mere warning) and names the topic.
func TestFollowerNotRead(t *testing.T) {
	fx := newFixture(t)
	// Nothing listens there: the port of a broker just closed.
	b := startBroker(t, "127.0.0.1:0")
	addr := b.Addr()
	b.Close()
	fol, err := follow(fx.m, FollowConfig{Topic: "ctl"}, []kgo.Opt{kgo.SeedBrokers(addr)}, zerolog.Nop(), prometheus.NewRegistry(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fol.Close)
	eventually(t, 10*time.Second, "a failed read counted", func() bool { return testutil.ToFloat64(fol.errs) >= 1 })
	err = fol.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), `control topic "ctl"`) || !strings.Contains(err.Error(), "weight 0") {
		t.Fatalf("Ready = %v, want an error naming the topic and the safe state", err)
	}
	var d interface{ Degraded() bool }
	if errors.As(err, &d) && d.Degraded() {
		t.Errorf("Ready before the first read is only degraded: %v", err)
	}
	if w := routeWeight(t, fx.proxy, "shop"); w != 0 {
		t.Errorf("weight %v before the topic is read, want 0", w)
	}
}

// TestFollowerStaleAfter: with stale_after, a follower that loses the
// topic keeps the last known weight for that long, then serves canary
// routes at weight 0 (Ready says why, degraded); once the topic is read
// again the weight it holds is back.
func TestFollowerStaleAfter(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	addr := b.Addr()
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	if err := PublishDesired(t.Context(), opts, "ctl", "shop", &Desired{Weight: ptr(50.0)}); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t)
	fol, err := follow(fx.m, FollowConfig{Topic: "ctl", StaleAfter: 300 * time.Millisecond}, opts, zerolog.Nop(), prometheus.NewRegistry(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fol.Close)
	eventually(t, 10*time.Second, "the control topic read", func() bool { return fol.Ready(t.Context()) == nil })
	if w := routeWeight(t, fx.proxy, "shop"); w != 50 {
		t.Fatalf("weight %v after reading the topic, want 50", w)
	}

	b.Close()
	eventually(t, 10*time.Second, "the weight back to 0", func() bool { return routeWeight(t, fx.proxy, "shop") == 0 })
	// stale_after counts from the last successful read or check (however
	// late a loaded machine ran it), never less.
	fol.mu.Lock()
	okAt := fol.okAt
	fol.mu.Unlock()
	if held := time.Since(okAt); held < 300*time.Millisecond {
		t.Errorf("weight 0 %v after the last read, before stale_after (300ms)", held)
	}
	err = fol.Ready(t.Context())
	var d interface{ Degraded() bool }
	if err == nil || !strings.Contains(err.Error(), "stale_after") || !strings.Contains(err.Error(), "weight 0") || !errors.As(err, &d) || !d.Degraded() {
		t.Errorf("Ready = %v, want a degraded error naming stale_after and weight 0", err)
	}
	if got := testutil.ToFloat64(fx.m.synced); got != 0 {
		t.Errorf("miffy_control_topic_synced = %v while stale, want 0", got)
	}

	startBroker(t, addr) // empty: the state read before is the topic's
	eventually(t, 10*time.Second, "the topic's weight back", func() bool { return routeWeight(t, fx.proxy, "shop") == 50 })
	if err := fol.Ready(t.Context()); err != nil {
		t.Errorf("Ready = %v once the topic is read again", err)
	}
}
