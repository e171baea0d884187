package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/rollout"
)

// shopUpstream answers {"item":N,"price":10}; bad, it answers price 11 on
// every third item: a field regressed on a share of requests.
func shopUpstream(t *testing.T, bad *atomic.Bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/shop/"))
		price := 10
		if bad != nil && bad.Load() && n%3 == 0 {
			price = 11
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"item":%d,"price":%d}`, n, price)
	}))
	t.Cleanup(s.Close)
	return s
}

// startController runs `miffy rollout` on a config file until the test
// ends; it returns the management URL.
func startRolloutController(t *testing.T, path, id string) string {
	t.Helper()
	mp := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stderr := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"rollout", "-config", path}, []string{"MIFFY_MANAGEMENT__PORT=" + strconv.Itoa(mp), "MIFFY_ROLLOUT__CONTROLLER_ID=" + id}, &syncBuffer{}, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("miffy rollout: %v\n%s", err, stderr)
			}
		case <-time.After(20 * time.Second):
			t.Error("miffy rollout did not return within 20s")
		}
	})
	mgmt := "http://127.0.0.1:" + strconv.Itoa(mp)
	waitFor(t, 20*time.Second, "controller ready", func() bool {
		select {
		case err := <-done:
			t.Fatalf("miffy rollout returned: %v\n%s", err, stderr)
		default:
		}
		resp, err := http.Get(mgmt + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return mgmt
}

// TestRolloutThroughMiffy: two miffy instances serve a canary route under
// live traffic; two controllers run. A good candidate goes from shadow to
// 100 % a stage at a time (one controller deciding), the instances serving
// it as the steps say; started again, the candidate regresses a field on a
// share of requests at the first step and is rolled back to 0 %, where it
// stays.
func TestRolloutThroughMiffy(t *testing.T) {
	b := startBroker(t)
	bad := &atomic.Bool{}
	ref, cand := shopUpstream(t, nil), shopUpstream(t, bad)
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addr())}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// The instances find the control topic at start (a missing one is
	// looked for again only every few seconds).
	compact := "compact"
	if _, err := kadm.NewClient(adm).CreateTopic(t.Context(), 1, -1, map[string]*string{"cleanup.policy": &compact}, "miffy-control"); err != nil {
		t.Fatal(err)
	}
	common := `
access_log = false
log_level = "warn"
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
[[routes]]
path = "/shop/{id}"
name = "shop"
mode = "canary"
shadow = true
[routes.rollout]
steps = [10, 50, 100]
interval = "500ms"
max_inconclusive = "1m"
[control]
topic = "miffy-control"
[report]
tally_interval = "100ms"
[verdict]
min_compared = 30
max_regression_rate = 0.05
max_candidate_error_rate = 0.05
max_latency_ratio = 10
[rollout]
evaluate_every = "100ms"
lease_timeout = "6s"
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	instances := []*instance{startMiffy(t, "port = %[1]d\nmanagement_port = %[2]d\n"+common), startMiffy(t, "port = %[1]d\nmanagement_port = %[2]d\n"+common)}
	for _, in := range instances {
		waitFor(t, 10*time.Second, "control topic read", func() bool { code, _ := get(t, in.mgmt+"/readyz"); return code == 200 })
	}
	// Live traffic through both instances; each answer's side is noted.
	var mu sync.Mutex
	servedBy := map[string]int{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, in := range instances {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				resp, err := http.Get(fmt.Sprintf("%s/shop/%d", in.proxy, i))
				if err != nil {
					continue
				}
				resp.Body.Close()
				mu.Lock()
				servedBy[resp.Header.Get("X-Miffy-Served-By")]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // a steady rate, not a load test
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	// window counts the sides of the next n answers.
	window := func(n int) (ref, cand int) {
		mu.Lock()
		clear(servedBy)
		mu.Unlock()
		waitFor(t, 10*time.Second, fmt.Sprintf("%d answers", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			ref, cand = servedBy["reference"], servedBy["candidate"]
			return ref+cand >= n
		})
		return ref, cand
	}

	path := filepath.Join(t.TempDir(), "rollout.toml")
	if err := writeFile(path, common); err != nil {
		t.Fatal(err)
	}
	mgmts := []string{startRolloutController(t, path, "ctl-1"), startRolloutController(t, path, "ctl-2")}

	history := func() []rollout.Decision {
		vals, _, err := rollout.History(t.Context(), opts, "miffy-rollouts")
		if err != nil {
			t.Fatal(err)
		}
		var out []rollout.Decision
		for _, v := range vals {
			if v.Decision != nil {
				out = append(out, *v.Decision)
			}
		}
		return out
	}
	last := func() rollout.Decision {
		h := history()
		if len(h) == 0 {
			return rollout.Decision{}
		}
		return h[len(h)-1]
	}
	waitFor(t, 30*time.Second, "promoted", func() bool { return last().Decision == rollout.Promote })
	t.Logf("shadow -> 10 -> 50 -> 100 %% in %v", last().Time.Sub(history()[0].Time))
	var moves []string
	actors := map[string]bool{}
	for _, d := range history() {
		actors[d.Controller] = true
		if d.Decision != rollout.Hold {
			moves = append(moves, fmt.Sprintf("%s %d %v", d.Decision, d.Step, d.Weight))
		}
	}
	if want := []string{"advance 1 10", "advance 2 50", "promote 3 100"}; !slices.Equal(moves, want) {
		t.Errorf("decisions %v, want %v", moves, want)
	}
	if len(actors) != 1 {
		t.Errorf("decisions by %v; want one controller", actors)
	}
	leaders := 0.0
	for _, m := range mgmts {
		_, text := get(t, m+"/metrics")
		v, _ := metricSample(text, "miffy_rollout_leader")
		leaders += v
		if step, ok := metricSample(text, `miffy_rollout_step{route="shop"}`); !ok || step != 3 {
			t.Errorf("%s: miffy_rollout_step %v (%v), want 3", m, step, ok)
		}
	}
	if leaders != 1 {
		t.Errorf("miffy_rollout_leader sums to %v over the controllers, want 1", leaders)
	}
	waitFor(t, 10*time.Second, "100 answers in a row from the candidate", func() bool { r, _ := window(100); return r == 0 })

	// Again, with a candidate that turns bad at the first step.
	if err := rollout.Send(t.Context(), opts, "miffy-rollouts", rollout.Command{Route: "shop", Command: rollout.Resume, By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "stage 1 again", func() bool { d := last(); return d.Step == 1 && d.Decision == rollout.Advance })
	bad.Store(true)
	turned := time.Now()
	waitFor(t, 30*time.Second, "rollback", func() bool { return last().Decision == rollout.Rollback })
	t.Logf("rolled back %v after the candidate turned bad", time.Since(turned))
	d := last()
	if d.Weight != 0 || !d.Paused || !strings.Contains(strings.Join(d.Reasons, "\n"), "regression rate") {
		t.Errorf("rollback %+v: want weight 0, paused, the regression rate among the reasons", d)
	}
	waitFor(t, 10*time.Second, "100 answers in a row from the reference", func() bool { _, c := window(100); return c == 0 })
	// It stays there: while 1000 more answers come (evaluations go on
	// every 100ms), nothing is decided and the candidate serves none.
	n := len(history())
	if _, c := window(1000); c != 0 {
		t.Errorf("the candidate served %d of 1000 answers after the rollback", c)
	}
	if h := history(); len(h) != n {
		t.Errorf("decisions after the rollback: %+v", h[n:])
	}
}
