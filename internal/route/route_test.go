package route

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	var tb Table[string]
	for _, r := range []struct {
		pattern string
		methods []string
	}{
		{"/api/{value}", nil},
		{"/api/health", nil},
		{"/users/{id}/orders", []string{"GET"}},
		{"/users/{uid}/orders", []string{"post"}},
		{"/users/{id}/orders/{order}", nil},
		{"/static/{*rest}", nil},
		{"/a/b/d", nil},
		{"/a/{x}/c", nil},
		{"/", nil},
	} {
		if err := tb.Add(r.pattern, r.methods, r.pattern); err != nil {
			t.Fatalf("Add(%q): %v", r.pattern, err)
		}
	}
	tests := []struct {
		name, method, path string
		want               string
		params             Params
	}{
		{"param", "GET", "/api/3", "/api/{value}", Params{{"value", "3"}}},
		{"static beats param", "GET", "/api/health", "/api/health", nil},
		{"escaped param is unescaped", "GET", "/api/a%2Fb", "/api/{value}", Params{{"value", "a/b"}}},
		{"nested", "GET", "/users/42/orders", "/users/{id}/orders", Params{{"id", "42"}}},
		{"method picks route", "POST", "/users/42/orders", "/users/{uid}/orders", Params{{"uid", "42"}}},
		{"method not allowed", "DELETE", "/users/42/orders", "", nil},
		{"two params", "GET", "/users/1/orders/9", "/users/{id}/orders/{order}", Params{{"id", "1"}, {"order", "9"}}},
		{"catch-all", "GET", "/static/css/site.css", "/static/{*rest}", Params{{"rest", "css/site.css"}}},
		{"catch-all empty", "GET", "/static/", "/static/{*rest}", Params{{"rest", ""}}},
		{"catch-all bare", "GET", "/static", "/static/{*rest}", Params{{"rest", ""}}},
		{"backtrack to param", "GET", "/a/b/c", "/a/{x}/c", Params{{"x", "b"}}},
		{"literal wins", "GET", "/a/b/d", "/a/b/d", nil},
		{"root", "GET", "/", "/", nil},
		{"empty param segment", "GET", "/api/", "", nil},
		{"too deep", "GET", "/api/3/4", "", nil},
		{"no route", "GET", "/other", "", nil},
		{"not a path", "GET", "*", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ps, pattern, ok := tb.Match(tt.method, tt.path)
			if ok != (tt.want != "") {
				t.Fatalf("Match(%s %s) ok=%v, want %q", tt.method, tt.path, ok, tt.want)
			}
			if v != tt.want || pattern != tt.want {
				t.Errorf("Match(%s %s) = %q (%q), want %q", tt.method, tt.path, v, pattern, tt.want)
			}
			if diff := cmp.Diff(tt.params, ps); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMatchManyParams: past the captures kept in place, and with a
// branch that captured past them failing and a shallower one matching.
func TestMatchManyParams(t *testing.T) {
	var tb Table[string]
	nine := "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"
	for _, p := range []string{nine + "/{j}/{k}/end", nine + "/{*rest}"} {
		if err := tb.Add(p, nil, p); err != nil {
			t.Fatalf("Add(%q): %v", p, err)
		}
	}
	params := func(vals ...string) Params {
		ps := Params{}
		for i, v := range vals {
			ps = append(ps, Param{Key: string(rune('a' + i)), Value: v})
		}
		return ps
	}
	withRest := params("1", "2", "3", "4", "5", "6", "7", "8", "9")
	withRest = append(withRest, Param{Key: "rest", Value: "10/11/other"})
	for _, tt := range []struct {
		path, want string
		params     Params
	}{
		{"/1/2/3/4/5/6/7/8/9/10/11/end", nine + "/{j}/{k}/end", params("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")},
		// {j} and {k} capture, then "end" fails: the catch-all after {i}
		// must see neither.
		{"/1/2/3/4/5/6/7/8/9/10/11/other", nine + "/{*rest}", withRest},
	} {
		_, ps, pattern, ok := tb.Match("GET", tt.path)
		if !ok || pattern != tt.want {
			t.Fatalf("%s: matched %q (%v), want %q", tt.path, pattern, ok, tt.want)
		}
		if diff := cmp.Diff(tt.params, ps); diff != "" {
			t.Errorf("%s: params (-want +got):\n%s", tt.path, diff)
		}
	}
}

func TestAddErrors(t *testing.T) {
	tests := []struct {
		name     string
		first    string
		pattern  string
		methods  []string
		conflict bool
	}{
		{"no slash", "", "api", nil, false},
		{"mixed segment", "", "/api/x{id}", nil, false},
		{"catch-all not last", "", "/a/{*rest}/b", nil, false},
		{"bad name", "", "/a/{my-id}", nil, false},
		{"duplicate name", "", "/a/{id}/{id}", nil, false},
		{"empty segment", "", "/a//b", nil, false},
		{"same pattern", "/api/{v}", "/api/{v}", nil, true},
		{"same shape", "/api/{v}", "/api/{w}", []string{"GET"}, true},
		{"same catch-all", "/s/{*a}", "/s/{*b}", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb Table[int]
			if tt.first != "" {
				if err := tb.Add(tt.first, nil, 1); err != nil {
					t.Fatal(err)
				}
			}
			err := tb.Add(tt.pattern, tt.methods, 2)
			if err == nil {
				t.Fatalf("Add(%q) succeeded", tt.pattern)
			}
			if got := errors.Is(err, ErrConflict); got != tt.conflict {
				t.Errorf("Add(%q) = %v, conflict %v want %v", tt.pattern, err, got, tt.conflict)
			}
		})
	}
}

func TestDisjointMethodsCoexist(t *testing.T) {
	var tb Table[int]
	if err := tb.Add("/x/{id}", []string{"GET", "HEAD"}, 1); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add("/x/{id}", []string{"POST"}, 2); err != nil {
		t.Errorf("disjoint methods: %v", err)
	}
	if tb.Len() != 2 {
		t.Errorf("Len = %d", tb.Len())
	}
}

// FuzzMatch: matching (and parsing) any path neither panics nor returns
// values without a match, and a match captures the pattern's parameters.
// Its seeds are in testdata/fuzz/FuzzMatch (run by every go test; see
// TestFuzzMatchSeeds).
func FuzzMatch(f *testing.F) {
	var tb Table[int]
	for i, p := range []string{"/api/{v}", "/static/{*rest}", "/users/{id}/orders", "/a/{x}/c", "/"} {
		if err := tb.Add(p, nil, i); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, path string) {
		v, ps, pattern, ok := tb.Match("GET", path)
		if !ok && (v != 0 || ps != nil || pattern != "") {
			t.Fatalf("no match but values: %v %v %q", v, ps, pattern)
		}
		if ok {
			p, err := Parse(pattern)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Names()) != len(ps) {
				t.Fatalf("pattern %q captured %v", pattern, ps)
			}
		}
		// Parse must not panic on anything either.
		Parse(path)
	})
}

