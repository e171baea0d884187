package compare

import (
	"encoding/json"
	"hash/maphash"
	"sort"
)

// noIndex is the index rules see for an element of an unordered array, so
// that only wildcards match it.
const noIndex = -1

// elemStep returns the step rules see for an element of an unordered array.
func elemStep() step { return indexStep(noIndex) }

// maxTolerantPairs bounds the second, tolerant matching pass of multiset:
// past this many (reference, candidate) pairs left over from the exact pass
// it is skipped and the leftovers are reported as they are.
const maxTolerantPairs = 1 << 20

// multiset compares a and b as multisets. Elements are matched in two
// passes: first by a hash that treats numbers exactly, which pairs equal
// elements in linear time; then, with a FloatTolerance, the leftovers by a
// hash that lets all numbers collide, which pairs elements equal only
// within the tolerance (quadratic in the leftovers, so bounded by
// maxTolerantPairs).
func (w *walker) multiset(a, b []any, sp span, depth int) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	child, ignored := w.enter(sp, elemStep())
	defer w.leave(child)
	if ignored {
		return true
	}
	restA, restB := make([]int, len(a)), make([]int, len(b))
	for i := range restA {
		restA[i] = i
	}
	for j := range restB {
		restB[j] = j
	}
	restA, restB = w.match(a, b, restA, restB, child, depth, false)
	if w.c.tolerance > 0 && len(restA) > 0 && len(restB) > 0 && len(restA)*len(restB) <= maxTolerantPairs {
		restA, restB = w.match(a, b, restA, restB, child, depth, true)
	}
	if len(restA)+len(restB) == 0 {
		return true
	}
	if w.probe > 0 {
		return false
	}
	for _, i := range restA {
		w.path = append(w.path, indexStep(i))
		w.emit(Removed, a[i], nil)
		w.path = w.path[:len(w.path)-1]
	}
	for _, j := range restB {
		w.path = append(w.path, indexStep(j))
		w.emit(Added, nil, b[j])
		w.path = w.path[:len(w.path)-1]
	}
	return false
}

// match pairs equal elements among a[ia...] and b[ib...]: it buckets the
// reference elements by hash and looks for each candidate element in its
// bucket only, taking the first equal one. It returns the unmatched
// indexes of each side, in order.
func (w *walker) match(a, b []any, ia, ib []int, sp span, depth int, tolerant bool) (restA, restB []int) {
	buckets := make(map[uint64][]int, len(ia))
	for _, i := range ia {
		h := w.hash(a[i], sp, depth+1, tolerant)
		buckets[h] = append(buckets[h], i)
	}
	matched := make(map[int]bool, len(ia))
	for _, j := range ib {
		h := w.hash(b[j], sp, depth+1, tolerant)
		bucket := buckets[h]
		found := false
		for k, i := range bucket {
			w.probe++
			eq := w.value(a[i], b[j], sp, depth+1)
			w.probe--
			if eq {
				// Drop i from its bucket; identical elements match at k == 0.
				if k == 0 {
					buckets[h] = bucket[1:]
				} else {
					buckets[h] = append(bucket[:k:k], bucket[k+1:]...)
				}
				matched[i], found = true, true
				break
			}
		}
		if !found {
			restB = append(restB, j)
		}
	}
	for _, i := range ia {
		if !matched[i] {
			restA = append(restA, i)
		}
	}
	return restA, restB
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
	child, ignored := w.enter(sp, elemStep())
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
			w.path = append(w.path, indexStep(ka[i].index))
			w.emit(Removed, a[ka[i].index], nil)
			equal = false
			i++
		case c > 0:
			w.path = append(w.path, indexStep(kb[j].index))
			w.emit(Added, nil, b[kb[j].index])
			equal = false
			j++
		default:
			w.path = append(w.path, indexStep(ka[i].index))
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
// by exact value, or all alike when tolerant (equality within a tolerance
// is not transitive, so no finer hash is sound). Without a FloatTolerance,
// values equal under the rules share a hash; with one, values equal
// exactly do. Unequal values may share a hash too: it only narrows the
// search in match.
func (w *walker) hash(v any, sp span, depth int, tolerant bool) uint64 {
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
		if tolerant {
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
			s := indexStep(i)
			if unordered {
				s = elemStep()
			}
			child, ignored := w.enter(sp, s)
			if !ignored {
				eh := w.hash(e, child, depth+1, tolerant)
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
			child, ignored := w.enter(sp, keyStep(k))
			if !ignored {
				h += mix(maphash.String(w.seed, k) ^ w.hash(e, child, depth+1, tolerant))
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
