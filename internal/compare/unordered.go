package compare

import (
	"encoding/json"
	"hash/maphash"
	"sort"
)

// Unordered arrays
//
// An array named by an Unordered rule is compared without regard to order.
//
// "$.items" compares the arrays as multisets: each candidate element is
// matched with an equal, not yet matched reference element (equal under all
// rules, including Ignore and FloatTolerance). Reference elements left over
// are reported Removed at their reference index ($.items[i]); candidate
// elements left over are reported Added at their candidate index.
//
// "$.items by id" sorts both arrays by the member id (stably; by JSON type,
// then value: numbers numerically, strings bytewise; elements without the
// member, or not objects, sort last) and walks them together: elements with
// the same id are compared member by member, diffs reported at the
// reference element's index; an id only in the reference is Removed at its
// reference index, an id only in the candidate Added at its candidate index.
// Elements with duplicate ids, and those without one, pair in order.
//
// Below an unordered array an element has no position for the rules: an
// exact index such as $.items[0].ts never matches there; use $.items[*].ts.

// elemStep is the step rules see for an element of an unordered array:
// only wildcards match it.
var elemStep = step{index: -1, isIndex: true}

// multiset compares a and b as multisets.
func (w *walker) multiset(a, b []any, sp span, depth int) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	child, ignored := w.enter(sp, elemStep)
	defer w.leave(child)
	if ignored {
		return true
	}
	// Bucket the reference elements by a hash that equal elements share,
	// then look for each candidate element among its bucket only.
	buckets := make(map[uint64][]int, len(a))
	for i, e := range a {
		h := w.hash(e, child, depth+1)
		buckets[h] = append(buckets[h], i)
	}
	matched := make([]bool, len(a))
	var extra []int // unmatched candidate indexes
	for j, e := range b {
		h := w.hash(e, child, depth+1)
		found := false
		for _, i := range buckets[h] {
			if matched[i] {
				continue
			}
			w.probe++
			eq := w.value(a[i], e, child, depth+1)
			w.probe--
			if eq {
				matched[i], found = true, true
				break
			}
		}
		if !found {
			extra = append(extra, j)
		}
	}
	equal := len(extra) == 0
	for i, ok := range matched {
		if ok {
			continue
		}
		equal = false
		if w.probe > 0 {
			return false
		}
		w.path = append(w.path, step{index: i, isIndex: true})
		w.emit(Removed, a[i], nil)
		w.path = w.path[:len(w.path)-1]
	}
	for _, j := range extra {
		w.path = append(w.path, step{index: j, isIndex: true})
		w.emit(Added, nil, b[j])
		w.path = w.path[:len(w.path)-1]
	}
	return equal
}

// keyedElem is an array element with its sort key.
type keyedElem struct {
	index int
	key   any
	has   bool // the element is an object with the key member
}

// sortByKey returns the elements of arr sorted by the member key.
func sortByKey(arr []any, key string) []keyedElem {
	out := make([]keyedElem, len(arr))
	for i, e := range arr {
		out[i] = keyedElem{index: i}
		if m, ok := e.(map[string]any); ok {
			out[i].key, out[i].has = m[key]
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return orderKeyed(out[i], out[j]) < 0 })
	return out
}

// orderKeyed orders two keyed elements: those with a key first, by key.
func orderKeyed(x, y keyedElem) int {
	switch {
	case x.has && y.has:
		return orderValues(x.key, y.key)
	case x.has:
		return -1
	case y.has:
		return 1
	}
	return 0
}

// byKey compares arrays of objects paired by the member key.
func (w *walker) byKey(a, b []any, key string, sp span, depth int) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	child, ignored := w.enter(sp, elemStep)
	defer w.leave(child)
	if ignored {
		return true
	}
	ka, kb := sortByKey(a, key), sortByKey(b, key)
	equal := true
	i, j := 0, 0
	for (i < len(ka) || j < len(kb)) && !w.halted {
		var c int
		switch {
		case i == len(ka):
			c = 1
		case j == len(kb):
			c = -1
		default:
			c = orderKeyed(ka[i], kb[j])
		}
		switch {
		case c < 0:
			w.path = append(w.path, step{index: ka[i].index, isIndex: true})
			w.emit(Removed, a[ka[i].index], nil)
			equal = false
			i++
		case c > 0:
			w.path = append(w.path, step{index: kb[j].index, isIndex: true})
			w.emit(Added, nil, b[kb[j].index])
			equal = false
			j++
		default:
			w.path = append(w.path, step{index: ka[i].index, isIndex: true})
			equal = w.value(a[ka[i].index], b[kb[j].index], child, depth+1) && equal
			i++
			j++
		}
		w.path = w.path[:len(w.path)-1]
		if !equal && w.probe > 0 {
			return false
		}
	}
	return equal && !w.halted
}

// hash returns a hash of v that is the same for values equal under the
// rules at a node with states sp: members the rules ignore are left out,
// objects and unordered arrays hash regardless of order, and numbers hash
// by value (all alike when a float tolerance applies, since then equality
// is not transitive). Unequal values may share a hash; it only narrows the
// search in multiset.
func (w *walker) hash(v any, sp span, depth int) uint64 {
	if depth > maxDepth {
		return 0
	}
	switch x := v.(type) {
	case nil:
		return 0x9e3779b97f4a7c15
	case bool:
		if x {
			return 0xbf58476d1ce4e5b9
		}
		return 0x94d049bb133111eb
	case json.Number:
		if w.c.tolerance > 0 {
			return 0x2545f4914f6cdd1d
		}
		d, ok := parseDecimal(string(x))
		switch {
		case !ok:
			return mix(maphash.String(w.seed, string(x)) ^ 3)
		case d.huge:
			return mix(maphash.String(w.seed, d.key()) ^ 3)
		}
		return mix(maphash.String(w.seed, d.digits) ^ mix(uint64(d.exp)) ^ uint64(d.sign()+3))
	case string:
		return mix(maphash.String(w.seed, x) ^ 4)
	case []any:
		unordered := w.arrayRule(sp) != nil
		h := uint64(5)
		for i, e := range x {
			s := step{index: i, isIndex: true}
			if unordered {
				s = elemStep
			}
			child, ignored := w.enter(sp, s)
			if !ignored {
				eh := w.hash(e, child, depth+1)
				if unordered {
					h += mix(eh)
				} else {
					h = mix(h*31 + eh)
				}
			}
			w.leave(child)
		}
		return h
	case map[string]any:
		h := uint64(6)
		for k, e := range x {
			child, ignored := w.enter(sp, step{key: k})
			if !ignored {
				h += mix(maphash.String(w.seed, k) ^ w.hash(e, child, depth+1))
			}
			w.leave(child)
		}
		return h
	default:
		return 7
	}
}

// mix is the splitmix64 finaliser: it spreads the bits of x.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
