package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFastEqual(t *testing.T) {
	deep := strings.Repeat("[", fastMaxDepth+2) + strings.Repeat("]", fastMaxDepth+2)
	for _, tc := range []struct {
		name  string
		rules Rules
		a, b  string
		want  bool // the fast path decides "equal"
	}{
		{"reordered", Rules{}, `{"a":1,"b":[1,2],"c":{"x":null,"y":true}}`, ` { "c" : {"y":true,"x":null}, "b":[1,2], "a":1 } `, true},
		{"numbers by value", Rules{}, `[1, 1.0, 10e-1, 0.1e1, 100, -0, 0.000123]`, `[1e0, 1.00, 1, 1E+0, 1e2, 0, 1.23e-4]`, true},
		{"different number", Rules{}, `{"a":1}`, `{"a":1.5}`, false},
		{"large ints differ", Rules{}, `9007199254740993`, `9007199254740992`, false},
		{"escapes decoded", Rules{}, `{"k\u00e9y":"caf\u00e9 \ud83d\ude00 \/ \n"}`, `{"kéy":"café 😀 / \u000a"}`, true},
		{"array order counts", Rules{}, `[1,2]`, `[2,1]`, false},
		{"array length", Rules{}, `[1,2]`, `[1,2,2]`, false},
		{"string is not number", Rules{}, `{"a":"1"}`, `{"a":1}`, false},
		{"member moved", Rules{}, `{"a":{"b":1},"c":{}}`, `{"a":{},"c":{"b":1}}`, false},
		{"name and value swapped", Rules{}, `{"a":"b"}`, `{"b":"a"}`, false},
		{"ignore", Rules{Ignore: []string{"$.meta.ts", "$.items[*].id"}}, `{"meta":{"ts":1},"items":[{"id":1,"v":2}]}`, `{"meta":{"ts":2},"items":[{"id":9,"v":2}]}`, true},
		{"ignore index", Rules{Ignore: []string{"$[1]"}}, `[1,2,3]`, `[1,5,3]`, true},
		{"ignore index, extra element", Rules{Ignore: []string{"$[2]"}}, `[1,2]`, `[1,2,3]`, true},
		{"ignore missing member", Rules{Ignore: []string{"$.ts"}}, `{"a":1,"ts":5}`, `{"a":1}`, true},
		{"ignore root", Rules{Ignore: []string{"$"}}, `{"a":1}`, `[2]`, true},
		{"ignore root, invalid", Rules{Ignore: []string{"$"}}, `{"a":1}`, `[2`, false},
		{"unordered", Rules{Unordered: []string{"$.tags"}}, `{"tags":["a","b","a"]}`, `{"tags":["a","a","b"]}`, true},
		{"unordered counts", Rules{Unordered: []string{"$.tags"}}, `{"tags":["a","b","b"]}`, `{"tags":["a","a","b"]}`, false},
		{"unordered with tolerance", Rules{Unordered: []string{"$"}, FloatTolerance: 0.5}, `[1,2.0]`, `[2,1]`, true},
		{"within tolerance: walk", Rules{FloatTolerance: 0.5}, `[1]`, `[1.2]`, false},
		{"by key: walk", Rules{Unordered: []string{"$ by id"}}, `[{"id":1}]`, `[{"id":1}]`, false},
		{"by key elsewhere", Rules{Unordered: []string{"$.x by id"}}, `{"y":[1]}`, `{"y":[1]}`, true},
		{"canonicalize: walk", Rules{Canonicalize: "."}, `{"a":1}`, `{"a":1.0}`, false},
		{"duplicate names: walk", Rules{}, `{"a":1,"a":2}`, `{"a":2,"a":1}`, false},
		{"duplicate names in a big object", Rules{}, `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1,"a":1}`, `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1,"a":1}`, false},
		{"lone surrogate: walk", Rules{}, `"\ud800"`, `"\ud800"`, false},
		{"raw control character", Rules{}, "\"a\tb\"", "\"a\tb\"", false},
		{"trailing data", Rules{}, `{} x`, `{} x`, false},
		{"leading zero", Rules{}, `01`, `01`, false},
		{"bad literal", Rules{}, `nul`, `nul`, false},
		{"huge exponent: walk", Rules{}, `1e9999999999999999`, `1e9999999999999999`, false},
		{"too deep: walk", Rules{}, deep, deep, false},
		{"invalid UTF-8 kept", Rules{}, "\"\xff\"", "\"\xfe\"", false},
		{"invalid UTF-8 names: walk", Rules{}, "{\"\xcb\":1,\"\xcc\":2}", "{\"\xcc\":2,\"\xcb\":1}", false},
		{"empty", Rules{}, ``, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.fastEqual([]byte(tc.a), []byte(tc.b)); got != tc.want {
				t.Errorf("fastEqual = %v, want %v", got, tc.want)
			}
			if c.fastEqual([]byte(tc.a), []byte(tc.b)) && len(c.jsonBodies([]byte(tc.a), []byte(tc.b), nil, nil)) != 0 {
				t.Errorf("fast path says equal, the walk does not")
			}
		})
	}
}

