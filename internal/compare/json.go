package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sort"
)

// maxDepth is the deepest nesting of JSON compared. Deeper bodies give one
// "body" diff (see reasonDiff) instead of a stack that grows with the input.
const maxDepth = 1000

// maxDiffs caps the diffs reported for one body; past it a final "body"
// diff says the list was cut.
const maxDiffs = 500

// errTooDeep is returned for JSON nested deeper than maxDepth.
var errTooDeep = fmt.Errorf("JSON nested deeper than %d levels", maxDepth)

// decodeJSON parses one JSON value, numbers as json.Number. Trailing data
// other than white space is an error. encoding/json refuses nesting deeper
// than 10000 levels: that error is errTooDeep. (The walker stops at
// maxDepth, so bodies between the two limits parse but are not compared in
// full.)
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if nestingDepth(b) > maxDepth {
			return nil, errTooDeep
		}
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parsing JSON: data after the top-level value")
	}
	return v, nil
}

// nestingDepth returns the deepest nesting of arrays and objects in b,
// stopping as soon as it passes maxDepth. Brackets in strings do not count.
// It is only used to explain a parse failure.
func nestingDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > deepest {
				if deepest = depth; deepest > maxDepth {
					return deepest
				}
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// state is a rule partly matched against the current path: rules[rule]
// has matched its first pos steps.
type state struct {
	rule int32
	pos  int32
}

// span is a range of walker.states: the rule states live at one node.
type span struct{ lo, hi int }

// walker compares two decoded JSON values under compiled rules. It is used
// by one Compare call only.
type walker struct {
	ruleStates
	seed   maphash.Seed
	path   []step // the path to the current node, for rendering diffs
	diffs  []Diff
	probe  int  // > 0 while only testing equality: nothing is reported
	halted bool // a limit was hit; the walk unwinds without more diffs
}

// ruleStates follows the compiled path rules down a JSON document: an
// arena of rule states, each node's a span of it. The walk and the digest
// both descend by it, so that a rule means the same to both.
type ruleStates struct {
	c      *compiled
	states []state
}

// root returns the rule states at "$" and whether "$" is ignored.
func (w *ruleStates) root() (span, bool) {
	lo := len(w.states)
	ignored := false
	for i, r := range w.c.rules {
		if len(r.steps) == 0 {
			ignored = ignored || r.action == actIgnore
		}
		w.states = append(w.states, state{rule: int32(i)})
	}
	return span{lo, len(w.states)}, ignored
}

// advance moves the states of parent over one step, the rule steps that
// match it passing, and returns the child's states and whether the child
// is ignored. The caller releases the child's states with leave when done
// with it.
func (w *ruleStates) advance(parent span, match func(*step) bool) (span, bool) {
	lo := len(w.states)
	ignored := false
	for i := parent.lo; i < parent.hi; i++ {
		st := w.states[i]
		r := &w.c.rules[st.rule]
		if int(st.pos) >= len(r.steps) || !match(&r.steps[st.pos]) {
			continue
		}
		if int(st.pos)+1 == len(r.steps) && r.action == actIgnore {
			ignored = true
		}
		w.states = append(w.states, state{rule: st.rule, pos: st.pos + 1})
	}
	return span{lo, len(w.states)}, ignored
}

// enter advances the states of parent over the step s of a decoded value.
func (w *walker) enter(parent span, s step) (span, bool) {
	return w.advance(parent, func(rs *step) bool { return rs.Matches(s) })
}

// leave releases the states of a child entered last.
func (w *ruleStates) leave(child span) { w.states = w.states[:child.lo] }

// arrayRule returns the unordered rule, if any, that applies to the array at
// a node with states sp. The first matching rule in Unordered wins.
func (w *ruleStates) arrayRule(sp span) *pathRule {
	var best *pathRule
	bestIdx := int32(-1)
	for i := sp.lo; i < sp.hi; i++ {
		st := w.states[i]
		r := &w.c.rules[st.rule]
		if r.action != actIgnore && int(st.pos) == len(r.steps) && (best == nil || st.rule < bestIdx) {
			best, bestIdx = r, st.rule
		}
	}
	return best
}

// emit records a diff at the current path; nothing while probing or halted.
func (w *walker) emit(kind Kind, ref, cand any) {
	if w.probe > 0 || w.halted {
		return
	}
	if len(w.diffs) >= maxDiffs {
		w.diffs = append(w.diffs, reasonDiff(fmt.Sprintf("more than %d differences; the rest are not listed", maxDiffs)))
		w.halted = true
		return
	}
	d := Diff{Path: string(appendPath(make([]byte, 0, 32), w.path)), Kind: kind}
	switch kind {
	case Added:
		d.Candidate = capValue(cand)
	case Removed:
		d.Reference = capValue(ref)
	default:
		d.Reference, d.Candidate = capValue(ref), capValue(cand)
	}
	w.diffs = append(w.diffs, d)
}

// reasonDiff is a "body" diff for a body that could not be compared in
// detail; both values carry the reason.
func reasonDiff(reason string) Diff {
	return Diff{Path: "body", Kind: Changed, Reference: reason, Candidate: reason}
}

// value compares a and b at the current path, whose rule states are sp, and
// reports whether they are equal under the rules.
func (w *walker) value(a, b any, sp span, depth int) bool {
	if w.halted {
		return false
	}
	if depth > maxDepth {
		if w.probe == 0 {
			w.diffs = append(w.diffs, reasonDiff(errTooDeep.Error()))
		}
		w.halted = w.probe == 0
		return false
	}
	ta, tb := typeOf(a), typeOf(b)
	if ta != tb {
		w.emit(TypeChanged, a, b)
		return false
	}
	equal := true
	switch ta {
	case typeNull:
	case typeBool:
		equal = a.(bool) == b.(bool)
	case typeNumber:
		equal = numbersEqual(a.(json.Number), b.(json.Number), w.c.tolerance)
	case typeString:
		equal = a.(string) == b.(string)
	case typeObject:
		return w.object(a.(map[string]any), b.(map[string]any), sp, depth)
	case typeArray:
		return w.array(a.([]any), b.([]any), sp, depth)
	default:
		equal = false // not produced by decodeJSON or fromJQ
	}
	if !equal {
		w.emit(Changed, a, b)
	}
	return equal
}

// object compares two objects member by member. It first checks them for
// equality without reporting, which needs no sorting; only unequal objects
// are walked again in sorted key order to report their diffs.
func (w *walker) object(a, b map[string]any, sp span, depth int) bool {
	w.probe++
	equal := w.objectProbe(a, b, sp, depth)
	w.probe--
	if equal || w.probe > 0 || w.halted {
		return equal
	}
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		va, inA := a[k]
		if inA {
			w.member(k, va, true, b, sp, depth)
		} else {
			w.member(k, b[k], false, nil, sp, depth)
		}
		if w.halted {
			break
		}
	}
	return false
}

