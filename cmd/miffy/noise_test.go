package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestNoiseCancellationWithSecondary: three real upstreams. The reference
// and the secondary disagree on a timestamp (noise); the candidate also
// changes a price (a regression). The record carries both classes.
func TestNoiseCancellationWithSecondary(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	var clock atomic.Int64
	upstream := func(price int) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"generated_at":%d,"price":%d,"items":[{"id":1},{"id":2}]}`, clock.Add(1), price)
		}))
		t.Cleanup(s.Close)
		return s
	}
	ref, sec, cand := upstream(10), upstream(10), upstream(12)
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
secondary = "` + sec.URL + `"
routes = [{ path = "/prices/{id}", key = "id" }]

[publish]
console = true

[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	in := startMiffy(t, config)
	get(t, in.proxy+"/prices/1")

	rec := consume(t, b.Addr(), "miffy", 1)[0]
	var v struct {
		Secondary *struct {
			URL string `json:"url"`
		} `json:"secondary"`
		Differences []struct {
			Path  string `json:"path"`
			Class string `json:"class"`
		} `json:"differences"`
	}
	if err := json.Unmarshal(rec.Value, &v); err != nil {
		t.Fatal(err)
	}
	classes := map[string]string{}
	for _, d := range v.Differences {
		classes[d.Path] = d.Class
	}
	if classes["$.generated_at"] != "noise" || classes["$.price"] != "regression" || len(classes) != 2 {
		t.Errorf("differences %+v, want $.generated_at noise and $.price regression", v.Differences)
	}
	if v.Secondary == nil || !strings.HasPrefix(v.Secondary.URL, sec.URL) {
		t.Errorf("record lacks the secondary side: %s", rec.Value)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	// [publish] console = true: the exercise's lines on standard output.
	out := in.stdout.String()
	for _, want := range []string{"REQUEST ", "RESPONSE ", " reference => (200", " secondary => (200", " candidate => (200"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
}

// TestAllNoiseIsNotPublished: when every difference is noise the record is
// counted but not published (publish_noise = false).
func TestAllNoiseIsNotPublished(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	var clock atomic.Int64
	upstream := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ts":%d,"price":%q}`, clock.Add(1), r.URL.Path)
		}))
		t.Cleanup(s.Close)
		return s
	}
	ref, sec, cand := upstream(), upstream(), upstream()
	config := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
secondary = "` + sec.URL + `"
routes = [{ path = "/p/{id}" }, { path = "/q/{id}", publish_noise = true }]

[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	in := startMiffy(t, config)
	get(t, in.proxy+"/p/1")
	get(t, in.proxy+"/q/1")
	recs := consume(t, b.Addr(), "miffy", 1)
	if got := string(recs[0].Key); got != "/q/{id}" {
		t.Errorf("published record keyed %q, want only the publish_noise route's", got)
	}
	if err := in.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := countRecords(t, b.Addr(), "miffy"); n != 1 {
		t.Errorf("topic holds %d records, want 1", n)
	}
}

// TestCanonicalResourceEndpoint: the noise statistics of a request are
// kept for its route's name, or for its Canonical-Resource header when it
// has one (Diffy's convention); the record names the endpoint used.
func TestCanonicalResourceEndpoint(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := differingUpstreams(t, 0, 0)
	in := startMiffy(t, `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "`+ref+`"
candidate = "`+cand+`"
routes = [{ path = "/things/{id}", key = "id", name = "things" }]
[kafka]
"bootstrap.servers" = "`+b.Addr()+`"
`)
	get(t, in.proxy+"/things/1")
	get(t, in.proxy+"/things/2", "Canonical-Resource", "thing-detail")
	want := map[string]string{"1": "things", "2": "thing-detail"}
	for _, r := range consume(t, b.Addr(), "miffy", 2) {
		var v struct{ Route, Endpoint string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if k := string(r.Key); v.Endpoint != want[k] || v.Route != "things" {
			t.Errorf("record %s: route %q, endpoint %q; want route things, endpoint %q", k, v.Route, v.Endpoint, want[k])
		}
	}
}
