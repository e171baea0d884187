package compare

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		doc    string
		scans  bool // the scanner decodes it (else decodeJSON does)
		parses bool // it is JSON at all
	}{
		{"object", `{"a":1,"b":[true,false,null,"x",-1.5e3,{}],"c":{"d":[]}}`, true, true},
		{"duplicate names: last wins", `{"a":1,"a":{"b":2}}`, true, true},
		{"escapes", `["caf\u00e9 \ud83d\ude00 \/ \n\t\"\\", "\u0000"]`, true, true},
		{"spaces", " \t\r\n[ 1 , { \"a\" : 2 } ] \n", true, true},
		{"lone surrogate", `"\udc00"`, false, true},
		{"invalid UTF-8", "\"\xff\"", false, true},
		{"too deep for the scanner", strings.Repeat("[", fastMaxDepth+2) + strings.Repeat("]", fastMaxDepth+2), false, true},
		{"trailing data", `{} {}`, false, false},
		{"leading zero", `[01]`, false, false},
		{"empty", ``, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Rules{})
			if err != nil {
				t.Fatal(err)
			}
			want, werr := decodeJSON([]byte(tc.doc))
			got, ok := c.newDigester().parseTree([]byte(tc.doc))
			if ok != tc.scans {
				t.Errorf("scanner decoded it: %v, want %v", ok, tc.scans)
			}
			if (werr == nil) != tc.parses {
				t.Fatalf("decodeJSON error %v, want parsed %v", werr, tc.parses)
			}
			if ok && !reflect.DeepEqual(want, got) {
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("scanner's tree differs from encoding/json's (-want +got):\n%s", diff)
				}
			}
			dv, derr := c.decode([]byte(tc.doc))
			if (derr == nil) != (werr == nil) || !reflect.DeepEqual(want, dv) { // cmp.Diff is slow on deep trees
				t.Errorf("decode = %v, %v; want %v, %v", dv, derr, want, werr)
			}
		})
	}
}

// FuzzDecodeTree checks that where the scanner decodes a body it builds
// exactly encoding/json's tree, and that it decodes every body that
// encoding/json decodes unless a stated reason leaves it to decodeJSON.
// Seeds are in testdata/fuzz/FuzzDecodeTree.
func FuzzDecodeTree(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.50,-0e1,"x\u00e9"],"a":null,"b":{"c":true}}`))
	c, err := New(Rules{})
	if err != nil {
		f.Fatal(err)
	}
	d := c.newDigester()
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := d.parseTree(doc)
		want, err := decodeJSON(doc)
		switch {
		case ok && err != nil:
			t.Fatalf("scanner decoded %q, encoding/json says %v", doc, err)
		case ok:
			if reflect.DeepEqual(want, got) {
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("trees of %q differ (-encoding/json +scanner):\n%s", doc, diff)
			}
		case err == nil && !leftToScannerFallback(doc):
			t.Fatalf("scanner refused %q, which encoding/json decodes", doc)
		}
	})
}

// leftToScannerFallback reports whether valid JSON holds what parseTree
// leaves to decodeJSON: invalid UTF-8, escaped surrogates (lone ones are
// the reason; paired ones are harmless but not told apart here), deep
// nesting or an exponent longer than maxExpDigits.
func leftToScannerFallback(doc []byte) bool {
	return strings.Contains(strings.ToLower(string(doc)), `\ud`) || !bytesValidUTF8(doc) || nestingDepth(doc) > fastMaxDepth-2 ||
		longExponent.Match(doc) || !json.Valid(doc)
}
