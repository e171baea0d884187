package compare

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzCompare feeds arbitrary bodies, content types and encodings to a
// Comparer with every kind of rule, and checks that it neither panics nor
// reports two identical responses as different. Seeds are in
// testdata/fuzz/FuzzCompare.
func FuzzCompare(f *testing.F) {
	f.Add([]byte(`{"a":1,"items":[{"id":1,"ts":2}]}`), []byte(`{"items":[{"ts":3,"id":1.0}],"a":1e0}`), "application/json", "", "", uint8(0))
	f.Add([]byte("line one\nline two\n"), []byte("line one\nline 2\n"), "text/plain", "", "", uint8(1))
	f.Add([]byte{0x1f, 0x8b, 0, 0}, []byte("x"), "application/octet-stream", "gzip", "br", uint8(2))
	comparers := make([]*Comparer, 0, 4)
	for _, r := range []Rules{
		{},
		{Ignore: []string{"$.items[*].ts", "$.*.x", "$[0]"}, Unordered: []string{"$.items by id", "$.tags", "$[*]"}, FloatTolerance: 0.01},
		{Canonicalize: `walk(if type == "array" then sort else . end)`, CompareHeaders: []string{"Content-Type", "X-A"}},
		{Unordered: []string{"$", "$[*]", "$.*"}, CanonicalizeReference: ".", CanonicalizeCandidate: "del(.a)?"},
	} {
		c, err := New(r)
		if err != nil {
			f.Fatal(err)
		}
		comparers = append(comparers, c)
	}
	f.Fuzz(func(t *testing.T, refBody, candBody []byte, ct, refEnc, candEnc string, which uint8) {
		c := comparers[int(which)%len(comparers)]
		ref := Response{Status: 200, Header: http.Header{"Content-Type": {ct}, "Content-Encoding": {refEnc}}, Body: refBody}
		cand := Response{Status: 200, Header: http.Header{"Content-Type": {ct}, "Content-Encoding": {candEnc}}, Body: candBody}
		diffs := c.compare(ref, cand)
		if which%uint8(len(comparers)) == 0 {
			// Without rules, equality is symmetric.
			if back := c.compare(cand, ref); (len(back) == 0) != (len(diffs) == 0) {
				t.Fatalf("asymmetric: %+v, but back %+v", diffs, back)
			}
		}
		for _, r := range []Response{ref, cand} {
			if diffs := c.compare(r, r); len(diffs) != 0 && c.c.canonRef == c.c.canonCand {
				t.Fatalf("a response differs from itself: %+v", diffs)
			}
		}
		// A JSON body equals its re-encoding (keys sorted, spacing gone).
		if v, err := decodeJSON(refBody); err == nil && refEnc == "" {
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encoding %q: %v", refBody, err)
			}
			plain := comparers[0]
			r2 := Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: again}
			r1 := Response{Status: 200, Header: r2.Header, Body: refBody}
			if diffs := plain.compare(r1, r2); len(diffs) != 0 {
				t.Fatalf("%q and its re-encoding %q differ: %+v", refBody, again, diffs)
			}
		}
		// Without a Content-Type, bodies are sniffed.
		ref.Header.Del("Content-Type")
		_ = c.compare(ref, cand)
	})
}
