package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
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

// rolloutHistory reads the decisions on the rollout topic.
func rolloutHistory(t *testing.T, opts []kgo.Opt) []rollout.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vals, _, err := rollout.History(ctx, opts, "miffy-rollouts")
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

// rolloutFixture starts kfake (group sessions as short as the tests'
// leases), the control topic (so that instances find it at start: a
// missing one is looked for again only every few seconds) and the
// upstreams (the candidate turns bad with bad); it returns the config that
// instances and controllers share, and the client options.
func rolloutFixture(t *testing.T, bad *atomic.Bool, interval, lease string) (common string, opts []kgo.Opt) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	opts = []kgo.Opt{kgo.SeedBrokers(addr)}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	compact := "compact"
	if _, err := kadm.NewClient(adm).CreateTopic(t.Context(), 1, -1, map[string]*string{"cleanup.policy": &compact}, "miffy-control"); err != nil {
		t.Fatal(err)
	}
	ref, cand := shopUpstream(t, nil), shopUpstream(t, bad)
	return `
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
interval = "` + interval + `"
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
lease_timeout = "` + lease + `"
[kafka]
"bootstrap.servers" = "` + addr + `"
`, opts
}

// TestRolloutThroughMiffy: two miffy instances serve a canary route under
// live traffic; two controllers run. A good candidate goes from shadow to
// 100 % a stage at a time (one controller deciding), the instances serving
// it as the steps say; started again, the candidate regresses a field on a
// share of requests at the first step and is rolled back to 0 %, where it
// stays.
func TestRolloutThroughMiffy(t *testing.T) {
	bad := &atomic.Bool{}
	common, opts := rolloutFixture(t, bad, "500ms", "6s")
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

	history := func() []rollout.Decision { return rolloutHistory(t, opts) }
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

// TestRolloutChild is `miffy rollout` in a child process of
// TestRolloutControllerKilled; it does nothing in a normal run.
func TestRolloutChild(t *testing.T) {
	path := os.Getenv("ROLLOUT_CHILD_CONFIG")
	if path == "" {
		t.Skip("only as TestRolloutControllerKilled's child")
	}
	var environ []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MIFFY_") {
			environ = append(environ, kv)
		}
	}
	if err := run(context.Background(), []string{"rollout", "-config", path}, environ, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// TestRolloutControllerKilled: the acting controller, a process of its own,
// is killed (SIGKILL: it leaves no group) mid-rollout; the other takes over
// within the lease timeout and goes on from the same stage, no stage
// skipped or repeated.
func TestRolloutControllerKilled(t *testing.T) {
	common, opts := rolloutFixture(t, nil, "1s", "2s")
	in := startMiffy(t, "port = %[1]d\nmanagement_port = %[2]d\n"+common)
	waitFor(t, 10*time.Second, "control topic read", func() bool { code, _ := get(t, in.mgmt+"/readyz"); return code == 200 })
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if resp, err := http.Get(fmt.Sprintf("%s/shop/%d", in.proxy, i)); err == nil {
				resp.Body.Close()
			}
			time.Sleep(time.Millisecond) // a steady rate, not a load test
		}
	})
	defer func() { stop(); wg.Wait() }()

	path := filepath.Join(t.TempDir(), "rollout.toml")
	if err := writeFile(path, common); err != nil {
		t.Fatal(err)
	}
	mp := freePort(t)
	child := exec.Command(os.Args[0], "-test.run=^TestRolloutChild$")
	child.Env = append(os.Environ(), "ROLLOUT_CHILD_CONFIG="+path, "MIFFY_MANAGEMENT__PORT="+strconv.Itoa(mp), "MIFFY_ROLLOUT__CONTROLLER_ID=doomed")
	out := &syncBuffer{}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	childMgmt := "http://127.0.0.1:" + strconv.Itoa(mp)
	leader := func(mgmt string) bool {
		resp, err := http.Get(mgmt + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		v, _ := metricSample(string(b), "miffy_rollout_leader")
		return v == 1
	}
	waitFor(t, 20*time.Second, "the child controller leads", func() bool { return leader(childMgmt) })
	survivor := startRolloutController(t, path, "survivor")

	history := func() []rollout.Decision { return rolloutHistory(t, opts) }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("child:\n%s\nhistory: %+v", out, history())
		}
	})
	waitFor(t, 20*time.Second, "stage 1 by the child", func() bool {
		h := history()
		return len(h) > 0 && h[len(h)-1].Step == 1 && h[len(h)-1].Controller == "doomed"
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	took := waitFor(t, 10*time.Second, "the survivor leads", func() bool { return leader(survivor) })
	t.Logf("the survivor took the lease %v after the kill (lease_timeout 2s)", took)
	if took > 4*time.Second {
		t.Errorf("takeover took %v; want about lease_timeout (2s)", took)
	}
	waitFor(t, 20*time.Second, "promoted", func() bool {
		h := history()
		return h[len(h)-1].Decision == rollout.Promote
	})
	var moves []string
	for _, d := range history() {
		if d.Decision != rollout.Hold {
			moves = append(moves, fmt.Sprintf("%s %d by %s", d.Decision, d.Step, d.Controller))
		}
		if d.Controller == "doomed" && d.Time.After(killed) {
			t.Errorf("a decision by the killed controller after its death: %+v", d)
		}
	}
	want := []string{"advance 1 by doomed", "advance 2 by survivor", "promote 3 by survivor"}
	if !slices.Equal(moves, want) {
		t.Errorf("decisions %v, want %v", moves, want)
	}
}
