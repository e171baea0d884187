package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/rollout"
)

// TestCtlRollout drives `miffy ctl rollout` through run() against the
// embedded broker: status of a route without records fails naming it; the
// decisions a controller wrote are printed newest last; a command lands on
// the topic keyed by route, with who sent it; a command for a route that
// is neither configured nor on the topic is refused.
func TestCtlRollout(t *testing.T) {
	b := startBroker(t)
	topic := "miffy-rollouts"
	ctl := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(t.Context(), append([]string{"ctl", "rollout", "-brokers", b.Addr()}, args...), []string{"USER=ann"}, &out, &errOut)
		return out.String() + errOut.String(), err
	}

	out, err := ctl("status", "shop")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), `no rollout records for route "shop" on topic "miffy-rollouts"`) {
		t.Errorf("status with no records: %v (exit %d) %s", err, exitCode(err), out)
	}

	// What a controller writes: the shadow stage passed, then step 1.
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, d := range []rollout.Decision{
		{Route: "shop", Step: 0, Weight: 0, Decision: rollout.Hold, Reasons: []string{"compared 12 < min_compared 200"}, Controller: "c1", Time: t0},
		{Route: "shop", Step: 1, Weight: 1, Decision: rollout.Advance, Reasons: []string{"shadow verdict pass", "compared 412"}, Controller: "c1", Time: t0.Add(time.Minute)},
		{Route: "cart", Step: 1, Weight: 5, Decision: rollout.Advance, Controller: "c1", Time: t0},
	} {
		v, _ := d.Encode()
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte(d.Route), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	out, err = ctl("status", "shop")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "step 1, weight 1%, active, last decision advance") ||
		!strings.HasPrefix(lines[1], "TIME") || !strings.Contains(lines[2], "hold") || !strings.Contains(lines[2], "compared 12 < min_compared 200") ||
		!strings.Contains(lines[3], "2026-03-04T10:01:00Z  1     1%      advance   c1          shadow verdict pass; compared 412") {
		t.Errorf("status, newest last:\n%s", out)
	}
	if strings.Contains(out, "cart") {
		t.Errorf("status of shop shows cart:\n%s", out)
	}

	// A command, then status shows it with its sender, and -json reads.
	out, err = ctl("pause", "shop")
	if err != nil || !strings.Contains(out, `pause sent for route "shop"`) {
		t.Fatalf("pause: %v %s", err, out)
	}
	hist, _, err := rollout.History(t.Context(), []kgo.Opt{kgo.SeedBrokers(b.Addr())}, topic)
	if err != nil || len(hist) != 4 || hist[3].Command == nil {
		t.Fatalf("history after pause: %v %+v", err, hist)
	}
	host, _ := os.Hostname()
	if c := hist[3].Command; c.Route != "shop" || c.Command != "pause" || c.By != "ann@"+host || time.Since(c.Time) > time.Minute {
		t.Errorf("command %+v", c)
	}
	out, err = ctl("-json", "-last", "2", "status", "shop")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct{ Kind, Decision, Command string }
		if json.Unmarshal([]byte(l), &v) != nil {
			t.Fatalf("status -json: not JSON: %q", l)
		}
		got = append(got, v.Kind+" "+v.Decision+v.Command)
	}
	if diff := cmp.Diff([]string{rollout.KindDecision + " advance", rollout.KindCommand + " pause"}, got); err != nil || diff != "" {
		t.Errorf("status -json -last 2: %v (-want +got):\n%s", err, diff)
	}

	// ctl's flags for one instance are refused before "rollout".
	if err := run(t.Context(), []string{"ctl", "-fleet", "rollout", "status", "shop"}, nil, io.Discard, io.Discard); exitCode(err) != 2 || !strings.Contains(err.Error(), "-fleet: not for ctl rollout") {
		t.Errorf("ctl -fleet rollout: %v, want a usage error naming -fleet", err)
	}

	// Flags after the command and route read the same.
	if after, err := ctl("status", "shop", "-json", "-last", "2"); err != nil || after != out {
		t.Errorf("status shop -json -last 2: %v\n%s\nwant\n%s", err, after, out)
	}

	// Refused: a route with no records that the config does not name; a
	// misspelt route's status lists the ones there are.
	if out, err := ctl("abort", "shopp"); exitCode(err) != 1 || !strings.Contains(err.Error(), "routes with records: cart, shop") {
		t.Errorf("abort of an unknown route: %v %s", err, out)
	}
	// A route with a rollout in the config takes a command before any
	// decision; ctl's own -config before "rollout" is used.
	cfgPath := filepath.Join(t.TempDir(), "miffy.toml")
	os.WriteFile(cfgPath, []byte(`reference = "http://127.0.0.1:1"
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
[control]
topic = "miffy-control"
[[routes]]
path = "/new/{*rest}"
name = "new"
mode = "canary"
shadow = true
[routes.rollout]
steps = [50, 100]
`), 0o600)
	var cmdOut strings.Builder
	if err := run(t.Context(), []string{"ctl", "-config", cfgPath, "rollout", "resume", "new"}, nil, &cmdOut, &cmdOut); err != nil {
		t.Errorf("resume of a configured route: %v %s", err, cmdOut.String())
	}

	// -wait with no controller to answer: exit 1, saying so.
	if out, err := ctl("-wait", "300ms", "promote", "shop"); exitCode(err) != 1 || !strings.Contains(err.Error(), "no answer from a rollout controller within -wait 300ms") {
		t.Errorf("promote -wait with no controller: %v %s", err, out)
	}

	// A deposed controller's late decision (a lower lease generation) is
	// left out, as the controllers leave it out.
	for _, d := range []rollout.Decision{
		{Route: "fenced", Step: 1, Weight: 10, Decision: rollout.Hold, Controller: "c2", Generation: 2, Time: t0},
		{Route: "fenced", Step: 2, Weight: 50, Decision: rollout.Advance, Controller: "c1", Generation: 1, Time: t0.Add(time.Second)},
	} {
		v, _ := d.Encode()
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte(d.Route), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := ctl("status", "fenced"); err != nil || !strings.Contains(out, "step 1, weight 10%") || strings.Contains(out, "c1") {
		t.Errorf("status with a deposed controller's decision: %v\n%s", err, out)
	}

	// Usage: -h on stdout, exit 0; a bad command or arity exits 2.
	var help strings.Builder
	if err := run(t.Context(), []string{"ctl", "rollout", "-h"}, nil, &help, &help); err != nil ||
		!strings.Contains(help.String(), "Usage: miffy ctl rollout") || !strings.Contains(help.String(), "promote ROUTE") {
		t.Errorf("ctl rollout -h: %v %s", err, help.String())
	}
	for _, args := range [][]string{{"rewind", "shop"}, {"pause"}, {"pause", "a", "b"}} {
		if out, err := ctl(args...); exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error (exit 2)\n%s", args, err, out)
		}
	}
}
