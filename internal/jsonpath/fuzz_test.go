package jsonpath

import (
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse: Parse never panics, and a path it accepts, written back step
// by step, parses to the same steps (for valid UTF-8, as every path from a
// TOML file is: invalid bytes are written as U+FFFD).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"$", "$.a", "$.items[*].id", `$["a.b"][3]`, "$.*x", "$..a", `$["\u00e9\ud800"]`, "$[99999999999999999999]", " $.a "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		steps, err := Parse(p)
		if err != nil || !utf8.ValidString(p) {
			return
		}
		b := []byte("$")
		for _, s := range steps {
			switch s.Kind {
			case Key:
				b = AppendKey(b, s.Key)
			case Index:
				b = AppendIndex(b, s.Index)
			default:
				b = append(b, "[*]"...)
			}
		}
		again, err := Parse(string(b))
		if err != nil {
			t.Fatalf("Parse(%q) = %v; its rendering %q does not parse: %v", p, steps, b, err)
		}
		if diff := cmp.Diff(steps, again); diff != "" {
			t.Fatalf("Parse(%q), rendered %q, parsed back (-first +again):\n%s", p, b, diff)
		}
	})
}
