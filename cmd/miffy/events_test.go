package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miffy-proxy/miffy/internal/canary"
)

// TestCanaryEvents: with [canary] events, each request on a canary route
// leaves one JSON line naming the side that served it and its correlation
// id, which the upstream got as X-Request-Id (the client's, else a new one).
func TestCanaryEvents(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]string{} // side -> X-Request-Id it got
	side := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = r.Header.Get("X-Request-Id")
			mu.Unlock()
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+side("reference")+`"
candidate = "`+side("candidate")+`"
routes = [{ path = "/shop/{*rest}", name = "shop", mode = "canary", weight = 50 }]
[kafka]
"bootstrap.servers" = "`+brokerAddr(t)+`"
require_broker = false
[canary]
events = "`+events+`"
`)
	if code, body := get(t, in.proxy+"/shop/a", "X-Canary", "true", "X-Request-Id", "client-id-1"); code != 200 || body != "candidate" {
		t.Fatalf("forced to the candidate: %d %q", code, body)
	}
	if code, body := get(t, in.proxy+"/shop/b", "X-Canary", "false"); code != 200 || body != "reference" {
		t.Fatalf("forced to the reference: %d %q", code, body)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if seen["candidate"] != "client-id-1" {
		t.Errorf("the candidate got X-Request-Id %q, want the client's", seen["candidate"])
	}
	if seen["reference"] == "" {
		t.Errorf("the reference got no X-Request-Id where the client sent none")
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []canary.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e canary.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(got), got)
	}
	for i, want := range []struct {
		side, id string
		canary   bool
	}{{"candidate", "client-id-1", true}, {"reference", seen["reference"], false}} {
		e := got[i]
		if e.Route != "shop" || e.Side != want.side || e.Canary != want.canary || e.CorrelationID != want.id ||
			e.Status != 200 || e.Rule != canary.RuleOverride || e.DurationMS <= 0 || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want route shop, side %s, correlation id %q, status 200, rule override", i, e, want.side, want.id)
		}
	}
	if strings.Contains(in.stdout.String(), "correlation_id") {
		t.Errorf("events went to stdout too")
	}
}
