package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// upstreams: a reference and a candidate that differ on /api/2 (a field),
// fail on /api/3 (candidate refuses: connection closed) and agree elsewhere.
func demoUpstreams(t *testing.T) (ref, cand *httptest.Server) {
	t.Helper()
	ref = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=ref-secret")
		fmt.Fprintf(w, `{"path":%q,"role":%q,"price":10}`, r.URL.Path, r.Header.Get("X-Shadow-Test-Role"))
	}))
	cand = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/3" {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return
		}
		price := 10
		if r.URL.Path == "/api/2" || r.URL.Path == "/orders/7/items" {
			price = 12
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{ "price": %d.0, "role":"reference", "path":%q}`, price, r.URL.Path)
	}))
	t.Cleanup(ref.Close)
	t.Cleanup(cand.Close)
	return ref, cand
}

// TestEndToEndOriginalConfig drives run() with a config in miffy 1.0's
// format (management_port, logging, [kafka] "bootstrap.servers" overridden
// by a KAFKA_ variable, routes with and without key) against real upstreams
// and the embedded broker, then reads the records back with franz-go.
func TestEndToEndOriginalConfig(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := demoUpstreams(t)
	config := `
port = %[1]d
management_port = %[2]d
logging = "json"
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [
  { path = "/api/{value}", key = "value" },
  { path = "/orders/{id}/items" },
  { path = "/static/{*rest}", key = "static-files" },
]

[kafka]
topic = "shadow-diffs"
"bootstrap.servers" = "127.0.0.1:1"
`
	in := startMiffy(t, config, "KAFKA_BOOTSTRAP_SERVERS="+b.Addr(), "MIFFY_ACCESS_LOG=false")

	start := time.Now()
	code, body := get(t, in.proxy+"/api/1")
	if code != 200 || !strings.Contains(body, `"role":"reference"`) {
		t.Fatalf("/api/1: %d %s", code, body)
	}
	get(t, in.proxy+"/api/2?q=1", "Authorization", "Bearer top-secret", "Cookie", "c=secret", "X-Trace", "t1")
	get(t, in.proxy+"/api/3")
	get(t, in.proxy+"/orders/7/items")
	get(t, in.proxy+"/static/a.css") // candidate differs in field order only: equal
	code, body = get(t, in.proxy+"/not/routed")
	if code != 200 || !strings.Contains(body, `"role":"upstream"`) {
		t.Fatalf("unrouted: %d %s", code, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("six requests took %v", took)
	}

	recs := consume(t, b.Addr(), "shadow-diffs", 3)
	byKey := map[string]map[string]any{}
	for _, r := range recs {
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, r.Value)
		}
		byKey[string(r.Key)] = v
	}
	if len(byKey) != 3 {
		t.Fatalf("record keys %v, want 2, 3 and /orders/{id}/items", keys(byKey))
	}

	// /api/2: a changed price, the key is the parameter's value.
	r2 := byKey["2"]
	if r2 == nil {
		t.Fatalf("no record keyed 2; keys %v", keys(byKey))
	}
	req := r2["request"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"value": "2"}, req["params"]); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if req["method"] != "GET" || req["uri"] != "/api/2?q=1" || req["route"] != "/api/{value}" {
		t.Errorf("request: %v", req)
	}
	hdr := req["headers"].(map[string]any)
	if hdr["authorization"] != "[REDACTED]" || hdr["cookie"] != "[REDACTED]" || hdr["x-trace"] != "t1" {
		t.Errorf("request headers not redacted as expected: %v", hdr)
	}
	refSide := r2["reference"].(map[string]any)
	if refSide["url"] != ref.URL+"/api/2?q=1" {
		t.Errorf("reference url %v", refSide["url"])
	}
	refResp := refSide["response"].(map[string]any)
	if refResp["status"] != float64(200) || refResp["headers"].(map[string]any)["set-cookie"] != "[REDACTED]" {
		t.Errorf("reference response: %v", refResp)
	}
	if bodyType := refResp["body"].(map[string]any)["type"]; bodyType != "json" {
		t.Errorf("reference body type %v", bodyType)
	}
	diffs := r2["differences"].([]any)
	if len(diffs) != 1 || diffs[0].(map[string]any)["path"] != "$.price" {
		t.Errorf("differences: %v", diffs)
	}
	for _, f := range []string{"schema_version", "id", "timestamp"} {
		if r2[f] == nil {
			t.Errorf("record lacks %s", f)
		}
	}
	if _, ok := r2["candidate"].(map[string]any)["duration_ms"].(float64); !ok {
		t.Errorf("candidate lacks duration_ms: %v", r2["candidate"])
	}

	// /api/3: the candidate failed; the record says so.
	r3 := byKey["3"]["candidate"].(map[string]any)
	if r3["response"].(map[string]any)["error"] == nil || r3["error_kind"] == nil {
		t.Errorf("candidate error not marked: %v", r3)
	}
	// A route without key is keyed by its pattern.
	if byKey["/orders/{id}/items"] == nil {
		t.Errorf("no record keyed by the pattern")
	}

	// The failure and the mismatches show in the metrics.
	_, metrics := get(t, in.mgmt+"/metrics")
	for _, want := range []string{
		`miffy_mismatches_total{class="regression",route="/api/{value}"} 2`,
		`miffy_upstream_errors_total{kind="reset",route="/api/{value}",side="candidate"} 1`,
		`miffy_publish_records_total{result="delivered"} 3`,
		`miffy_requests_total{route="unrouted"} 1`,
		// The Go runtime's scheduler and GC histograms, for a latency tail.
		`# TYPE go_sched_latencies_seconds histogram`,
		`# TYPE go_gc_pauses_seconds histogram`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	code, body = get(t, in.mgmt+"/readyz")
	if code != 200 {
		t.Errorf("readyz %d %s", code, body)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("run returned %v", err)
	}
	// logging = "json": every log line is JSON.
	for _, line := range strings.Split(strings.TrimSpace(in.stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
			break
		}
	}
}

