package report

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/tally"
)

// encoder renders records exactly as miffy publishes them.
func encoder(t *testing.T) *publish.Encoder {
	t.Helper()
	enc, err := publish.NewEncoder(publish.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// rec builds a publish.Record for route; diffs empty means equal.
func rec(id, route string, refMS, candMS int, candErr error, diffs ...compare.Diff) *publish.Record {
	h := http.Header{"Content-Type": {"application/json"}}
	return &publish.Record{
		ID: id, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Key: route, Route: route, Endpoint: route,
		Equal:   len(diffs) == 0 && candErr == nil,
		Request: publish.Request{Method: "GET", URI: "/x", Pattern: route, Header: http.Header{}},
		Reference: publish.Side{URL: "http://ref/x", Status: 200, Header: h, Body: []byte(`{"a":1}`),
			Duration: time.Duration(refMS) * time.Millisecond},
		Candidate: publish.Side{URL: "http://cand/x", Status: 200, Header: h, Body: []byte(`{"a":2}`),
			Err: candErr, Duration: time.Duration(candMS) * time.Millisecond},
		Diffs: diffs,
	}
}

func diff(path string, class compare.Class) compare.Diff {
	return compare.Diff{Path: path, Kind: compare.Changed, Reference: 1, Candidate: 2, Class: class}
}

func add(t *testing.T, a *Aggregator, enc *publish.Encoder, recs ...*publish.Record) {
	t.Helper()
	for _, r := range recs {
		b, err := enc.Encode(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Add(b) {
			t.Fatalf("record %s not readable: %s", r.ID, b)
		}
	}
}

func TestAggregate(t *testing.T) {
	enc := encoder(t)
	a := NewAggregator(Config{TopPaths: 2})
	add(t, a, enc,
		rec("e1", "/a", 10, 12, nil),
		rec("e2", "/a", 10, 12, nil),
		rec("m1", "/a", 10, 20, nil, diff("$.price", compare.Regression), diff("$.ts", compare.Noise)),
		rec("m2", "/a", 10, 20, nil, diff("$.ts", compare.Noise)),
		rec("m3", "/a", 10, 20, nil, diff("$.ts", compare.Noise), diff("status", compare.Regression)),
		rec("f1", "/a", 10, 1000, context.DeadlineExceeded, compare.Diff{Path: "error", Kind: compare.Changed, Class: compare.Regression}),
		rec("b1", "/b", 5, 6, nil, diff("$.x", compare.Regression)),
		rec("b2", "/b", 5, 6, syscall.ECONNREFUSED, diff("error", compare.Regression)),
	)
	a.Add([]byte("not json"))
	a.Add([]byte(`{"schema_version":2,"id":"x","equal":true,"reference":{},"candidate":{}}`))
	a.Add(nil)

	s := a.Summary()
	if s.Records != 8 || s.Unreadable != 3 {
		t.Errorf("records %d unreadable %d, want 8 and 3", s.Records, s.Unreadable)
	}
	if len(s.Routes) != 2 || s.Routes[0].Route != "/a" || s.Routes[1].Route != "/b" {
		t.Fatalf("routes %+v", s.Routes)
	}
	ra, rb := s.Routes[0], s.Routes[1]

	wantA := RouteSummary{
		Route: "/a", Source: SourceRecords, Signs: tally.Signs{Slower: 6}, Compared: 6, Equal: 2, Mismatches: 4, MismatchRate: 4.0 / 6, RateBasis: BasisCompared,
		Regressions: 3, Noise: 1,
		CandidateErrors: 1, CandidateErrorRate: 1.0 / 6, CandidateErrorKinds: map[string]int64{"timeout": 1},
		TopPaths: []PathCount{
			{Path: "$.ts", Count: 3, Noise: 3, ExampleID: "m1"},
			{Path: "$.price", Count: 1, ExampleID: "m1"},
		},
		DistinctPaths: 4,
	}
	ignoreLatency := cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Latency" }, cmp.Ignore())
	if d := cmp.Diff(wantA, ra, ignoreLatency); d != "" {
		t.Errorf("/a (-want +got):\n%s", d)
	}
	if ra.Latency.Reference.P50 < 9.7 || ra.Latency.Reference.P50 > 10.3 {
		t.Errorf("/a reference p50 %v, want about 10", ra.Latency.Reference.P50)
	}
	if ra.Latency.Candidate.Max != 1000 || ra.Latency.Candidate.P99 != 1000 {
		t.Errorf("/a candidate latency %+v: the timed-out call counts with its 1000ms", ra.Latency.Candidate)
	}

	if rb.RateBasis != BasisPublished || rb.MismatchRate != 1 || rb.Equal != 0 {
		t.Errorf("/b: mismatches only, want basis %q: %+v", BasisPublished, rb)
	}
	if d := cmp.Diff(map[string]int64{"refused": 1}, rb.CandidateErrorKinds); d != "" {
		t.Errorf("/b error kinds (-want +got):\n%s", d)
	}
}

// TestCompactRecords: the compact form of equal records (publish = "all")
// is counted, candidate failures in it too.
func TestCompactRecords(t *testing.T) {
	a := NewAggregator(Config{TopPaths: 10})
	for i, v := range []string{
		`{"schema_version":1,"id":"c1","timestamp":"2026-01-02T03:04:05Z","route":"/r","key":"k","endpoint":"/r","equal":true,"request":{"method":"GET","uri":"/r","route":"/r"},"reference":{"status":200,"duration_ms":1.5},"candidate":{"status":200,"duration_ms":2.5}}`,
		`{"schema_version":1,"id":"c2","timestamp":"2026-01-02T03:04:06Z","route":"/r","key":"k","endpoint":"/r","equal":true,"request":{"method":"GET","uri":"/r","route":"/r"},"reference":{"status":200,"duration_ms":1.5},"candidate":{"duration_ms":30,"error_kind":"timeout"}}`,
	} {
		if !a.Add([]byte(v)) {
			t.Fatalf("record %d unreadable", i)
		}
	}
	s := a.Summary()
	r := s.Routes[0]
	if r.Compared != 2 || r.Equal != 2 || r.Mismatches != 0 || r.CandidateErrorKinds["timeout"] != 1 || r.RateBasis != BasisCompared {
		t.Errorf("summary %+v", r)
	}
	if r.Latency.Reference.P50 != 1.5 || r.Latency.Candidate.Max != 30 {
		t.Errorf("latency %+v", r.Latency)
	}
	if s.From == nil || !s.From.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || !s.To.Equal(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)) {
		t.Errorf("from %v to %v", s.From, s.To)
	}
}

// TestCandidateServerErrors: a candidate answering 5xx where the reference
// answered below 500 is a candidate error of kind "5xx" (in the full and
// the compact form), besides a mismatch; a 5xx on both sides is not.
func TestCandidateServerErrors(t *testing.T) {
	statuses := func(id string, ref, cand int, refErr, candErr error) *publish.Record {
		r := rec(id, "/r", 1, 1, candErr, diff("status", compare.Regression))
		r.Reference.Status, r.Candidate.Status, r.Reference.Err = ref, cand, refErr
		return r
	}
	compact := func(ref, cand string) string {
		return `{"schema_version":1,"id":"c","route":"/r","equal":true,"reference":` + ref + `,"candidate":` + cand + `}`
	}
	tests := []struct {
		name      string
		full      *publish.Record
		value     string // compact form, if full is nil
		wantKinds map[string]int64
	}{
		{"503 against 200", statuses("a", 200, 503, nil, nil), "", map[string]int64{"5xx": 1}},
		{"500 against 404", statuses("b", 404, 500, nil, nil), "", map[string]int64{"5xx": 1}},
		{"500 against 500", statuses("c", 500, 500, nil, nil), "", map[string]int64{}},
		{"502 against 503", statuses("d", 503, 502, nil, nil), "", map[string]int64{}},
		{"404 against 200", statuses("e", 200, 404, nil, nil), "", map[string]int64{}},
		{"503 against a failed reference", statuses("f", 0, 503, context.DeadlineExceeded, nil), "", map[string]int64{}},
		{"no answer against 200", statuses("g", 200, 0, nil, syscall.ECONNREFUSED), "", map[string]int64{"refused": 1}},
		{"compact 503 against 200", nil, compact(`{"status":200,"duration_ms":1}`, `{"status":503,"duration_ms":1}`),
			map[string]int64{"5xx": 1}},
		{"compact 200 against 200", nil, compact(`{"status":200,"duration_ms":1}`, `{"status":200,"duration_ms":1}`),
			map[string]int64{}},
		{"compact timeout", nil, compact(`{"status":200,"duration_ms":1}`, `{"duration_ms":1,"error_kind":"timeout"}`),
			map[string]int64{"timeout": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Config{TopPaths: 10})
			if tt.full != nil {
				add(t, a, encoder(t), tt.full)
			} else if !a.Add([]byte(tt.value)) {
				t.Fatalf("unreadable: %s", tt.value)
			}
			r := a.Summary().Routes[0]
			if d := cmp.Diff(tt.wantKinds, r.CandidateErrorKinds); d != "" {
				t.Errorf("candidate error kinds (-want +got):\n%s", d)
			}
			var n int64
			for _, c := range tt.wantKinds {
				n += c
			}
			if r.CandidateErrors != n || r.CandidateErrorRate != float64(n) {
				t.Errorf("candidate errors %d (rate %v), want %d", r.CandidateErrors, r.CandidateErrorRate, n)
			}
			if tt.full != nil && r.Mismatches != 1 {
				t.Errorf("mismatches %d, want 1 (a candidate error is a mismatch too)", r.Mismatches)
			}
		})
	}

	// Both outputs show the kind.
	a := NewAggregator(Config{TopPaths: 10})
	add(t, a, encoder(t), statuses("x1", 200, 503, nil, nil), statuses("x2", 200, 200, nil, nil),
		statuses("x3", 200, 0, nil, context.DeadlineExceeded))
	s := a.Summary()
	var text, js strings.Builder
	if err := WriteText(&text, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/r     3         0      3           100.0%*  3            0      2 (66.7%)", "/r                5xx      1      33.3%", "/r                timeout  1      33.3%"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	for _, want := range []string{`"candidate_errors": 2`, `"5xx": 1`, `"timeout": 1`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js.String())
		}
	}
}

