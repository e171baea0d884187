package board

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/broker"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

var limits = verdict.Limits{MinCompared: 200, MaxRegressionRate: 0.001, MaxCandidateErrorRate: 0.001, MaxLatencyRatio: 1.2, Confidence: 0.95}

// fixture is a broker with the two topics, a Store following them and the
// server over it.
type fixture struct {
	addr    string
	produce func(topic string, values ...[]byte)
	st      *Store
	srv     *httptest.Server
	enc     *publish.Encoder
}

func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f := &fixture{addr: b.Addr(), st: NewStore(StoreConfig{})}
	f.produce = func(topic string, values ...[]byte) {
		t.Helper()
		var recs []*kgo.Record
		for _, v := range values {
			recs = append(recs, &kgo.Record{Topic: topic, Value: v})
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if f.enc, err = publish.NewEncoder(publish.EncoderConfig{MaxBodyBytes: 65536}); err != nil {
		t.Fatal(err)
	}
	// Both topics exist before the follower starts.
	f.produce("recs", []byte("not a record"))
	f.produce("tallies", []byte("not a tally"))
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addr())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, f.st, opts, "recs", "tallies", kgo.NewOffset().AtStart(), time.Millisecond, zerolog.Nop())
	}()
	f.srv = httptest.NewUnstartedServer(NewServer(Config{
		Topic: "recs", Client: opts, Token: token,
		Limits: func(string) verdict.Limits { return limits },
		Info:   Info{Reference: "http://ref", Candidate: "http://cand"},
	}, f.st))
	f.srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	f.srv.Start()
	t.Cleanup(func() { cancel(); f.srv.Close(); <-done })
	return f
}