// objectProbe reports whether two objects are equal under the rules, in
// map order, stopping at the first difference.
func (w *walker) objectProbe(a, b map[string]any, sp span, depth int) bool {
	shared := 0
	for k, va := range a {
		if _, ok := b[k]; ok {
			shared++
		}
		if !w.member(k, va, true, b, sp, depth) {
			return false
		}
	}
	if shared == len(b) {
		return true // b has no member that a lacks
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok && !w.member(k, vb, false, nil, sp, depth) {
			return false
		}
	}
	return true
}

// member compares the member k of the reference (fromRef, value v) with
// the same member of b, or reports it Added when only the candidate has it.
func (w *walker) member(k string, v any, fromRef bool, b map[string]any, sp span, depth int) bool {
	s := keyStep(k)
	child, ignored := w.enter(sp, s)
	defer w.leave(child)
	if ignored {
		return true
	}
	w.path = append(w.path, s)
	defer func() { w.path = w.path[:len(w.path)-1] }()
	if !fromRef {
		w.emit(Added, nil, v)
		return false
	}
	vb, ok := b[k]
	if !ok {
		w.emit(Removed, v, nil)
		return false
	}
	return w.value(v, vb, child, depth+1)
}

// array compares two arrays: by position, or as the Unordered rule that
// applies to them says.
func (w *walker) array(a, b []any, sp span, depth int) bool {
	if r := w.arrayRule(sp); r != nil {
		if r.action == actByKey {
			return w.byKey(a, b, r.key, sp, depth)
		}
		return w.multiset(a, b, sp, depth)
	}
	equal := true
	for i := 0; i < max(len(a), len(b)); i++ {
		s := indexStep(i)
		child, ignored := w.enter(sp, s)
		if !ignored {
			w.path = append(w.path, s)
			switch {
			case i >= len(b):
				w.emit(Removed, a[i], nil)
				equal = false
			case i >= len(a):
				w.emit(Added, nil, b[i])
				equal = false
			default:
				equal = w.value(a[i], b[i], child, depth+1) && equal
			}
			w.path = w.path[:len(w.path)-1]
		}
		w.leave(child)
		if w.halted || (!equal && w.probe > 0) {
			return false
		}
	}
	return equal
}
