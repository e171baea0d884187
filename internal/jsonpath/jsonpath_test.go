package jsonpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	key := func(k string) Step { return Step{Kind: Key, Key: k} }
	tests := []struct {
		in   string
		want []Step
	}{
		{"$", nil},
		{"$.a", []Step{key("a")}},
		{"$.items[12].price", []Step{key("items"), {Kind: Index, Index: 12}, key("price")}},
		{"$.items[*].*", []Step{key("items"), {Kind: Any}, {Kind: Any}}},
		{"$.*.a", []Step{{Kind: Any}, key("a")}},
		{`$["a.b"]["*"]["]"]["*x"]`, []Step{key("a.b"), key("*"), key("]"), key("*x")}},
		{"$.user-id.é", []Step{key("user-id"), key("é")}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseErrors: "*" is a wildcard only as a whole step; a name holding
// it is an error (it is written quoted), never a literal name.
func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid path "": must start with $`},
		{"a", "must start with $"},
		{"$a", `unexpected 'a'`},
		{"$.", "at offset 1: empty member name"},
		{"$..a", "at offset 1: empty member name"},
		{"$[", "missing ]"},
		{"$[]", `index ""`},
		{"$[1", "missing ]"},
		{"$[-1]", `index "-1"`},
		{"$[x]", `index "x"`},
		{`$["a"`, "missing ] after quoted name"},
		{`$["a"x]`, "missing ] after quoted name"},
		{"$.a b", `unexpected ' '`},
		{"$]", `unexpected ']'`},
		{"$.*x", `"*x": * is a wildcard only as a whole step; quote a name holding it: ["*x"]`},
		{"$.a*", `"a*": * is a wildcard`},
		{"$.a.**", `"**": * is a wildcard`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an ErrSyntax containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	any, a, i3 := Step{Kind: Any}, Step{Kind: Key, Key: "a"}, Step{Kind: Index, Index: 3}
	tests := []struct {
		pattern, concrete Step
		want              bool
	}{
		{any, a, true}, {any, i3, true},
		{a, a, true}, {a, Step{Kind: Key, Key: "b"}, false}, {a, i3, false},
		{i3, i3, true}, {i3, Step{Kind: Index, Index: 4}, false},
		{Step{Kind: Index}, Step{Kind: Key}, false}, // index 0 is not the member ""
	}
	for _, tt := range tests {
		if got := tt.pattern.Matches(tt.concrete); got != tt.want {
			t.Errorf("%+v.Matches(%+v) = %v, want %v", tt.pattern, tt.concrete, got, tt.want)
		}
	}
}

// TestRenderParse: what AppendKey and AppendIndex write, Parse reads back
// as the same steps, whatever the name holds.
func TestRenderParse(t *testing.T) {
	names := []string{"a", "a.b", "x y\"\n", "", "_9", "9", "*", "*x", "]", "é", "\xff", "\x01"}
	b := []byte("$")
	var want []Step
	for i, n := range names {
		b = AppendKey(b, n)
		b = AppendIndex(b, i)
		if n == "\xff" {
			n = "\ufffd" // invalid UTF-8 is written as U+FFFD, like encoding/json
		}
		want = append(want, Step{Kind: Key, Key: n}, Step{Kind: Index, Index: i})
	}
	got, err := Parse(string(b))
	if err != nil {
		t.Fatalf("Parse(%s): %v", b, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse(%s) (-want +got):\n%s", b, diff)
	}
}