// record is an encoded mismatch (or equal) record of route.
func (f *fixture) record(t *testing.T, id, route string, at time.Time, diffs ...compare.Diff) []byte {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	r := &publish.Record{
		ID: id, Time: at, Key: route, Route: route, Endpoint: route, Equal: len(diffs) == 0,
		Request:   publish.Request{Method: "GET", URI: "/x", Pattern: route, Header: http.Header{"Authorization": {"Bearer s3cret"}}},
		Reference: publish.Side{URL: "http://ref/x", Status: 200, Header: h, Body: []byte(`{"price":10,"name":"a"}`), Duration: 10 * time.Millisecond},
		Candidate: publish.Side{URL: "http://cand/x", Status: 200, Header: h, Body: []byte(`{"price":12,"name":"a"}`), Duration: 11 * time.Millisecond},
		Diffs:     diffs,
	}
	b, err := f.enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tallyOf is a tally of n compared requests on route, regressions of them
// at $.price.
func tallyOf(t *testing.T, route string, at time.Time, n, regressions int) []byte {
	t.Helper()
	c := tally.NewCollector(tally.CollectorConfig{Instance: "i1", Now: func() time.Time { return at }})
	for i := range n {
		r := &publish.Record{Route: route, Endpoint: route,
			Reference: publish.Side{Status: 200, Duration: 10 * time.Millisecond},
			Candidate: publish.Side{Status: 200, Duration: 10 * time.Millisecond}}
		if i < regressions {
			r.Diffs = []compare.Diff{{Path: "$.price", Class: compare.Regression}}
		}
		c.Compared(r)
	}
	b, err := json.Marshal(c.Flush()[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor waits until the store has read n records and tallies in all.
func (f *fixture) waitFor(t *testing.T, records, tallies int64) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		_, changed := f.st.Changed()
		f.st.mu.Lock()
		r, tl := f.st.records, f.st.tallies
		f.st.mu.Unlock()
		if r >= records && tl >= tallies {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("read %d records and %d tallies, want %d and %d", r, tl, records, tallies)
		}
	}
}

func (f *fixture) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return v
}

func TestServerAPIs(t *testing.T) {
	f := newFixture(t, "")
	now := time.Now().UTC()
	f.produce("recs",
		f.record(t, "bad-1", "/bad", now, compare.Diff{Path: "$.price", Kind: compare.Changed, Reference: 10, Candidate: 12, Class: compare.Regression}),
		f.record(t, "bad-2", "/bad", now, compare.Diff{Path: "$.price", Kind: compare.Changed, Reference: 10, Candidate: 12, Class: compare.Regression}),
	)
	f.produce("tallies", tallyOf(t, "/bad", now, 1000, 40), tallyOf(t, "/good", now, 4000, 0))
	f.waitFor(t, 2, 2)

	code, body := f.get(t, "/api/routes?range=1h")
	ov := decodeJSON[Overview](t, body)
	if code != 200 || len(ov.Routes) != 2 || ov.Verdict != verdict.Fail {
		t.Fatalf("overview %d: %s", code, body)
	}
	bad, good := ov.Routes[0], ov.Routes[1]
	if bad.Compared != 1000 || bad.Regressions != 40 || bad.Verdict != verdict.Fail || bad.Source != "tallies" ||
		good.Compared != 4000 || good.Verdict != verdict.Pass {
		t.Errorf("/bad %d %d %s %s; /good %d %s", bad.Compared, bad.Regressions, bad.Verdict, bad.Source, good.Compared, good.Verdict)
	}

	code, body = f.get(t, "/api/route?route="+url.QueryEscape("/bad"))
	d := decodeJSON[Route](t, body)
	if code != 200 || len(d.Recent) != 2 || d.Examples["$.price"].Offset == 0 || len(d.Series) == 0 || d.TopPaths[0].ExampleID == "" {
		t.Errorf("detail %d: recent %d, examples %v, series %d, paths %+v", code, len(d.Recent), d.Examples, len(d.Series), d.TopPaths)
	}

	ref := d.Examples["$.price"]
	code, body = f.get(t, fmt.Sprintf("/api/records/%d/%d", ref.Partition, ref.Offset))
	if code != 200 || !strings.Contains(body, `"id":"bad-`) || strings.Contains(body, "s3cret") {
		t.Errorf("record %d: %s", code, body)
	}
	if code, _ := f.get(t, "/api/records/0/0"); code != http.StatusUnprocessableEntity {
		t.Errorf("the non-record at offset 0: %d, want 422", code)
	}

	// Argo's web provider.
	code, body = f.get(t, "/api/verdict?route="+url.QueryEscape("/bad"))
	va := decodeJSON[VerdictAnswer](t, body)
	if code != 200 || va.Verdict != verdict.Fail || va.Figures.Compared != 1000 || !strings.Contains(va.Reasons[0], "regression rate 4 %") {
		t.Errorf("verdict %d: %s", code, body)
	}
	if code, _ := f.get(t, "/api/verdict"); code != 400 {
		t.Errorf("verdict without route: %d", code)
	}
	code, body = f.get(t, "/api/verdict?route=/nope")
	if va := decodeJSON[VerdictAnswer](t, body); code != 200 || va.Verdict != verdict.Inconclusive {
		t.Errorf("unknown route: %d %s", code, body)
	}

	// Flagger's webhook.
	flagger := func(payload string) (int, string) {
		resp, err := f.srv.Client().Post(f.srv.URL+"/gate/flagger", "application/json", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		payload string
		status  int
		want    string
	}{
		{`{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{"route":"/good"}}`, 200, "/good: pass"},
		{`{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{"route":"/bad"}}`, 412, "regression rate 4 %"},
		{`{"name":"podinfo","metadata":{"route":"/nope"}}`, 412, "inconclusive"},
		{`{"name":"podinfo","metadata":{}}`, 400, "metadata.route"},
		{`{"name":"podinfo","metadata":{"route":"/good","range":"yesterday"}}`, 400, "range"},
		{`not json`, 400, "Flagger"},
	} {
		if code, body := flagger(tt.payload); code != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("flagger %s: %d %q, want %d with %q", tt.payload, code, body, tt.status, tt.want)
		}
	}

	// Diffy's API.
	code, body = f.get(t, "/api/1/endpoints")
	eps := decodeJSON[map[string]diffyEndpoint](t, body)
	if code != 200 || eps["/bad"] != (diffyEndpoint{Total: 1000, Differences: 40}) {
		t.Errorf("endpoints %d: %s", code, body)
	}
	code, body = f.get(t, "/api/1/endpoints/"+url.PathEscape("/bad")+"/stats")
	stats := decodeJSON[struct {
		Endpoint diffyEndpoint         `json:"endpoint"`
		Fields   map[string]diffyField `json:"fields"`
	}](t, body)
	if code != 200 || stats.Endpoint.Total != 1000 || stats.Fields["$.price"].Differences != 40 || stats.Fields["$.price"].AbsoluteDifference != 4 {
		t.Errorf("stats %d: %s", code, body)
	}
	code, body = f.get(t, "/api/1/endpoints/"+url.PathEscape("/bad")+"/fields/"+url.PathEscape("$.price")+"/results")
	if code != 200 || !strings.Contains(body, `"id": "bad-2"`) || !strings.Contains(body, `"$.price"`) {
		t.Errorf("results %d: %s", code, body)
	}
	code, body = f.get(t, "/api/1/requests/bad-1")
	res := decodeJSON[map[string]any](t, body)
	if code != 200 || res["id"] != "bad-1" || res["left"] == nil || res["right"] == nil || res["request"] == nil {
		t.Errorf("request %d: %s", code, body)
	}
	if code, _ := f.get(t, "/api/1/requests/nope"); code != 404 {
		t.Errorf("unknown request: %d", code)
	}
	code, body = f.get(t, "/api/1/info")
	if code != 200 || !strings.Contains(body, `"target": "http://cand"`) {
		t.Errorf("info %d: %s", code, body)
	}

	// The page and its assets are embedded.
	for _, p := range []string{"/", "/assets/app.js", "/assets/app.css"} {
		if code, body := f.get(t, p); code != 200 || len(body) < 100 {
			t.Errorf("%s: %d, %d bytes", p, code, len(body))
		}
	}
	if code, _ := f.get(t, "/api/routes?range=yesterday"); code != 400 {
		t.Errorf("bad range: %d", code)
	}
}

func TestServerToken(t *testing.T) {
	f := newFixture(t, "t0ken")
	tests := []struct {
		name, path string
		header     []string
		want       int
	}{
		{"no token", "/api/routes", nil, 401},
		{"wrong token", "/api/routes", []string{"Authorization", "Bearer nope"}, 401},
		{"bearer", "/api/routes", []string{"Authorization", "Bearer t0ken"}, 200},
		{"cookie", "/api/verdict?route=/a", []string{"Cookie", tokenCookie + "=t0ken"}, 200},
		{"query on the API is not enough", "/api/routes?token=t0ken", nil, 401},
		{"gate without token", "/api/1/endpoints", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := f.get(t, tt.path, tt.header...); code != tt.want {
				t.Errorf("%d %s, want %d", code, body, tt.want)
			}
		})
	}
	// The page's ?token= sets the cookie the page's own requests carry.
	resp, err := f.srv.Client().Get(f.srv.URL + "/?token=t0ken")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Set-Cookie"), tokenCookie+"=t0ken") || !strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly") {
		t.Errorf("page with token: %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

// TestEventsAnnounceNewEvidence: an open event stream gets an update when a
// record arrives.
func TestEventsAnnounceNewEvidence(t *testing.T) {
	f := newFixture(t, "")
	f.waitFor(t, 0, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/events", nil)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	versions := make(chan string, 10)
	go func() {
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				versions <- v
			}
		}
		close(versions)
	}()
	first := <-versions // the state at connection
	f.produce("recs", f.record(t, "new-1", "/a", time.Now(), compare.Diff{Path: "$.x", Class: compare.Regression}))
	select {
	case v, ok := <-versions:
		if !ok || v == first {
			t.Errorf("update %q after %q", v, first)
		}
	case <-ctx.Done():
		t.Fatal("no update after a new record")
	}
}

func TestLocalOnly(t *testing.T) {
	srv := httptest.NewServer(NewServer(Config{LocalOnly: true, Limits: func(string) verdict.Limits { return limits }}, NewStore(StoreConfig{})))
	defer srv.Close()
	for host, want := range map[string]int{
		"":                  200, // the server's own 127.0.0.1:port
		"localhost:8888":    200,
		"[::1]:8888":        200,
		"evil.example:8888": http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io":  http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/routes", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