func TestUnreadable(t *testing.T) {
	tests := []struct{ name, value string }{
		{"empty", ""},
		{"text", "hello"},
		{"array", "[1,2]"},
		{"other JSON", `{"msg":"hi"}`},
		{"future schema", `{"schema_version":2,"id":"x","equal":true,"reference":{},"candidate":{}}`},
		{"no id", `{"schema_version":1,"equal":true,"reference":{},"candidate":{}}`},
		{"no candidate", `{"schema_version":1,"id":"x","equal":true,"reference":{}}`},
		{"bad timestamp", `{"schema_version":1,"id":"x","timestamp":"yesterday","equal":true,"reference":{},"candidate":{}}`},
		{"truncated", `{"schema_version":1,"id":"x","equal":tr`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Config{TopPaths: 10})
			if a.Add([]byte(tt.value)) {
				t.Fatal("Add = true")
			}
			if s := a.Summary(); s.Unreadable != 1 || s.Records != 0 || len(s.Routes) != 0 {
				t.Errorf("summary %+v", s)
			}
		})
	}
}

// TestBounded: paths past MaxPaths and routes past MaxRoutes are counted
// together, not kept.
func TestBounded(t *testing.T) {
	enc := encoder(t)
	a := NewAggregator(Config{TopPaths: 10})
	a.maxPaths, a.maxRoutes = 3, 2 // MaxPaths, MaxRoutes, lowered
	for i := range 10 {
		add(t, a, enc, rec(fmt.Sprint("m", i), "/a", 1, 1, nil, diff(fmt.Sprintf("$.items[%d]", i), compare.Regression)))
	}
	for i := range 5 {
		add(t, a, enc, rec(fmt.Sprint("r", i), fmt.Sprint("/route", i), 1, 1, nil))
	}
	s := a.Summary()
	ra := s.Routes[0]
	if ra.Route != "/a" || ra.DistinctPaths != 3 || ra.UntrackedDifferences != 7 || len(ra.TopPaths) != 3 {
		t.Errorf("/a: %+v", ra)
	}
	var names []string
	for _, r := range s.Routes {
		names = append(names, fmt.Sprintf("%s=%d", r.Route, r.Compared))
	}
	if d := cmp.Diff([]string{"/a=10", "/route0=1", "(other routes)=4"}, names); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
}

