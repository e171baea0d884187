package compare

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderedPathsParseBack(t *testing.T) {
	steps := []step{keyStep("a"), keyStep("a.b"), indexStep(3), keyStep("x y\"\n"), keyStep(""), keyStep("_9"), keyStep("9"), keyStep("*x")}
	rendered := string(appendPath(nil, steps))
	if want := `$.a["a.b"][3]["x y\"\n"][""]._9["9"]["*x"]`; rendered != want {
		t.Fatalf("appendPath = %s, want %s", rendered, want)
	}
	parsed, err := parsePath(rendered)
	if err != nil {
		t.Fatalf("parsePath(%s): %v", rendered, err)
	}
	if diff := cmp.Diff(steps, parsed); diff != "" {
		t.Errorf("parsed back (-want +got):\n%s", diff)
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"$.items[3].ts", "$.items[*].ts"},
		{"$[0][12]", "$[*][*]"},
		{`$["a[1]"][2]`, `$["a[1]"][*]`},
		{`$["a\"[1]"][2]`, `$["a\"[1]"][*]`},
		{"status", "status"},
		{"body:line:3", "body:line:3"},
		{"header:X", "header:X"},
		{"$.a", "$.a"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := normalizePath(tt.in); got != tt.want {
				t.Errorf("normalizePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNumbersEqual(t *testing.T) {
	tests := []struct {
		a, b string
		tol  float64
		want bool
	}{
		{"1", "1.0", 0, true},
		{"1", "1e0", 0, true},
		{"100", "1E2", 0, true},
		{"0.001", "1e-3", 0, true},
		{"-0", "0", 0, true},
		{"0e10", "0.0", 0, true},
		{"1", "-1", 0, false},
		{"12", "1.2", 0, false},
		{"9007199254740993", "9007199254740992", 0, false},
		{"9007199254740993", "9007199254740992", 0.5, false},
		{"9007199254740993", "9007199254740992", 1, true},
		{"1.1", "1.2", 0.1, true},
		{"1.1", "1.21", 0.1, false},
		{"1e400", "1e400", 0, true},
		{"1e400", "10e399", 0, true},
		{"1e400", "2e400", 1, false},
		{"1e99999999999999999999", "1e99999999999999999999", 0, true},
		{"1e99999999999999999999", "2e99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			if got := numbersEqual(jsonNumber(tt.a), jsonNumber(tt.b), tt.tol); got != tt.want {
				t.Errorf("numbersEqual(%s, %s, %v) = %v, want %v", tt.a, tt.b, tt.tol, got, tt.want)
			}
		})
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }

func TestCompareNumbers(t *testing.T) {
	// In increasing order; equal neighbours are marked by eq.
	ordered := []struct {
		n  string
		eq bool // equal to the previous one
	}{
		{"-1e400", false}, {"-123.5", false}, {"-123.4", false}, {"-12", false}, {"-1.5", false},
		{"-0.001", false}, {"0", false}, {"-0.0", true}, {"0e9", true}, {"1e-9", false}, {"0.5", false},
		{"1", false}, {"1.0", true}, {"10e-1", true}, {"1.01", false}, {"9", false}, {"10", false},
		{"9007199254740992", false}, {"9007199254740993", false}, {"1e20", false}, {"1e400", false},
	}
	for i := range ordered {
		for j := range ordered {
			want := cmpInt(i, j)
			// Account for runs of equal numbers.
			lo, hi := min(i, j), max(i, j)
			allEq := true
			for k := lo + 1; k <= hi; k++ {
				allEq = allEq && ordered[k].eq
			}
			if allEq {
				want = 0
			}
			if got := compareNumbers(jsonNumber(ordered[i].n), jsonNumber(ordered[j].n)); got != want {
				t.Errorf("compareNumbers(%s, %s) = %d, want %d", ordered[i].n, ordered[j].n, got, want)
			}
		}
	}
}