// TestFastEqualAllocs: the fast path allocates nothing once warm.
func TestFastEqualAllocs(t *testing.T) {
	c, err := New(Rules{Ignore: []string{"$.items[*].in_stock"}, Unordered: []string{"$.items[*].tags"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := benchBody(10<<10, false, false), benchBody(10<<10, true, false)
	if !c.fastEqual(a, b) {
		t.Fatal("reordered bodies are not fast-equal")
	}
	d := c.newDigester() // not through the pool, which drops items under -race
	if n := testing.AllocsPerRun(20, func() { d.digest(a); d.digest(b) }); n > 0 {
		t.Errorf("%v allocations per pair of digests, want 0", n)
	}
}

// fuzzRules are the rule sets FuzzFastPath tries, by index.
var fuzzRules = []Rules{
	{},
	{Ignore: []string{"$.items[*].ts", "$[0]", "$.*.x"}, Unordered: []string{"$.tags", "$[*]", "$.items"}},
	{Unordered: []string{"$", "$.*"}, FloatTolerance: 0.5},
	{Unordered: []string{"$.items by id", "$.tags"}, Ignore: []string{"$.items[*].id"}},
	{Ignore: []string{"$[\"a.b\"]", "$.*.*"}},
}

// FuzzFastPath checks the equal-answer fast path against the full walk:
// whenever the fast path says two documents are equal, the walk must find
// no difference. The second document is the fuzzer's, and also the first
// one re-encoded by encoding/json (keys sorted, escapes and spacing
// changed) with one byte changed, to reach near misses. Without rules, a
// document and its re-encoding must be fast-equal unless the scanner has a
// stated reason to leave it to the walk. Seeds are in
// testdata/fuzz/FuzzFastPath.
func FuzzFastPath(f *testing.F) {
	f.Add([]byte(`{"a":1,"items":[{"id":1,"ts":2}],"tags":["x","y"]}`), []byte(`{"tags":["y","x"],"items":[{"ts":3,"id":1.0}],"a":1e0}`), uint8(0), uint16(0), uint8('2'))
	comparers := make([]*Comparer, len(fuzzRules))
	for i, r := range fuzzRules {
		c, err := New(r)
		if err != nil {
			f.Fatal(err)
		}
		comparers[i] = c
	}
	f.Fuzz(func(t *testing.T, a, b []byte, which uint8, at uint16, to uint8) {
		c := comparers[int(which)%len(comparers)]
		check := func(x, y []byte) {
			if !c.fastEqual(x, y) {
				return
			}
			if diffs := c.jsonBodies(x, y, nil, nil); len(diffs) != 0 {
				t.Fatalf("rules %d: fast path says %q and %q are equal; the walk finds %+v", which%uint8(len(comparers)), x, y, diffs)
			}
			if !c.fastEqual(y, x) {
				t.Fatalf("fast path not symmetric on %q and %q", x, y)
			}
		}
		check(a, b)
		v, err := decodeJSON(a)
		if err != nil {
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %q: %v", a, err)
		}
		if which%uint8(len(comparers)) == 0 && !comparers[0].fastEqual(a, again) && !leftToWalk(a) {
			t.Fatalf("%q and its re-encoding %q are not fast-equal", a, again)
		}
		check(a, again)
		if len(again) > 0 {
			near := bytes.Clone(again)
			near[int(at)%len(near)] = to
			check(a, near)
		}
	})
}

// leftToWalk reports whether a valid JSON document holds something the
// fast path leaves to the walk: invalid UTF-8 or escaped surrogates
// (encoding/json changes them to U+FFFD), duplicate member names, deep
// nesting or a long exponent.
func leftToWalk(doc []byte) bool {
	if !json.Valid(doc) {
		return true
	}
	lower := bytes.ToLower(doc)
	if bytes.Contains(lower, []byte(`\ud`)) || !bytesValidUTF8(doc) || nestingDepth(doc) > fastMaxDepth-2 {
		return true
	}
	if longExponent.Match(doc) {
		return true
	}
	return hasDuplicateNames(doc)
}

// longExponent matches an exponent of more than maxExpDigits digits.
var longExponent = regexp.MustCompile(`[eE][+-]?0*[0-9]{16,}`)

func bytesValidUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\ufffd") == string(b) }

// hasDuplicateNames reports whether some object in doc repeats a member name.
func hasDuplicateNames(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		names  map[string]bool
		object bool
		key    bool // the next token is a member name
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			return true
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.key {
				if s, ok := tok.(string); ok {
					if top.names[s] {
						return true
					}
					top.names[s] = true
					top.key = false
					continue
				}
			} else if tok != json.Delim('}') {
				top.key = true
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{names: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// TestDifferencesKeepTheirPaths: with the fast path and the scanner's
// decoder in front, a real difference in a large body is reported exactly
// as the walk over encoding/json's trees reports it: every path, kind and
// value.
func TestDifferencesKeepTheirPaths(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rules     Rules
		ref, cand []byte
	}{
		{"100KB, every 10th price", Rules{}, benchBody(100<<10, false, false), benchBody(100<<10, false, true)},
		{"100KB reordered, every 10th price", Rules{}, benchBody(100<<10, false, false), benchBody(100<<10, true, true)},
		{"100KB with rules", Rules{Ignore: []string{"$.items[*].in_stock"}, Unordered: []string{"$.items by id", "$.items[*].tags"}},
			benchBody(100<<10, false, false), benchBody(100<<10, true, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			va, err := decodeJSON(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			vb, err := decodeJSON(tc.cand)
			if err != nil {
				t.Fatal(err)
			}
			want := c.jsonBodies(tc.ref, tc.cand, va, vb) // the walk on encoding/json's trees
			if len(want) < 50 {
				t.Fatalf("only %d diffs: the inputs do not differ as meant", len(want))
			}
			got := c.Compare(jsonResp(string(tc.ref)), jsonResp(string(tc.cand)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diffs (-walk on encoding/json's trees +Compare):\n%s", diff)
			}
		})
	}
}
