package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// named answers its name, and counts what it served.
type named struct {
	*httptest.Server
	hits atomic.Int64
}

func namedUpstream(t *testing.T, name string) *named {
	t.Helper()
	n := &named{}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"served_by":%q}`, name)
	}))
	t.Cleanup(n.Close)
	return n
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestReloadUnderTraffic changes the config file while clients keep
// sending: no request fails, the new destination gets traffic (about
// 100ms after the write, as the watcher waits that long for writes to
// settle; logged, not asserted: a loaded machine is slower), and an
// invalid file is rejected while the old routing serves on.
func TestReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	a, bb := namedUpstream(t, "a"), namedUpstream(t, "b")
	cand := namedUpstream(t, "cand")
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	ports := freePorts(t, 2)
	pp, mp := ports[0], ports[1]
	write := func(ref string, extra string) {
		text := fmt.Sprintf("port = %d\nmanagement_port = %d\naccess_log = false\nreference = %q\ncandidate = %q\n%s\n[kafka]\n\"bootstrap.servers\" = %q\n",
			pp, mp, ref, cand.URL, extra, b.Addr())
		// Write beside and rename, as config managers do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(a.URL, `routes = [{ path = "/api/{v}" }]`)
	in := startMiffyFile(t, path, pp, mp)

	var failed, sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(in.proxy + "/api/1")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "traffic to a", func() bool { return a.hits.Load() > 50 })

	write(bb.URL, `routes = [{ path = "/api/{v}" }]`)
	took := waitFor(t, 5*time.Second, "traffic to b after the reload", func() bool { return bb.hits.Load() > 0 })
	t.Logf("new destination got traffic %v after the file changed", took)

	write(bb.URL, `routes = [{ path = "/api/{v}" }, { path = "/api/{w}" }]`) // conflicting routes: invalid
	waitFor(t, 5*time.Second, "the invalid config to be rejected", func() bool {
		_, m := get(t, in.mgmt+"/metrics")
		return strings.Contains(m, `miffy_config_reloads_total{result="rejected"} 1`)
	})
	before := bb.hits.Load()
	waitFor(t, 5*time.Second, "b to keep serving", func() bool { return bb.hits.Load() > before+50 })

	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d client requests failed during reloads", n, sent.Load())
	}
}

func adminCall(t *testing.T, in *instance, token, body string) (int, string) {
	t.Helper()
	method := "GET"
	if body != "" {
		method = "POST"
	}
	req, _ := http.NewRequest(method, in.mgmt+"/admin/routes", bytes.NewReader([]byte(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func servedBy(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ServedBy string `json:"served_by"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	return v.ServedBy
}

