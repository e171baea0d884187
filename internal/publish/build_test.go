package publish

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// recorder is a Sink that keeps what it is given.
type recorder struct{ got []*Record }

func (r *recorder) Publish(rec *Record) bool { r.got = append(r.got, rec); return true }

// TestOutletPolicy: the console and the tallies see every compared
// request; the sink those the route's publish mode lets through.
func TestOutletPolicy(t *testing.T) {
	diff := []compare.Diff{{Path: "$.a", Kind: compare.Changed, Class: compare.Regression}}
	noise := []compare.Diff{{Path: "$.t", Kind: compare.Changed, Class: compare.Noise}}
	tests := []struct {
		name     string
		mode     Mode
		noise    bool // PublishNoise
		diffs    []compare.Diff
		allNoise bool
		want     bool
	}{
		{"mismatches/equal", ModeMismatches, false, nil, false, false},
		{"mismatches/regression", ModeMismatches, false, diff, false, true},
		{"mismatches/noise", ModeMismatches, false, noise, true, false},
		{"mismatches/noise published", ModeMismatches, true, noise, true, true},
		{"zero is mismatches", "", false, diff, false, true},
		{"zero/equal", "", false, nil, false, false},
		{"all/equal", ModeAll, false, nil, false, true},
		{"all/noise", ModeAll, false, noise, true, false},
		{"all/noise published", ModeAll, true, noise, true, true},
		{"none/regression", ModeNone, true, diff, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, console := &recorder{}, &recorder{}
			compared := 0
			o := &Outlet{Sink: sink, Console: console, Compared: func(*Record) { compared++ }}
			o.Publish(&Comparison{ID: "x", Diffs: tt.diffs, AllNoise: tt.allNoise, Mode: tt.mode, PublishNoise: tt.noise})
			if got := len(sink.got) == 1; got != tt.want {
				t.Errorf("published = %v, want %v", got, tt.want)
			}
			if len(console.got) != 1 || compared != 1 {
				t.Errorf("console saw %d, tallies %d; want 1 each", len(console.got), compared)
			}
		})
	}
}

// TestComparisonRecord: the record carries the comparison's data as it is.
func TestComparisonRecord(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failed := errors.New("refused")
	c := &Comparison{
		ID: "id", Time: at, Key: "7", Route: "r", Pattern: "/api/{v}", Endpoint: "e",
		Method: "POST", URI: "/api/7?q=1", Params: map[string]string{"v": "7"},
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`),
		Reference: Answer{URL: "http://ref/api/7", Status: 200, Body: []byte("a"), Duration: time.Millisecond},
		Candidate: Answer{URL: "http://cand/api/7", Err: failed, Truncated: true},
		Secondary: &Answer{URL: "http://sec/api/7", Status: 201},
		Diffs:     []compare.Diff{{Path: "error", Class: compare.Regression}},
	}
	want := &Record{
		ID: "id", Time: at, Key: "7", Route: "r", Endpoint: "e", Equal: false,
		Request: Request{
			Method: "POST", URI: "/api/7?q=1", Pattern: "/api/{v}", Params: map[string]string{"v": "7"},
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`), BodyContentType: "application/json",
		},
		Reference: Side{URL: "http://ref/api/7", Status: 200, Body: []byte("a"), Duration: time.Millisecond},
		Candidate: Side{URL: "http://cand/api/7", Err: failed, Truncated: true},
		Secondary: &Side{URL: "http://sec/api/7", Status: 201},
		Diffs:     []compare.Diff{{Path: "error", Class: compare.Regression}},
	}
	if diff := cmp.Diff(want, c.Record(), cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}
