package compare

import (
	"strings"

	"github.com/miffy-proxy/miffy/internal/jsonpath"
)

// step is one step of a path: of a parsed rule path (a jsonpath.Key,
// jsonpath.Index or jsonpath.Any) or of the concrete path to a value being
// compared (a Key or an Index). The grammar is package jsonpath's, shared
// with publish's redaction.
type step = jsonpath.Step

// keyStep and indexStep are the concrete steps to a member and an element.
func keyStep(k string) step { return step{Kind: jsonpath.Key, Key: k} }
func indexStep(i int) step  { return step{Kind: jsonpath.Index, Index: i} }

// parsePath parses a rule path (see package jsonpath).
func parsePath(p string) ([]step, error) { return jsonpath.Parse(p) }

// appendPath renders steps as a path ("$.items[2].price") onto b.
func appendPath(b []byte, steps []step) []byte {
	b = append(b, '$')
	for _, s := range steps {
		if s.Kind == jsonpath.Index {
			b = jsonpath.AppendIndex(b, s.Index)
		} else {
			b = jsonpath.AppendKey(b, s.Key)
		}
	}
	return b
}

// normalizePath replaces every array index in a rendered diff path with
// [*], so that "$.items[3].ts" and "$.items[7].ts" count together. Quoted
// member names are left alone, and paths that are not JSON paths ("status",
// "header:Date", "body:line:4") are returned unchanged.
func normalizePath(p string) string {
	if !strings.HasPrefix(p, "$") || strings.IndexByte(p, '[') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		c := p[i]
		if c != '[' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(p) && p[i+1] == '"' {
			// Copy a quoted name through its closing quote.
			j := i + 2
			for j < len(p) && p[j] != '"' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(p))
			b.WriteString(p[i:j])
			i = j
			continue
		}
		j := i + 1
		for j < len(p) && '0' <= p[j] && p[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(p) && p[j] == ']' {
			b.WriteString("[*]")
			i = j + 1
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}