func keys(m map[string]map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestBadConfigFailsAtStart: run returns an error naming the key, before
// listening on anything.
func TestBadConfigFailsAtStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, config, want string
		env                []string
	}{
		{"unknown key", "prot = 8080\n", `"prot"`, nil},
		{"bad url", "candidate = \"htp:/x\"\n", "candidate", nil},
		{"duplicate route", "routes = [{ path = \"/a/{x}\" }, { path = \"/a/{y}\" }]\n", "routes[1]", nil},
		{"kafka property", "[kafka]\n\"fetch.wait.max.ms\" = \"5\"\n", `"fetch.wait.max.ms"`, nil},
		{"bad jq", "routes = [{ path = \"/a\", canonicalize = \".[\" }]\n", "routes[0].canonicalize", nil},
		{"env", "", "MIFFY_SHADOW__TIMEOUT", []string{"MIFFY_SHADOW__TIMEOUT=soon"}},
		{"bad KAFKA_ property", "", `KAFKA_ACKS: kafka."acks": want all, 1 or 0, got "x"`, []string{"KAFKA_ACKS=x"}},
		{"bad MIFFY_KAFKA__ property", "", `MIFFY_KAFKA__ACKS: kafka."acks"`, []string{"MIFFY_KAFKA__ACKS=x"}},
		{"bad KAFKA_ alias", "", `KAFKA_SASL_MECHANISMS: kafka."sasl.mechanism"`, []string{"KAFKA_SASL_MECHANISMS=MD5"}},
		{"bad property in the file", "[kafka]\nacks = \"x\"\n", `kafka."acks": want all`, nil},
		{"unsupported KAFKA_ property", "", `KAFKA_MESSAGE_TIMEOUT_MS: kafka."message.timeout.ms": not supported by miffy`, []string{"KAFKA_MESSAGE_TIMEOUT_MS=5000"}},
		{"fractional integer", "[shadow]\nmax_in_flight = 1.5\n", "shadow.max_in_flight: 1.5 is not a whole number", nil},
		{"typo with a hint", "[kafka]\n\"bootstrap.server\" = \"a:1\"\n", `did you mean "bootstrap.servers"?`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/config.toml"
			if err := writeFile(path, tt.config); err != nil {
				t.Fatal(err)
			}
			err := run(t.Context(), []string{"-config", path}, tt.env, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestCheckConfigMasksSecrets(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/config.toml"
	writeFile(path, "[kafka]\n\"security.protocol\" = \"sasl_plaintext\"\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.username\" = \"miffy\"\n")
	var out strings.Builder
	err := run(t.Context(), []string{"check-config", path}, []string{"KAFKA_SASL_PASSWORD=hunter2"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "sasl.username") {
		t.Errorf("check-config output:\n%s", out.String())
	}
}

// TestCheckConfigWarns: check-config accepts a config that is probably a
// mistake, and says why in comment lines naming the key.
func TestCheckConfigWarns(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/config.toml"
	writeFile(path, "[shadow]\ntimeout = \"2s\"\n")
	var out strings.Builder
	if err := run(t.Context(), []string{"check-config", path}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# warning: routes: none configured", `# warning: reference: "http://127.0.0.1:3000" is the demo's default`, "# config OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(t.Context(), []string{"version"}, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "miffy ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := run(t.Context(), []string{"frobnicate"}, nil, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("unknown command: %v", err)
	}
	out.Reset()
	if err := run(t.Context(), []string{"--version"}, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "miffy ") {
		t.Errorf("--version: %v %q", err, out.String())
	}
	// -h and --help on every command: the usage on stdout, exit 0.
	for _, args := range [][]string{
		{"demo", "-h"}, {"demo", "--help"}, {"ctl", "-h"}, {"ctl", "--help"}, {"report", "-h"}, {"report", "-help"},
		{"check-config", "-h"}, {"check-config", "--help"}, {"-config", "x.toml", "-h"}, {"serve", "--help"},
	} {
		out.Reset()
		var errOut strings.Builder
		err := run(t.Context(), args, nil, &out, &errOut)
		if err != nil || !strings.Contains(out.String(), "Usage") || errOut.Len() > 0 {
			t.Errorf("%v: run = %v, stdout %q, stderr %q; want the usage on stdout and no error", args, err, out.String(), errOut.String())
		}
	}
	if err := run(t.Context(), []string{"demo", "-nope"}, nil, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("demo -nope: %v, want a usage error (exit 2)", err)
	}
	for _, arg := range []string{"help", "-h", "-help", "--help"} {
		out.Reset()
		if err := run(t.Context(), []string{arg}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "miffy check-config") {
			t.Errorf("%s: %v %q, want the usage of every command", arg, err, out.String())
		}
	}
}

// TestStartWarns: serve logs the config's warnings at start, naming the key.
func TestStartWarns(t *testing.T) {
	t.Parallel()
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
reference = "`+jsonServer(t, `{"a":1}`)+`"
[kafka]
require_broker = false
`)
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(in.stderr.String(), "config: routes: none configured") {
		t.Errorf("no warning about the missing routes in the log:\n%s", in.stderr)
	}
	if strings.Contains(in.stderr.String(), "reference: ") {
		t.Errorf("a warning about the reference, which is set:\n%s", in.stderr)
	}
}
