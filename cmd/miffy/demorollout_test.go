package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/board"
	"github.com/miffy-proxy/miffy/internal/rollout"
)

func TestDemoRolloutFlags(t *testing.T) {
	err := run(t.Context(), []string{"demo", "-interval", "5s"}, nil, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "-interval: only with -rollout") {
		t.Errorf("demo -interval without -rollout: %v, want a usage error", err)
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"demo", "-h"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "-rollout") {
		t.Errorf("demo -h: %v, the usage lacks -rollout:\n%s", err, out.String())
	}
}

// TestDemoRollout runs `miffy demo -rollout` as a newcomer would: the
// controller passes the shadow stage and advances (a decision record on
// the rollout topic, shown on the report page); it answers `miffy ctl
// rollout -wait` pause and resume; then the candidate is made bad through
// its switch and the rollout is rolled back to weight 0.
func TestDemoRollout(t *testing.T) {
	ports := freePorts(t, 6) // six distinct: the demo fails on a port taken twice
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	brokerAddr, refAddr, candAddr, pageAddr := addr(0), addr(1), addr(2), addr(3)
	pp, mp := ports[4], ports[5]
	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "-rollout", "-interval", "2s", "-broker", brokerAddr, "-reference", refAddr, "-candidate", candAddr, "-report", pageAddr},
			[]string{fmt.Sprintf("MIFFY_PORT=%d", pp), fmt.Sprintf("MIFFY_MANAGEMENT_PORT=%d", mp), "MIFFY_ACCESS_LOG=false"},
			stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("demo did not stop")
		}
	})
	t.Cleanup(func() {
		if t.Failed() { // what the controller decided, to tell why
			var out strings.Builder
			run(context.Background(), []string{"ctl", "rollout", "-brokers", brokerAddr, "-timeout", "5s", "status", "/api/{value}"}, nil, &out, &out)
			t.Logf("rollout status:\n%s", out.String())
		}
	})
	waitUntil(t, 20*time.Second, "the demo to start", func() bool {
		return strings.Contains(stdout.String(), "miffy demo is running") && strings.Contains(stdout.String(), "Rollout (-rollout)")
	})
	for _, want := range []string{"curl -s -X POST http://" + candAddr + "/demo/bad", "miffy ctl rollout -brokers " + brokerAddr + " status '/api/{value}'",
		"http://" + pageAddr + "/#/rollout/%2Fapi%2F%7Bvalue%7D"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the help lacks %q:\n%s", want, stdout)
		}
	}

	opts := []kgo.Opt{kgo.SeedBrokers(brokerAddr)}
	decided := func(want string) func() bool {
		return func() bool {
			hist, _, err := rollout.History(t.Context(), opts, "miffy-rollouts")
			if err != nil {
				return false
			}
			for _, e := range hist {
				if d := e.Decision; d != nil && d.Route == "/api/{value}" && d.Decision == want {
					return true
				}
			}
			return false
		}
	}
	// Shadow only until the verdict passes on the demo's own traffic, then
	// the first step.
	waitUntil(t, 40*time.Second, "an advance decision", decided(rollout.Advance))
	var ros []board.Rollout
	waitUntil(t, 10*time.Second, "the rollout on the report page", func() bool {
		_, body := get(t, "http://"+pageAddr+"/api/rollouts")
		return json.Unmarshal([]byte(body), &ros) == nil && len(ros) == 1 && ros[0].Route == "/api/{value}"
	})

	// An operator's pause and resume, answered by the demo's controller.
	for _, cmd := range []string{"pause", "resume"} {
		var out, errOut strings.Builder
		err := run(t.Context(), []string{"ctl", "rollout", "-brokers", brokerAddr, "-wait", "20s", cmd, "/api/{value}"}, nil, &out, &errOut)
		if err != nil || !strings.Contains(out.String(), "  "+cmd+" ") || !strings.Contains(out.String(), "demo-controller") {
			t.Errorf("ctl rollout -wait 20s %s: %v\n%s%s", cmd, err, out.String(), errOut.String())
		}
	}

	// The switch: half of the candidate's answers carry a wrong square.
	resp, err := http.Post("http://"+candAddr+"/demo/bad?share=0.5", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /demo/bad: %v %v", err, resp)
	}
	resp.Body.Close()
	waitUntil(t, 40*time.Second, "a rollback decision", decided(rollout.Rollback))
	hist, _, err := rollout.History(t.Context(), opts, "miffy-rollouts")
	if err != nil {
		t.Fatal(err)
	}
	var last *rollout.Decision
	for _, e := range hist {
		if e.Decision != nil {
			last = e.Decision
		}
	}
	if last.Decision != rollout.Rollback || last.Weight != 0 || !last.Paused || !strings.Contains(strings.Join(last.Reasons, "; "), "regression rate") {
		t.Errorf("last decision %+v, want a rollback to 0, paused, naming the regression rate", last)
	}
}
