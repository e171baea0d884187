package compare

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		wantErr string // a prefix of the error; "" for none
	}{
		{name: "zero value", rules: Rules{}},
		{name: "all valid", rules: Rules{
			Ignore:         []string{"$", "$.a", "$.items[*].ts", "$.meta.*", `$["a.b"][0]`, "$.user-id"},
			Unordered:      []string{"$.items", "$.groups[*].members by id", `$.x by "the id"`},
			CompareHeaders: []string{"Content-Type", "x-version"},
			FloatTolerance: 0.001,
			Canonicalize:   `.items |= sort_by(.id)`,
		}},
		{name: "bad ignore path", rules: Rules{Ignore: []string{"$.a", "$.a["}}, wantErr: `ignore[1]: invalid path "$.a[": at offset 3: missing ]`},
		{name: "ignore without $", rules: Rules{Ignore: []string{"a.b"}}, wantErr: `ignore[0]: invalid path "a.b": must start with $`},
		{name: "negative index", rules: Rules{Ignore: []string{"$.a[-1]"}}, wantErr: `ignore[0]: invalid path "$.a[-1]"`},
		{name: "empty name", rules: Rules{Ignore: []string{"$..a"}}, wantErr: `ignore[0]: invalid path "$..a": at offset 1: empty member name`},
		{name: "star inside a name", rules: Rules{Ignore: []string{"$.*x"}}, wantErr: `ignore[0]: invalid path "$.*x": at offset 1: "*x": * is a wildcard only as a whole step`},
		{name: "bad unordered path", rules: Rules{Unordered: []string{"$.items[x]"}}, wantErr: `unordered[0]: invalid path "$.items[x]"`},
		{name: "bad unordered key", rules: Rules{Unordered: []string{"$.items by a b"}}, wantErr: `unordered[0]: invalid sort key`},
		{name: "negative tolerance", rules: Rules{FloatTolerance: -1}, wantErr: "float_tolerance: must be a finite number >= 0"},
		{name: "NaN tolerance", rules: Rules{FloatTolerance: math.NaN()}, wantErr: "float_tolerance: must be a finite number >= 0"},
		{name: "bad jq", rules: Rules{Canonicalize: ".items |="}, wantErr: "canonicalize: jq: "},
		{name: "bad jq function", rules: Rules{Canonicalize: "nosuchfn(1)"}, wantErr: "canonicalize: jq: "},
		{name: "bad reference jq", rules: Rules{CanonicalizeReference: "]"}, wantErr: "canonicalize_reference: jq: "},
		{name: "bad candidate jq", rules: Rules{Canonicalize: ".", CanonicalizeCandidate: "{"}, wantErr: "canonicalize_candidate: jq: "},
		{name: "bad header", rules: Rules{CompareHeaders: []string{"X Bad"}}, wantErr: `compare_headers[0]: invalid header name "X Bad"`},
		{name: "negative jq timeout", rules: Rules{Canonicalize: ".", CanonicalizeTimeout: -time.Second}, wantErr: "canonicalize_timeout: must be > 0"},
		{name: "jq timeout", rules: Rules{Canonicalize: ".", CanonicalizeTimeout: 50 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			_, newErr := New(tt.rules)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error starting %q", err, tt.wantErr)
			}
			if (err == nil) != (newErr == nil) {
				t.Errorf("Validate() = %v but New() = %v", err, newErr)
			}
		})
	}
}

func TestRulesMerge(t *testing.T) {
	global := Rules{
		Ignore:         []string{"$.a", "$.b"},
		Unordered:      []string{"$.u"},
		CompareHeaders: []string{"X-Global"},
		FloatTolerance: 0.1,
		Canonicalize:   ".",
	}
	tests := []struct {
		name  string
		route Rules
		want  Rules
	}{
		{
			name: "empty route keeps global",
			want: global,
		},
		{
			name: "lists are unions, scalars override",
			route: Rules{
				Ignore:                []string{"$.b", "$.c"},
				Unordered:             []string{"$.v by id"},
				CompareHeaders:        []string{},
				FloatTolerance:        0.5,
				CanonicalizeCandidate: ".x",
			},
			want: Rules{
				Ignore:                []string{"$.a", "$.b", "$.c"},
				Unordered:             []string{"$.u", "$.v by id"},
				CompareHeaders:        []string{},
				FloatTolerance:        0.5,
				Canonicalize:          ".",
				CanonicalizeCandidate: ".x",
			},
		},
		{
			name:  "route headers replace",
			route: Rules{CompareHeaders: []string{"X-Route"}, Canonicalize: ".y", CanonicalizeReference: ".r"},
			want: Rules{
				Ignore: []string{"$.a", "$.b"}, Unordered: []string{"$.u"}, CompareHeaders: []string{"X-Route"},
				FloatTolerance: 0.1, Canonicalize: ".y", CanonicalizeReference: ".r",
			},
		},
		{
			name:  "route jq timeout replaces",
			route: Rules{CanonicalizeTimeout: 3 * time.Second},
			want: Rules{
				Ignore: []string{"$.a", "$.b"}, Unordered: []string{"$.u"}, CompareHeaders: []string{"X-Global"},
				FloatTolerance: 0.1, Canonicalize: ".", CanonicalizeTimeout: 3 * time.Second,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := global.Merge(tt.route)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nil global headers stay nil", func(t *testing.T) {
		got := Rules{}.Merge(Rules{Ignore: []string{"$.x"}})
		if got.CompareHeaders != nil {
			t.Errorf("CompareHeaders = %#v, want nil", got.CompareHeaders)
		}
	})
	t.Run("merge does not alias the global slices", func(t *testing.T) {
		g := Rules{Ignore: make([]string, 1, 10)}
		g.Ignore[0] = "$.a"
		m := g.Merge(Rules{Ignore: []string{"$.b"}})
		m.Ignore[0] = "$.changed"
		if g.Ignore[0] != "$.a" {
			t.Errorf("global Ignore changed to %q", g.Ignore[0])
		}
	})
}

func TestCanonicalizeTimeoutDefault(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{{0, DefaultCanonicalizeTimeout}, {250 * time.Millisecond, 250 * time.Millisecond}} {
		c, err := compileRules(Rules{Canonicalize: ".", CanonicalizeCandidate: ".x", CanonicalizeTimeout: tt.set})
		if err != nil {
			t.Fatal(err)
		}
		if c.canonRef.timeout != tt.want || c.canonCand.timeout != tt.want {
			t.Errorf("canonicalize_timeout %v: filters stop after %v and %v, want %v",
				tt.set, c.canonRef.timeout, c.canonCand.timeout, tt.want)
		}
	}
}