func TestTopPathsOrder(t *testing.T) {
	enc := encoder(t)
	a := NewAggregator(Config{TopPaths: 10})
	n := 0
	for path, count := range map[string]int{"$.c": 5, "$.a": 2, "$.b": 2, "status": 9} {
		for range count {
			n++
			add(t, a, enc, rec(fmt.Sprint("id", n), "/r", 1, 1, nil, diff(path, compare.Regression)))
		}
	}
	var got []string
	for _, p := range a.Summary().Routes[0].TopPaths {
		got = append(got, fmt.Sprintf("%s=%d", p.Path, p.Count))
	}
	if d := cmp.Diff([]string{"status=9", "$.c=5", "$.a=2", "$.b=2"}, got); d != "" {
		t.Errorf("top paths (-want +got):\n%s", d)
	}
}

func TestTextOutput(t *testing.T) {
	enc := encoder(t)
	a := NewAggregator(Config{TopPaths: 10})
	add(t, a, enc,
		rec("e1", "/a", 10, 12, nil),
		rec("m1", "/a", 10, 20, nil, diff("$.price", compare.Regression)),
		rec("b1", "/b", 5, 6, syscall.ECONNRESET, diff("error", compare.Regression)),
	)
	a.Add([]byte("garbage"))
	s := a.Summary()
	s.Topic = "miffy"
	var out strings.Builder
	if err := WriteText(&out, s); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Logf("\n%s", text)
	for _, want := range []string{
		`topic "miffy": 3 records, 1 unreadable (skipped)`,
		"ROUTE  COMPARED  EQUAL  MISMATCHES  RATE",
		"/a     2         1      1           50.0%",
		"100.0%*",
		"* no tallies cover this route's records and no equal records were seen",
		"/b                reset  1      100.0%",
		"/a               $.price  1      0      m1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	var empty strings.Builder
	WriteText(&empty, NewAggregator(Config{TopPaths: 10}).Summary())
	if empty.String() != "0 records\n" {
		t.Errorf("empty report %q", empty.String())
	}
}
