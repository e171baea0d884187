package compare

import (
	"encoding/json"
	"unicode/utf8"
)

// The walk's decoder.
//
// The field-level walk compares trees of map[string]any, []any, string,
// json.Number, bool and nil, as encoding/json decodes them with
// UseNumber. Measured on this machine (BenchmarkDecode), building that tree
// with the fast path's scanner costs a fraction of encoding/json's
// reflection-driven decoder, for the same tree. Where the scanner cannot
// promise encoding/json's exact result it does not try, and decodeJSON
// decodes the body instead: invalid UTF-8 in a string and lone surrogates
// in \u escapes (which encoding/json replaces with U+FFFD), nesting near
// maxDepth, and anything that is not valid JSON (so that errors read as
// before). Duplicate member names need nothing: the last one wins, as in
// encoding/json. FuzzDecodeTree checks the two agree.

// parseTree decodes b as decodeJSON does, reusing d's buffers.
func (d *digester) parseTree(b []byte) (any, bool) {
	d.b, d.i = b, 0
	defer func() { d.b = nil }()
	v, ok := d.treeValue(0)
	if !ok {
		return nil, false
	}
	d.space()
	if d.i != len(d.b) {
		return nil, false
	}
	return v, true
}

// treeValue decodes one value at d.i.
func (d *digester) treeValue(depth int) (any, bool) {
	if depth > fastMaxDepth {
		return nil, false
	}
	d.space()
	if d.i >= len(d.b) {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.treeObject(depth)
	case c == '[':
		return d.treeArray(depth)
	case c == '"':
		s, ok := d.treeString()
		return s, ok
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		start := d.i
		if _, ok := d.number(true); !ok {
			return nil, false
		}
		return json.Number(d.b[start:d.i]), true
	}
	return nil, false
}

// treeString decodes a string, giving up on invalid UTF-8.
func (d *digester) treeString() (string, bool) {
	s, ok := d.str()
	if !ok || !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

func (d *digester) treeObject(depth int) (any, bool) {
	d.i++ // '{'
	m := make(map[string]any)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, false
		}
		k, ok := d.treeString()
		if !ok {
			return nil, false
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, false
		}
		d.i++
		v, ok := d.treeValue(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated name: the last one wins, as in encoding/json
		d.space()
		if d.i >= len(d.b) {
			return nil, false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
			return m, true
		}
		return nil, false
	}
}

func (d *digester) treeArray(depth int) (any, bool) {
	d.i++ // '['
	a := make([]any, 0, 4)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, true
	}
	for {
		v, ok := d.treeValue(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			continue
		case ']':
			d.i++
			return a, true
		}
		return nil, false
	}
}

// decode decodes a body for the walk: with the scanner when it can
// promise encoding/json's result, else with decodeJSON.
func (c *Comparer) decode(b []byte) (any, error) {
	d := c.digesters.Get().(*digester)
	v, ok := d.parseTree(b)
	c.digesters.Put(d)
	if ok {
		return v, nil
	}
	return decodeJSON(b)
}
