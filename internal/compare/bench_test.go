package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchBody returns a JSON document of about size bytes: an object with
// an items array. reversed writes every object's keys in reverse order;
// changed alters the price of every 10th item.
func benchBody(size int, reversed, changed bool) []byte {
	var b strings.Builder
	item := func(i int) []string {
		price := fmt.Sprintf("%d.%02d", i*3, i%100)
		if changed && i%10 == 0 {
			price = fmt.Sprintf("%d.99", i*3+1)
		}
		return []string{
			fmt.Sprintf(`"id":%d`, i),
			fmt.Sprintf(`"name":"item number %d"`, i),
			`"price":` + price,
			fmt.Sprintf(`"tags":["t%d","t%d"]`, i%7, i%5),
			fmt.Sprintf(`"in_stock":%v`, i%3 == 0),
		}
	}
	join := func(fields []string) string {
		if reversed {
			r := make([]string, len(fields))
			for i, f := range fields {
				r[len(fields)-1-i] = f
			}
			fields = r
		}
		return "{" + strings.Join(fields, ",") + "}"
	}
	var items []string
	for i := 0; b.Len()+len(strings.Join(items, ",")) < size-60; i++ {
		items = append(items, join(item(i)))
	}
	b.WriteString(join([]string{`"count":` + fmt.Sprint(len(items)), `"items":[` + strings.Join(items, ",") + "]"}))
	return []byte(b.String())
}

// benchPairs are the inputs of BenchmarkCompare and BenchmarkBaseline.
func benchPairs() []struct {
	name      string
	ref, cand []byte
} {
	var out []struct {
		name      string
		ref, cand []byte
	}
	for _, size := range []int{100, 10 << 10, 100 << 10} {
		ref := benchBody(size, false, false)
		label := fmt.Sprintf("%dKB", size>>10)
		if size < 1<<10 {
			label = fmt.Sprintf("%dB", size)
		}
		out = append(out,
			struct {
				name      string
				ref, cand []byte
			}{label + "/equal-bytes", ref, bytes.Clone(ref)},
			struct {
				name      string
				ref, cand []byte
			}{label + "/equal-reordered", ref, benchBody(size, true, false)},
			struct {
				name      string
				ref, cand []byte
			}{label + "/different", ref, benchBody(size, false, true)},
		)
	}
	return out
}

func BenchmarkCompare(b *testing.B) {
	c, err := New(Rules{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range benchPairs() {
		ref, cand := jsonResp(string(p.ref)), jsonResp(string(p.cand))
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.ref) + len(p.cand)))
			reportCPU(b, func() { c.Compare(ref, cand) })
		})
	}
}

// BenchmarkCompareRules is BenchmarkCompare with ignore and unordered rules
// in force.
func BenchmarkCompareRules(b *testing.B) {
	c, err := New(Rules{Ignore: []string{"$.items[*].in_stock"}, Unordered: []string{"$.items by id", "$.items[*].tags"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range benchPairs() {
		ref, cand := jsonResp(string(p.ref)), jsonResp(string(p.cand))
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.ref) + len(p.cand)))
			reportCPU(b, func() { c.Compare(ref, cand) })
		})
	}
}

// BenchmarkBaseline is the floor Compare is measured against: bytes.Equal,
// then json.Unmarshal of both sides into any.
func BenchmarkBaseline(b *testing.B) {
	for _, p := range benchPairs() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.ref) + len(p.cand)))
			for b.Loop() {
				if bytes.Equal(p.ref, p.cand) {
					continue
				}
				var x, y any
				if err := json.Unmarshal(p.ref, &x); err != nil {
					b.Fatal(err)
				}
				if err := json.Unmarshal(p.cand, &y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestBenchInputs(t *testing.T) {
	for _, p := range benchPairs() {
		t.Run(p.name, func(t *testing.T) {
			c, err := New(Rules{})
			if err != nil {
				t.Fatal(err)
			}
			diffs := c.Compare(jsonResp(string(p.ref)), jsonResp(string(p.cand)))
			if strings.HasSuffix(p.name, "different") != (len(diffs) > 0) {
				t.Errorf("%d diffs for %s", len(diffs), p.name)
			}
			if strings.HasSuffix(p.name, "reordered") && bytes.Equal(p.ref, p.cand) {
				t.Error("reordered input is byte-equal")
			}
		})
	}
}

// BenchmarkFastPath is the equal-answer fast path alone: both digests.
func BenchmarkFastPath(b *testing.B) {
	c, err := New(Rules{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range benchPairs() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.ref) + len(p.cand)))
			reportCPU(b, func() { c.fastEqual(p.ref, p.cand) })
		})
	}
}

// BenchmarkDecode compares the walk's decoders on one body of each size:
// encoding/json (decodeJSON, numbers as json.Number) and the scanner's
// tree (parseTree), which builds the same tree.
func BenchmarkDecode(b *testing.B) {
	c, err := New(Rules{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range benchPairs() {
		if !strings.HasSuffix(p.name, "equal-reordered") {
			continue
		}
		size := strings.TrimSuffix(p.name, "/equal-reordered")
		b.Run(size+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p.cand)))
			reportCPU(b, func() { decodeJSON(p.cand) })
		})
		b.Run(size+"/scanner", func(b *testing.B) {
			d := c.newDigester()
			b.ReportAllocs()
			b.SetBytes(int64(len(p.cand)))
			reportCPU(b, func() { d.parseTree(p.cand) })
		})
	}
}
