// Package route matches request paths against route patterns such as
// "/api/{value}", "/users/{id}/orders" and "/static/{*rest}".
//
// A pattern is a list of segments separated by "/". A segment is literal
// text, a named parameter "{name}" that matches one non-empty segment, or, as
// the last segment only, a catch-all "{*name}" that matches the rest of the
// path (possibly empty). When several patterns match, literal segments beat
// parameters and parameters beat catch-alls, segment by segment from the left.
package route

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ErrConflict is returned by Add for a pattern that an earlier one already
// covers for an overlapping set of methods.
var ErrConflict = errors.New("conflicts with an earlier route")

// Param is one captured path parameter.
type Param struct {
	Key   string
	Value string
}

// Params are the parameters captured by a match, in pattern order.
type Params []Param

// Get returns the value of the named parameter and whether it was captured.
func (ps Params) Get(name string) (string, bool) {
	for _, p := range ps {
		if p.Key == name {
			return p.Value, true
		}
	}
	return "", false
}

// Map returns the parameters as a map (nil when there are none).
func (ps Params) Map() map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}

type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segCatchAll
)

type segment struct {
	kind segKind
	text string // literal text, or the parameter's name
}

// Pattern is a parsed route pattern.
type Pattern struct {
	raw  string
	segs []segment
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// Names returns the parameter names of the pattern in order.
func (p Pattern) Names() []string {
	var names []string
	for _, s := range p.segs {
		if s.kind != segLiteral {
			names = append(names, s.text)
		}
	}
	return names
}

// Parse checks and parses a pattern.
func Parse(raw string) (Pattern, error) {
	if !strings.HasPrefix(raw, "/") {
		return Pattern{}, fmt.Errorf("pattern %q must start with /", raw)
	}
	parts := strings.Split(raw[1:], "/")
	p := Pattern{raw: raw, segs: make([]segment, 0, len(parts))}
	seen := map[string]bool{}
	for i, part := range parts {
		switch {
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			kind := segParam
			if strings.HasPrefix(name, "*") {
				kind = segCatchAll
				name = name[1:]
				if i != len(parts)-1 {
					return Pattern{}, fmt.Errorf("pattern %q: catch-all {*%s} must be the last segment", raw, name)
				}
			}
			if !validName(name) {
				return Pattern{}, fmt.Errorf("pattern %q: parameter name %q must be letters, digits or _", raw, name)
			}
			if seen[name] {
				return Pattern{}, fmt.Errorf("pattern %q: parameter %q appears twice", raw, name)
			}
			seen[name] = true
			p.segs = append(p.segs, segment{kind: kind, text: name})
		case strings.ContainsAny(part, "{}"):
			return Pattern{}, fmt.Errorf("pattern %q: segment %q mixes text and a parameter; a parameter takes a whole segment", raw, part)
		default:
			if i < len(parts)-1 && part == "" {
				return Pattern{}, fmt.Errorf("pattern %q has an empty segment", raw)
			}
			p.segs = append(p.segs, segment{kind: segLiteral, text: part})
		}
	}
	return p, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

type entry[T any] struct {
	pattern Pattern
	names   []string // parameter names, in order
	methods []string // upper case; empty means any
	value   T
}

func (e *entry[T]) allows(method string) bool {
	return len(e.methods) == 0 || slices.Contains(e.methods, method)
}

type node[T any] struct {
	literal  map[string]*node[T]
	param    *node[T]
	catchAll []*entry[T]
	entries  []*entry[T] // routes ending at this node
}

// Table maps patterns to values of type T. It is safe for concurrent Match
// calls once all Add calls are done; build a new Table to change it.
type Table[T any] struct {
	root node[T]
	n    int
}

// Len returns the number of routes in the table.
func (t *Table[T]) Len() int { return t.n }

// Add adds a pattern for the given methods (nil or empty means any method).
// It fails on a malformed pattern and on a pattern that is the same shape as
// an earlier one (parameter names aside) with an overlapping set of methods.
func (t *Table[T]) Add(raw string, methods []string, v T) error {
	p, err := Parse(raw)
	if err != nil {
		return err
	}
	ms := make([]string, 0, len(methods))
	for _, m := range methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			return fmt.Errorf("pattern %q: empty method name", raw)
		}
		ms = append(ms, m)
	}
	n := &t.root
	var list *[]*entry[T]
	for _, s := range p.segs {
		switch s.kind {
		case segLiteral:
			if n.literal == nil {
				n.literal = map[string]*node[T]{}
			}
			next := n.literal[s.text]
			if next == nil {
				next = &node[T]{}
				n.literal[s.text] = next
			}
			n = next
		case segParam:
			if n.param == nil {
				n.param = &node[T]{}
			}
			n = n.param
		case segCatchAll:
			list = &n.catchAll
		}
	}
	if list == nil {
		list = &n.entries
	}
	e := &entry[T]{pattern: p, names: p.Names(), methods: ms, value: v}
	for _, old := range *list {
		if overlap(old.methods, ms) {
			return fmt.Errorf("pattern %q %w %q", raw, ErrConflict, old.pattern.raw)
		}
	}
	*list = append(*list, e)
	t.n++
	return nil
}

func overlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

// Match finds the route for a method and an escaped request path
// (url.URL.EscapedPath). It returns the value, the captured (unescaped)
// parameters and the pattern. ok is false when no pattern matches the path
// with that method.
func (t *Table[T]) Match(method, path string) (v T, params Params, pattern string, ok bool) {
	if t.n == 0 || !strings.HasPrefix(path, "/") {
		return v, nil, "", false
	}
	var caps capBuf // on the stack: a match allocates only its Params
	e := t.root.match(method, path[1:], &caps)
	if e == nil {
		return v, nil, "", false
	}
	return e.value, e.params(&caps), e.pattern.raw, true
}

// capBuf holds the segments a match captures: the first few in place, any
// more in a slice of their own.
type capBuf struct {
	first [8]string
	n     int
	more  []string
}

func (c *capBuf) push(s string) {
	if c.n < len(c.first) {
		c.first[c.n] = s
	} else {
		c.more = append(c.more, s)
	}
	c.n++
}

// truncate drops the captures from the k-th on.
func (c *capBuf) truncate(k int) {
	c.n = k
	c.more = c.more[:max(0, k-len(c.first))]
}

func (c *capBuf) at(i int) string {
	if i < len(c.first) {
		return c.first[i]
	}
	return c.more[i-len(c.first)]
}

// params names the captured values, unescaped.
func (e *entry[T]) params(caps *capBuf) Params {
	if caps.n == 0 {
		return nil
	}
	ps := make(Params, len(e.names))
	for i, name := range e.names {
		val := caps.at(i)
		if strings.IndexByte(val, '%') >= 0 {
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
		}
		ps[i] = Param{Key: name, Value: val}
	}
	return ps
}

// match walks the rest of the path (without its leading "/"), pushing
// the captured segments on caps; a branch that fails takes its own off
// again.
func (n *node[T]) match(method, rest string, caps *capBuf) *entry[T] {
	seg, tail, more := strings.Cut(rest, "/")
	if child := n.literal[seg]; child != nil {
		if e := child.next(method, tail, more, caps); e != nil {
			return e
		}
	}
	if n.param != nil && seg != "" {
		k := caps.n
		caps.push(seg)
		if e := n.param.next(method, tail, more, caps); e != nil {
			return e
		}
		caps.truncate(k)
	}
	for _, e := range n.catchAll {
		if e.allows(method) {
			caps.push(rest)
			return e
		}
	}
	return nil
}

func (n *node[T]) next(method, tail string, more bool, caps *capBuf) *entry[T] {
	if more {
		return n.match(method, tail, caps)
	}
	for _, e := range n.entries {
		if e.allows(method) {
			return e
		}
	}
	// "/static/{*rest}" also matches "/static" itself, with rest empty.
	for _, e := range n.catchAll {
		if e.allows(method) {
			caps.push("")
			return e
		}
	}
	return nil
}
