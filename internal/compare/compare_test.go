package compare

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
)

// resp builds a response with a Content-Type (none when ct is "").
func resp(status int, ct, body string, kv ...string) Response {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return Response{Status: status, Header: h, Body: []byte(body)}
}

// jsonResp is a 200 application/json response.
func jsonResp(body string) Response { return resp(200, "application/json", body) }

// encoded returns a JSON response whose body is compressed with enc.
func encoded(t testing.TB, enc, body string) Response {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch enc {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		w, enc = fw, "deflate"
	case "br":
		w = brotli.NewWriter(&buf)
	default:
		t.Fatalf("unknown encoding %q", enc)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := jsonResp("")
	r.Header.Set("Content-Encoding", enc)
	r.Body = buf.Bytes()
	return r
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCompare(t *testing.T) {
	long := strings.Repeat("x", 300)
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	deep2 := strings.Repeat("[", 5000) + "1" + strings.Repeat("]", 5000)
	tests := []struct {
		name      string
		rules     Rules
		ref, cand Response
		want      []Diff
	}{
		{
			name: "identical",
			ref:  jsonResp(`{"a":1}`), cand: jsonResp(`{"a":1}`),
		},
		{
			name: "reordered keys are equal",
			ref:  jsonResp(`{"a":1,"b":{"x":[1,2],"y":null}}`), cand: jsonResp(`{"b":{"y":null,"x":[1,2]},"a":1}`),
		},
		{
			name: "numbers by value",
			ref:  jsonResp(`[1, 1.0, 1e0, 0.5, -0, 1200, 0.00012]`),
			cand: jsonResp(`[1.0, 1e0, 10e-1, 5E-1, 0.0, 1.2e3, 1.2e-4]`),
		},
		{
			name: "large integers that round to the same float differ",
			ref:  jsonResp(`{"id":9007199254740993}`), cand: jsonResp(`{"id":9007199254740992}`),
			want: []Diff{{Path: "$.id", Kind: Changed, Reference: json.Number("9007199254740993"), Candidate: json.Number("9007199254740992")}},
		},
		{
			name: "gzip reference, identity candidate",
			ref:  encoded(t, "gzip", `{"a":[1,2,3]}`), cand: jsonResp(`{"a":[1,2,3]}`),
		},
		{
			name: "brotli reference, deflate candidate",
			ref:  encoded(t, "br", `{"a":[1,2,3]}`), cand: encoded(t, "deflate", `{"a":[1,2,3]}`),
		},
		{
			name: "raw deflate, x-gzip",
			ref:  encoded(t, "raw-deflate", `{"a":"b"}`), cand: encoded(t, "x-gzip", `{"a":"c"}`),
			want: []Diff{{Path: "$.a", Kind: Changed, Reference: "b", Candidate: "c"}},
		},
		{
			name:  "status is reported even when the body is ignored",
			rules: Rules{Ignore: []string{"$"}},
			ref:   resp(200, "application/json", `{"a":1}`), cand: resp(404, "application/json", `{"error":"not found"}`),
			want: []Diff{{Path: "status", Kind: Changed, Reference: 200, Candidate: 404}},
		},
		{
			name: "bodies are compared when statuses differ",
			ref:  resp(200, "application/json", `{"a":1}`), cand: resp(500, "application/json", `{"a":2}`),
			want: []Diff{
				{Path: "status", Kind: Changed, Reference: 200, Candidate: 500},
				{Path: "$.a", Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
			},
		},
		{
			name:  "canonicalize sort_by makes orderings equal",
			rules: Rules{Canonicalize: `.items |= sort_by(.id)`},
			ref:   jsonResp(`{"items":[{"id":2,"p":1},{"id":1,"p":5}]}`),
			cand:  jsonResp(`{"items":[{"id":1,"p":5},{"id":2,"p":1}]}`),
		},
		{
			name:  "canonicalize then differ",
			rules: Rules{Canonicalize: `.items |= sort`},
			ref:   jsonResp(`{"items":[3,1,2]}`), cand: jsonResp(`{"items":[2,3,4]}`),
			want: []Diff{
				{Path: "$.items[0]", Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
				{Path: "$.items[1]", Kind: Changed, Reference: json.Number("2"), Candidate: json.Number("3")},
				{Path: "$.items[2]", Kind: Changed, Reference: json.Number("3"), Candidate: json.Number("4")},
			},
		},
		{
			name:  "canonicalize per side with computed numbers",
			rules: Rules{CanonicalizeReference: `{total: (.a + .b)}`, CanonicalizeCandidate: `{total: .sum}`},
			ref:   jsonResp(`{"a":1.5,"b":2}`), cand: jsonResp(`{"sum":3.5}`),
		},
		{
			name:  "canonicalize runtime error is a body diff",
			rules: Rules{Canonicalize: `.a + 1`},
			ref:   jsonResp(`{"a":"x"}`), cand: jsonResp(`{"a":1}`),
			want: []Diff{{Path: "body", Kind: Changed,
				Reference: `canonicalize: jq: cannot add: string ("x") and number (1)`}},
		},
		{
			name:  "canonicalize with no output is null",
			rules: Rules{Canonicalize: `empty`},
			ref:   jsonResp(`{"a":1}`), cand: jsonResp(`{"a":2}`),
		},
		{
			name:  "unordered multiset equal",
			rules: Rules{Unordered: []string{"$.items"}},
			ref:   jsonResp(`{"items":[1,"a",{"x":1},[2,3],1]}`), cand: jsonResp(`{"items":[[2,3],1,{"x":1.0},1,"a"]}`),
		},
		{
			name:  "unordered multiset differ",
			rules: Rules{Unordered: []string{"$.items"}},
			ref:   jsonResp(`{"items":[1,2,3,2]}`), cand: jsonResp(`{"items":[3,2,1,4]}`),
			want: []Diff{
				{Path: "$.items[3]", Kind: Removed, Reference: json.Number("2")},
				{Path: "$.items[3]", Kind: Added, Candidate: json.Number("4")},
			},
		},
		{
			name:  "unordered with float tolerance",
			rules: Rules{Unordered: []string{"$.v"}, FloatTolerance: 0.01},
			ref:   jsonResp(`{"v":[1.0,2.0,{"x":3},3]}`), cand: jsonResp(`{"v":[{"x":3.001},2.001,1.001,3.5]}`),
			want: []Diff{
				{Path: "$.v[3]", Kind: Removed, Reference: json.Number("3")},
				{Path: "$.v[3]", Kind: Added, Candidate: json.Number("3.5")},
			},
		},
		{
			name:  "unordered with wildcard path and ignore inside",
			rules: Rules{Unordered: []string{"$.groups[*].tags"}, Ignore: []string{"$.groups[*].tags[*].seen"}},
			ref:   jsonResp(`{"groups":[{"tags":[{"n":"a","seen":1},{"n":"b","seen":2}]}]}`),
			cand:  jsonResp(`{"groups":[{"tags":[{"n":"b","seen":7},{"n":"a","seen":8}]}]}`),
		},
		{
			name:  "unordered by key",
			rules: Rules{Unordered: []string{"$.items by id"}},
			ref:   jsonResp(`{"items":[{"id":1,"p":10},{"id":2,"p":20},{"id":3,"p":30},{"p":0}]}`),
			cand:  jsonResp(`{"items":[{"p":0},{"id":3,"p":30},{"id":4,"p":40},{"id":1.0,"p":11}]}`),
			want: []Diff{
				{Path: "$.items[0].p", Kind: Changed, Reference: json.Number("10"), Candidate: json.Number("11")},
				{Path: "$.items[1]", Kind: Removed, Reference: map[string]any{"id": json.Number("2"), "p": json.Number("20")}},
				{Path: "$.items[2]", Kind: Added, Candidate: map[string]any{"id": json.Number("4"), "p": json.Number("40")}},
			},
		},
		{
			name:  "ignore with wildcards and exact index",
			rules: Rules{Ignore: []string{"$.items[*].ts", "$.meta.*", "$.list[0]", `$["a.b"]`}},
			ref:   jsonResp(`{"items":[{"ts":1,"v":1},{"ts":2,"v":2}],"meta":{"x":1,"y":2},"list":[1,2],"a.b":1}`),
			cand:  jsonResp(`{"items":[{"ts":5,"v":1},{"ts":6,"v":3}],"meta":{"z":3},"list":[9,2],"a.b":2}`),
			want: []Diff{
				{Path: "$.items[1].v", Kind: Changed, Reference: json.Number("2"), Candidate: json.Number("3")},
			},
		},
		{
			name:  "float tolerance",
			rules: Rules{FloatTolerance: 0.01},
			ref:   jsonResp(`{"a":1.000,"b":1.0,"c":100}`), cand: jsonResp(`{"a":1.005,"b":1.02,"c":100.01}`),
			want: []Diff{{Path: "$.b", Kind: Changed, Reference: json.Number("1.0"), Candidate: json.Number("1.02")}},
		},
		{
			name: "type changed",
			ref:  jsonResp(`{"n":1,"o":{},"a":[],"z":null,"b":true}`), cand: jsonResp(`{"n":"1","o":[],"a":{},"z":0,"b":"true"}`),
			want: []Diff{
				{Path: "$.a", Kind: TypeChanged, Reference: []any{}, Candidate: map[string]any{}},
				{Path: "$.b", Kind: TypeChanged, Reference: true, Candidate: "true"},
				{Path: "$.n", Kind: TypeChanged, Reference: json.Number("1"), Candidate: "1"},
				{Path: "$.o", Kind: TypeChanged, Reference: map[string]any{}, Candidate: []any{}},
				{Path: "$.z", Kind: TypeChanged, Candidate: json.Number("0")},
			},
		},
		{
			name: "added and removed members and elements",
			ref:  jsonResp(`{"gone":1,"list":[1,2,3],"short":[1]}`), cand: jsonResp(`{"new":{"k":"v"},"list":[1,2],"short":[1,"x"]}`),
			want: []Diff{
				{Path: "$.gone", Kind: Removed, Reference: json.Number("1")},
				{Path: "$.list[2]", Kind: Removed, Reference: json.Number("3")},
				{Path: "$.new", Kind: Added, Candidate: map[string]any{"k": "v"}},
				{Path: "$.short[1]", Kind: Added, Candidate: "x"},
			},
		},
		{
			name: "keys needing quotes",
			ref:  jsonResp(`{"a.b":1,"x y":{"ok":1},"1st":1,"q\"":1}`), cand: jsonResp(`{"a.b":2,"x y":{"ok":2},"1st":2,"q\"":2}`),
			want: []Diff{
				{Path: `$["1st"]`, Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
				{Path: `$["a.b"]`, Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
				{Path: `$["q\""]`, Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
				{Path: `$["x y"].ok`, Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")},
			},
		},
		{
			name: "values are capped",
			ref:  jsonResp(`{"s":"` + long + `"}`), cand: jsonResp(`{"s":"y"}`),
			want: []Diff{{Path: "$.s", Kind: Changed,
				Reference: long[:256] + "…[truncated, 300 bytes]", Candidate: "y"}},
		},
		{
			name: "JSON on one side, not on the other",
			ref:  jsonResp(`{"a":1}`), cand: jsonResp(`<html>oops</html>`),
			want: []Diff{{Path: "body", Kind: Changed, Reference: map[string]any{"a": json.Number("1")}, Candidate: "<html>oops</html>"}},
		},
		{
			name: "missing Content-Type, body parses as JSON",
			ref:  jsonResp(`{"a":1,"b":2}`), cand: resp(200, "", `{"b":2,"a":1}`),
			want: []Diff{{Path: "header:Content-Type", Kind: Removed, Reference: "application/json"}},
		},
		{
			name: "Content-Type compared case-insensitively",
			ref:  resp(200, "application/json; charset=UTF-8", `1`), cand: resp(200, "Application/JSON;charset=utf-8", `1`),
		},
		{
			name: "charset=utf-8 on JSON says nothing",
			ref:  resp(200, "application/json", `1`), cand: resp(200, "application/json; charset=utf-8", `1`),
		},
		{
			name: "other charset on JSON differs",
			ref:  resp(200, "application/json", `1`), cand: resp(200, "application/json; charset=latin1", `1`),
			want: []Diff{{Path: "header:Content-Type", Kind: Changed, Reference: "application/json", Candidate: "application/json; charset=latin1"}},
		},
		{
			name: "charset on text counts",
			ref:  resp(200, "text/plain", `1`), cand: resp(200, "text/plain; charset=utf-8", `1`),
			want: []Diff{{Path: "header:Content-Type", Kind: Changed, Reference: "text/plain", Candidate: "text/plain; charset=utf-8"}},
		},
		{
			name:  "compare_headers",
			rules: Rules{CompareHeaders: []string{"x-version", "Cache-Control", "x-new"}},
			ref:   resp(200, "text/plain", "", "X-Version", "1", "Cache-Control", "no-cache"),
			cand:  resp(200, "text/html", "", "X-Version", "2", "X-New", "y"),
			want: []Diff{
				{Path: "header:Cache-Control", Kind: Removed, Reference: "no-cache"},
				{Path: "header:X-New", Kind: Added, Candidate: "y"},
				{Path: "header:X-Version", Kind: Changed, Reference: "1", Candidate: "2"},
			},
		},
		{
			name: "text line diff",
			ref:  resp(200, "text/plain", "one\ntwo\nthree\nfour\n"), cand: resp(200, "text/plain", "one\n2\nthree\nfour\n"),
			want: []Diff{{Path: "body:line:2", Kind: Changed, Reference: "two", Candidate: "2"}},
		},
		{
			name: "text lines inserted",
			ref:  resp(200, "application/xml", "<a>\n</a>\n"), cand: resp(200, "application/xml", "<a>\n<b/>\n<c/>\n</a>\n"),
			want: []Diff{{Path: "body:line:2", Kind: Added, Candidate: "<b/>\n<c/>"}},
		},
		{
			name: "text lines removed",
			ref:  resp(200, "text/html", "a\nb\nc"), cand: resp(200, "text/html", "a\nc"),
			want: []Diff{{Path: "body:line:2", Kind: Removed, Reference: "b"}},
		},
		{
			name: "binary bytes diff",
			ref:  resp(200, "image/png", "\x89PNG\x00\x01"), cand: resp(200, "image/png", "\x89PNG\x00\x02\x03"),
			want: []Diff{{Path: "body", Kind: Changed,
				Reference: map[string]any{"length": 6, "sha256": sha("\x89PNG\x00\x01")},
				Candidate: map[string]any{"length": 7, "sha256": sha("\x89PNG\x00\x02\x03")}}},
		},
		{
			name: "no Content-Type on either side, not JSON",
			ref:  resp(200, "", "hello\n"), cand: resp(200, "", "hullo\n"),
			want: []Diff{{Path: "body:line:1", Kind: Changed, Reference: "hello", Candidate: "hullo"}},
		},
		{
			name: "deep nesting does not crash",
			ref:  jsonResp(deep), cand: jsonResp(deep2),
			want: []Diff{reasonDiff("JSON nested deeper than 1000 levels")},
		},
		{
			name: "deep nesting, equal bytes",
			ref:  jsonResp(deep), cand: jsonResp(deep),
		},
		{
			name: "unknown content encoding",
			ref:  resp(200, "application/json", `1`, "Content-Encoding", "zstd"), cand: jsonResp(`1`),
			want: []Diff{{Path: "body", Kind: Changed,
				Reference: `content-encoding: decoding body: unknown content encoding "zstd"`, Candidate: "1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.rules)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got := c.Compare(tt.ref, tt.cand)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compare (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompareManyDiffsAreCapped(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := range 2000 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		a.WriteString("1")
		b.WriteString("2")
	}
	a.WriteString("]")
	b.WriteString("]")
	c, err := New(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compare(jsonResp(a.String()), jsonResp(b.String()))
	if len(got) != maxDiffs+1 {
		t.Fatalf("got %d diffs, want %d", len(got), maxDiffs+1)
	}
	if diff := cmp.Diff(Diff{Path: "body", Kind: Changed,
		Reference: "more than 500 differences; the rest are not listed",
		Candidate: "more than 500 differences; the rest are not listed"}, got[maxDiffs]); diff != "" {
		t.Errorf("last diff (-want +got):\n%s", diff)
	}
}

func TestCompareJQTimeout(t *testing.T) {
	c, err := New(Rules{Canonicalize: `def f: f; f`, CanonicalizeTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Compare(jsonResp(`{"a":1}`), jsonResp(`{"a":2}`))
	const stopped = "canonicalize: jq: filter ran longer than 50ms (canonicalize_timeout)"
	want := []Diff{{Path: "body", Kind: Changed, Reference: stopped, Candidate: stopped}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Compare (-want +got):\n%s", diff)
	}
}

func TestCompareConcurrent(t *testing.T) {
	c, err := New(Rules{Canonicalize: `.items |= sort_by(.id)`, Unordered: []string{"$.tags"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := jsonResp(`{"items":[{"id":2},{"id":1}],"tags":["a","b"],"v":1}`)
	cand := jsonResp(`{"items":[{"id":1},{"id":2}],"tags":["b","a"],"v":2}`)
	want := []Diff{{Path: "$.v", Kind: Changed, Reference: json.Number("1"), Candidate: json.Number("2")}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if diff := cmp.Diff(want, c.Compare(ref, cand)); diff != "" {
					t.Errorf("Compare (-want +got):\n%s", diff)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestIsJSON(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON", true},
		{" application/problem+json ;charset=UTF-8", true},
		{"application/vnd.api+json", true},
		{"text/json", false},
		{"application/jsonp", false},
		{"text/plain", false},
		{"+json", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			if got := IsJSON(tt.ct); got != tt.want {
				t.Errorf("IsJSON(%q) = %v, want %v", tt.ct, got, tt.want)
			}
		})
	}
}

func TestCompareDeepObjects(t *testing.T) {
	deep := func(n int, leaf string) string {
		return strings.Repeat(`{"a":`, n) + leaf + strings.Repeat("}", n)
	}
	c, err := New(Rules{Ignore: []string{"$.a.b"}, Unordered: []string{"$.a.a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{999, 1001, 9000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			got := c.Compare(jsonResp(deep(n, "1")), jsonResp(deep(n, "2")))
			if len(got) != 1 {
				t.Fatalf("got %d diffs, want 1: %+v", len(got), got)
			}
			if n < maxDepth && got[0].Path != "$"+strings.Repeat(".a", n) {
				t.Errorf("path %.40s..., want the leaf", got[0].Path)
			}
			if n > maxDepth && got[0].Path != "body" {
				t.Errorf("path %.40s..., want body", got[0].Path)
			}
		})
	}
}

func TestCompareLargeUnordered(t *testing.T) {
	n := 50000
	zeros := "[" + strings.TrimSuffix(strings.Repeat("0,", n), ",") + "]"
	nums := make([]string, n)
	for i := range nums {
		nums[i] = fmt.Sprint(float64(i) / 7)
	}
	fwd := "[" + strings.Join(nums, ",") + "]"
	for i, j := 0, len(nums)-1; i < j; i, j = i+1, j-1 {
		nums[i], nums[j] = nums[j], nums[i]
	}
	rev := "[" + strings.Join(nums, ",") + "]"
	for _, tol := range []float64{0, 0.001} {
		c, err := New(Rules{Unordered: []string{"$"}, FloatTolerance: tol})
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range [][2]string{{zeros, zeros + " "}, {fwd, rev}} {
			if got := c.Compare(jsonResp(pair[0]), jsonResp(pair[1])); got != nil {
				t.Errorf("tolerance %v: %d diffs, want none", tol, len(got))
			}
		}
	}
}