// TestFuzzMatchSeeds: the seed corpus of FuzzMatch is in testdata, in Go's
// corpus format, with the paths each pattern of the fuzz table must see and
// the hostile ones.
func TestFuzzMatchSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMatch")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading the seed corpus: %v", err)
	}
	seeds := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, value, _ := strings.Cut(strings.TrimSuffix(string(b), "\n"), "\n")
		inner, ok := strings.CutPrefix(value, "string(")
		inner, ok2 := strings.CutSuffix(inner, ")")
		if header != "go test fuzz v1" || !ok || !ok2 || strings.Contains(inner, "\n") {
			t.Errorf("%s: not a one-string seed in Go's corpus format", e.Name())
			continue
		}
		s, err := strconv.Unquote(inner)
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		seeds[s] = true
	}
	for _, want := range []string{
		"/api/3", "/static/a/b", "/users/1/orders", "/", "//", "/%zz", "/a/b/c", // each pattern
		"", "%", "/api/%", "/api/\xff\xfe", "/static/ü/ñ/😀", "/a/\x00/c\t\r\n", "api/3", "/{",
		"/api/" + strings.Repeat("a", 8192),
	} {
		if !seeds[want] {
			t.Errorf("no seed %q", want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	var tb Table[int]
	for i, p := range []string{"/api/{value}", "/api/health", "/users/{id}/orders", "/static/{*rest}", "/a/b/c", "/a/b/d"} {
		tb.Add(p, nil, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		tb.Match("GET", "/users/12345/orders")
	}
}