// TestAdminAPI: without the token 401; with it the weight takes effect, an
// upstream can be replaced, and shadowing paused.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand, other := namedUpstream(t, "ref"), namedUpstream(t, "cand"), namedUpstream(t, "other")
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [
  { path = "/c/{id}", name = "checkout", mode = "canary", weight = 0 },
  { path = "/s/{id}", name = "search" },
]
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	in := startMiffy(t, config, "MIFFY_ADMIN_TOKEN=s3cret")

	if code, _ := adminCall(t, in, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := adminCall(t, in, "wrong", `{"route":"checkout","weight":100}`); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if got := servedBy(t, in.proxy+"/c/1"); got != "ref" {
		t.Fatalf("weight 0 served by %q", got)
	}
	code, body := adminCall(t, in, "s3cret", `{"route":"checkout","weight":100}`)
	if code != 200 || !strings.Contains(body, `"weight": 100`) {
		t.Fatalf("set weight: %d %s", code, body)
	}
	for range 5 {
		if got := servedBy(t, in.proxy+"/c/1"); got != "cand" {
			t.Fatalf("weight 100 served by %q", got)
		}
	}
	if code, body := adminCall(t, in, "s3cret", `{"route":"search","weight":5}`); code != 400 {
		t.Errorf("weight on a shadow route: %d %s, want 400", code, body)
	}
	if code, _ := adminCall(t, in, "s3cret", `{"route":"nope","weight":5}`); code != 404 {
		t.Errorf("unknown route: %d, want 404", code)
	}
	if code, body := adminCall(t, in, "s3cret", `{"route":"search","reference":"`+other.URL+`"}`); code != 200 {
		t.Fatalf("set reference: %d %s", code, body)
	}
	if got := servedBy(t, in.proxy+"/s/1"); got != "other" {
		t.Errorf("after the upstream change served by %q", got)
	}
	// The weight survives the table rebuild that the upstream change made.
	if got := servedBy(t, in.proxy+"/c/1"); got != "cand" {
		t.Errorf("weight lost in a rebuild: served by %q", got)
	}
	// The replay of /s/1 runs in the background: let it finish before
	// counting what the candidate gets while paused.
	waitUntil(t, 5*time.Second, "the replay of /s/1", func() bool {
		return metricTotal(scrapeMetrics(t, in), "miffy_replays_total", `route="search"`) >= 1
	})
	if code, _ := adminCall(t, in, "s3cret", `{"route":"search","paused":true}`); code != 200 {
		t.Fatal("pause failed")
	}
	candBefore := cand.hits.Load()
	get(t, in.proxy+"/s/2")
	_, list := adminCall(t, in, "s3cret", "")
	if !strings.Contains(list, `"paused": true`) || !strings.Contains(list, `"skipped": 1`) {
		t.Errorf("route list (want search paused, its paused request counted as skipped): %s", list)
	}
	_, metrics := get(t, in.mgmt+"/metrics")
	if !strings.Contains(metrics, `miffy_shadow_skipped_total{reason="paused",route="search"} 1`) {
		t.Errorf("paused request not counted as skipped")
	}
	if cand.hits.Load() != candBefore {
		t.Errorf("a paused route was replayed")
	}
	if !strings.Contains(metrics, `miffy_control_changes_total{result="applied",source="admin"} 3`) {
		t.Errorf("admin changes not counted: %s", grepLines(metrics, "miffy_control_changes_total"))
	}
	if !strings.Contains(in.stderr.String(), "127.0.0.1") {
		t.Errorf("changes not logged with the remote address")
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFleetControl: two instances follow one control topic; `miffy ctl
// -fleet` changes a weight and both apply it.
func TestFleetControl(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := namedUpstream(t, "ref"), namedUpstream(t, "cand")
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [{ path = "/c/{id}", name = "checkout", mode = "canary", weight = 0 }]
[control]
topic = "miffy-control"
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	cfgPath := filepath.Join(t.TempDir(), "ctl.toml")
	writeFile(cfgPath, fmt.Sprintf("[control]\ntopic = \"miffy-control\"\n[kafka]\n\"bootstrap.servers\" = %q\n", b.Addr()))
	// The first write creates the topic; the instances start after it, as
	// in a fleet that has been running. (An instance that finds no topic
	// looks for it less and less often, up to every 5s: a wait that proves
	// nothing here.)
	if err := run(t.Context(), []string{"ctl", "-config", cfgPath, "-fleet", "set-weight", "checkout", "0"}, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("ctl -fleet: %v", err)
	}
	one := startMiffy(t, config)
	two := startMiffy(t, config)
	for _, in := range []*instance{one, two} {
		waitFor(t, 10*time.Second, "control topic read", func() bool {
			code, _ := get(t, in.mgmt+"/readyz")
			return code == 200
		})
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"ctl", "-config", cfgPath, "-fleet", "set-weight", "checkout", "100"}, nil, &out, io.Discard); err != nil {
		t.Fatalf("ctl -fleet: %v", err)
	}
	for i, in := range []*instance{one, two} {
		took := waitFor(t, 10*time.Second, fmt.Sprintf("instance %d to apply the weight", i+1), func() bool {
			return servedBy(t, in.proxy+"/c/1") == "cand"
		})
		t.Logf("instance %d applied the fleet weight after %v", i+1, took)
	}
}

// TestControlTopicUnreadableIsSafe: with the control topic out of reach at
// start, canary routes serve at weight 0 and /readyz says why.
func TestControlTopicUnreadableIsSafe(t *testing.T) {
	t.Parallel()
	ref, cand := namedUpstream(t, "ref"), namedUpstream(t, "cand")
	config := `
port = %[1]d
management_port = %[2]d
# the broker is down: the last tallies are not waited for
shutdown_timeout = "200ms"
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [{ path = "/c/{id}", name = "checkout", mode = "canary", weight = 100 }]
[control]
topic = "miffy-control"
[kafka]
"bootstrap.servers" = "127.0.0.1:` + fmt.Sprint(freePort(t)) + `"
require_broker = false
`
	in := startMiffy(t, config)
	for range 5 {
		if got := servedBy(t, in.proxy+"/c/1"); got != "ref" {
			t.Fatalf("served by %q while the control topic is unread; want the reference", got)
		}
	}
	code, body := get(t, in.mgmt+"/readyz")
	if code != 503 || !strings.Contains(body, "control") {
		t.Errorf("readyz %d %s", code, body)
	}
	_, metrics := get(t, in.mgmt+"/metrics")
	if !strings.Contains(metrics, "miffy_control_topic_synced 0") {
		t.Errorf("metrics lack miffy_control_topic_synced 0")
	}
}

// TestControlTopicLost: an instance that has read the control topic and
// then loses the broker keeps the weight it read and stays ready; /readyz
// shows the control check degraded with the error, and the metrics count
// the failed reads.
func TestControlTopicLost(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := namedUpstream(t, "ref"), namedUpstream(t, "cand")
	// The weight is on the topic before the instance starts: it reads it
	// at start.
	ctlPath := filepath.Join(t.TempDir(), "ctl.toml")
	writeFile(ctlPath, fmt.Sprintf("[control]\ntopic = \"miffy-control\"\n[kafka]\n\"bootstrap.servers\" = %q\n", b.Addr()))
	if err := run(t.Context(), []string{"ctl", "-config", ctlPath, "-fleet", "set-weight", "checkout", "100"}, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("ctl -fleet: %v", err)
	}
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
# the broker is gone at the end: the last tallies are not waited for
shutdown_timeout = "200ms"
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [{ path = "/c/{id}", name = "checkout", mode = "canary", weight = 0 }]
[control]
topic = "miffy-control"
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
require_broker = false
`
	in := startMiffy(t, config)
	waitFor(t, 10*time.Second, "the control topic read", func() bool {
		code, body := get(t, in.mgmt+"/readyz")
		return code == 200 && strings.Contains(body, `"control":"ok"`)
	})
	waitFor(t, 5*time.Second, "the fleet weight applied", func() bool { return servedBy(t, in.proxy+"/c/1") == "cand" })

	b.Close()
	var body string
	waitFor(t, 15*time.Second, "/readyz to show the control topic lost", func() bool {
		var code int
		code, body = get(t, in.mgmt+"/readyz")
		if code != 200 {
			t.Fatalf("readyz with the control topic lost after it was read: %d %s, want 200", code, body)
		}
		return strings.Contains(body, `"control":"degraded: `)
	})
	if !strings.Contains(body, "keeping the state last read at") {
		t.Errorf("readyz body does not say the state is kept: %s", body)
	}
	metrics := scrapeMetrics(t, in)
	if v, ok := metricSample(metrics, "miffy_control_topic_errors_total"); !ok || v < 1 {
		t.Errorf("miffy_control_topic_errors_total = %v (present %v), want at least 1", v, ok)
	}
	if v, ok := metricSample(metrics, "miffy_control_topic_last_success_timestamp_seconds"); !ok || v <= 0 {
		t.Errorf("miffy_control_topic_last_success_timestamp_seconds = %v (present %v), want a time", v, ok)
	}
	for range 5 {
		if got := servedBy(t, in.proxy+"/c/1"); got != "cand" {
			t.Fatalf("served by %q with the control topic lost; want the candidate (the last known weight 100)", got)
		}
	}
}

// TestCtlErrors: without a token ctl says so before calling anything, and
// against a miffy whose admin API is off it says that, not "404".
func TestCtlErrors(t *testing.T) {
	off := httptest.NewServer(http.NotFoundHandler()) // a management port without /admin/
	t.Cleanup(off.Close)
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no such route: \"nope\""}`)
	}))
	t.Cleanup(admin.Close)
	t.Chdir(t.TempDir()) // no ./config.toml
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string
		usage   bool
	}{
		{"no token", []string{"ctl", "-mgmt", off.URL, "routes"}, nil, "MIFFY_ADMIN_TOKEN", true},
		{"admin API off", []string{"ctl", "-mgmt", off.URL, "routes"}, []string{"MIFFY_ADMIN_TOKEN=t"}, "is off", false},
		{"unknown route", []string{"ctl", "-mgmt", admin.URL, "-token", "t", "pause", "nope"}, nil, "no such route", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, tt.environ, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (exitCode(err) == 2) != tt.usage {
				t.Errorf("ctl = %v (exit %d), want an error with %q", err, exitCode(err), tt.want)
			}
		})
	}
}
