package compare

import (
	"hash/maphash"
	"slices"
	"unicode/utf8"

	"github.com/miffy-proxy/miffy/internal/jsonpath"
)

// The equal-answer fast path.
//
// Most shadowed pairs are equal, and building two trees of maps to learn
// that costs far more than reading the bytes. So before the field-level
// walk, Compare reads each JSON body once with a streaming scanner that
// allocates nothing and folds it into a 128-bit structural digest that
// follows the rules: object members are combined commutatively (member
// order does not matter), numbers are hashed in canonical decimal form
// (1 == 1.0 == 10e-1), ignored paths are left out, unordered arrays are
// combined as multisets, ordered arrays as sequences. Equal digests mean
// equal bodies and Compare returns at once; different digests, or a body
// the scanner cannot decide (see below), run the full walk, so every
// difference is reported with its exact path as before.
//
// Why a false "equal" is impossible in practice. Two bodies that the walk
// tells apart differ in some member, element or scalar the rules keep; the
// digest of that part differs, and the difference reaches the root digest
// unless two 128-bit values collide. Every leaf (string, member name,
// canonical number) is hashed with two independently seeded maphash
// functions (two 64-bit lanes); the seeds are random per Comparer, so an
// upstream that shapes its answers cannot aim at a collision without
// knowing them; each combining step (a member's name with its value, an
// element with the sequence so far, a multiset sum) passes the keyed
// inputs through a bijective mixer per lane, so distinct structures give
// independent-looking 128-bit digests. At a million comparisons a second
// for a century (about 2^52 pairs) the chance of one collision is about
// 2^-76. And where the scanner could decide differently from the walk, it
// does not decide:
//
//   - anything encoding/json rejects (a syntax error, a control character
//     in a string, trailing data) or that the walk treats specially
//     (nesting near maxDepth, exponents beyond 15 digits);
//   - duplicate member names (encoding/json keeps the last one; the scanner
//     sees both), member names with invalid UTF-8 (which encoding/json may
//     turn into one name) and lone UTF-16 surrogates in \u escapes
//     (encoding/json turns them into U+FFFD);
//   - "by key" unordered arrays, whose pairing is not a multiset's, and
//     canonicalize filters, which need the decoded value.
//
// FloatTolerance needs nothing: numbers are hashed exactly, and numbers
// equal exactly are equal within any tolerance; a pair equal only within
// the tolerance has different digests and goes to the walk.
//
// Strings are hashed by their decoded bytes, with invalid UTF-8 left as it
// is: encoding/json replaces each invalid byte with U+FFFD, a function of
// those bytes (escapes only ever decode to whole, valid sequences), so
// equal decoded bytes mean equal strings after decoding. The converse does
// not hold ("\xff" and "\xfe" both decode to U+FFFD), which only sends such
// pairs to the walk.

// fastMaxDepth is the deepest nesting the scanner follows; deeper bodies
// are left to the walk, which reports them at maxDepth.
const fastMaxDepth = maxDepth - 10

// maxExpDigits is the longest exponent the scanner folds into a canonical
// number; longer ones (beyond int64 arithmetic) are left to the walk.
const maxExpDigits = 15

// Type tags of the digest, one per JSON kind, so that equal leaf bytes of
// different kinds (the string "1" and the number 1) hash apart.
const (
	tagNull   = 0x243f6a8885a308d3
	tagFalse  = 0x13198a2e03707344
	tagTrue   = 0xa4093822299f31d0
	tagNumber = 0x082efa98ec4e6c89
	tagString = 0x452821e638d01377
	tagArray  = 0xbe5466cf34e90c6c
	tagSet    = 0xc0ac29b7c97c50dd
	tagObject = 0x3f84d5b5b5470917
	tagMember = 0x9216d5d98979fb1b
)

// sum128 is a digest: two 64-bit lanes from independent seeds.
type sum128 struct{ a, b uint64 }

// digester scans JSON bodies into digests. It is reused across
// comparisons (through Comparer.digesters) so that its buffers are too;
// one goroutine uses it at a time.
type digester struct {
	ruleStates
	s1, s2  maphash.Seed
	b       []byte
	i       int
	keys    []uint64 // member name hashes of the objects being scanned
	scratch []byte   // a decoded string or a canonical number
}

// fastEqual reports whether the JSON bodies a and b are certainly equal
// under the rules. False means "not known": the caller runs the walk.
func (c *Comparer) fastEqual(a, b []byte) bool {
	if c.c.canonRef != nil || c.c.canonCand != nil {
		return false
	}
	d := c.digesters.Get().(*digester)
	defer c.digesters.Put(d)
	da, ok := d.digest(a)
	if !ok {
		return false
	}
	db, ok := d.digest(b)
	return ok && da == db
}

// newDigester returns a digester for c's rules and seeds.
func (c *Comparer) newDigester() *digester {
	return &digester{ruleStates: ruleStates{c: c.c}, s1: c.seed, s2: c.seed2}
}

// digest returns the digest of the JSON document b, or ok=false when b is
// not JSON or holds something the scanner leaves to the walk.
func (d *digester) digest(b []byte) (sum sum128, ok bool) {
	d.b, d.i = b, 0
	d.states, d.keys = d.states[:0], d.keys[:0]
	defer func() { d.b = nil }()
	root, ignored := d.root()
	sum, ok = d.value(root, 0, ignored)
	if !ok {
		return sum128{}, false
	}
	d.space()
	if d.i != len(d.b) {
		return sum128{}, false
	}
	if ignored {
		return sum128{}, true // "$" ignored: any two JSON documents are equal
	}
	return sum, true
}

// separator reads what follows a member or an element: a comma (more is
// true) or the container's close byte; anything else is not JSON.
func (d *digester) separator(close byte) (more, ok bool) {
	d.space()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return true, true
	case close:
		d.i++
		return false, true
	}
	return false, false
}

// enterKey and enterIndex advance the states of parent over a member
// name or an array index, as walker.enter does over the same step.
func (d *digester) enterKey(parent span, key []byte) (span, bool) {
	return d.advance(parent, func(s *step) bool {
		return s.Kind == jsonpath.Any || s.Kind == jsonpath.Key && s.Key == string(key)
	})
}

func (d *digester) enterIndex(parent span, index int) (span, bool) {
	return d.advance(parent, func(s *step) bool {
		return s.Matches(indexStep(index))
	})
}

// space skips JSON white space.
func (d *digester) space() {
	if d.i < len(d.b) && d.b[d.i] > ' ' {
		return
	}
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// leaf hashes a leaf's bytes with both seeds and a type tag.
func (d *digester) leaf(p []byte, tag uint64) sum128 {
	return sum128{maphash.Bytes(d.s1, p) ^ tag, maphash.Bytes(d.s2, p) ^ tag}
}

// constant is the digest of null, true or false.
func (d *digester) constant(tag uint64) sum128 {
	return sum128{mix(tag ^ 0x5851f42d4c957f2d), mix(tag ^ 0x14057b7ef767814f)}
}

// value scans one value at d.i. skip means the value is ignored: it is
// checked but not hashed. The states sp are those of the value's path.
func (d *digester) value(sp span, depth int, skip bool) (sum128, bool) {
	if depth > fastMaxDepth {
		return sum128{}, false
	}
	d.space()
	if d.i >= len(d.b) {
		return sum128{}, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(sp, depth, skip)
	case c == '[':
		return d.array(sp, depth, skip)
	case c == '"':
		s, ok := d.str()
		if !ok || skip {
			return sum128{}, ok
		}
		return d.leaf(s, tagString), true
	case c == 't':
		return d.constant(tagTrue), d.literal("true")
	case c == 'f':
		return d.constant(tagFalse), d.literal("false")
	case c == 'n':
		return d.constant(tagNull), d.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number(skip)
	}
	return sum128{}, false
}

// literal consumes the word w.
func (d *digester) literal(w string) bool {
	if len(d.b)-d.i < len(w) || string(d.b[d.i:d.i+len(w)]) != w {
		return false
	}
	d.i += len(w)
	return true
}

// object scans an object: the digest is the sum over its members (not
// ignored) of a mix of the member's name and value, so member order does
// not matter. Duplicate names give up (see the comment at the top).
func (d *digester) object(sp span, depth int, skip bool) (sum128, bool) {
	d.i++ // '{'
	var sum sum128
	n := uint64(0)
	base := len(d.keys)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return d.finishObject(sum, 0), true
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return sum128{}, false
		}
		key, ok := d.str()
		if !ok || !utf8.Valid(key) {
			// Invalid UTF-8 in a name: encoding/json turns each bad byte
			// into U+FFFD, so names that differ here may be one name there.
			return sum128{}, false
		}
		var k sum128
		child, ignored := span{len(d.states), len(d.states)}, true
		if !skip {
			k = sum128{maphash.Bytes(d.s1, key), maphash.Bytes(d.s2, key)}
			d.keys = append(d.keys, k.a)
			child, ignored = d.enterKey(sp, key)
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return sum128{}, false
		}
		d.i++
		v, ok := d.value(child, depth+1, skip || ignored)
		d.leave(child)
		if !ok {
			return sum128{}, false
		}
		if !skip && !ignored {
			sum.a += pair(k.a, v.a)
			sum.b += pair(k.b, v.b)
			n++
		}
		more, ok := d.separator('}')
		if !ok {
			return sum128{}, false
		}
		if !more {
			break
		}
	}
	if !skip {
		keys := d.keys[base:]
		dup := false
		if len(keys) <= 16 {
			for i := 1; i < len(keys) && !dup; i++ {
				dup = slices.Contains(keys[:i], keys[i])
			}
		} else {
			slices.Sort(keys)
			for i := 1; i < len(keys) && !dup; i++ {
				dup = keys[i] == keys[i-1]
			}
		}
		d.keys = d.keys[:base]
		if dup {
			return sum128{}, false
		}
	}
	return d.finishObject(sum, n), true
}

// pair mixes a member's name hash k with its value's digest v (one lane).
// It is not symmetric: pair(k, v) == pair(v, k) only when k-v is a
// multiple of 2^63, since the multiplier minus one is twice an odd number.
func pair(k, v uint64) uint64 { return mix(k*0x9e3779b97f4a7c17 + v) }

func (d *digester) finishObject(sum sum128, n uint64) sum128 {
	return sum128{mix(sum.a ^ mix(n^tagObject)), mix(sum.b ^ mix(n^tagObject^tagMember))}
}

// array scans an array: as a sequence, or as a multiset (a sum) under an
// unordered rule. A "by key" rule gives up.
func (d *digester) array(sp span, depth int, skip bool) (sum128, bool) {
	d.i++ // '['
	unordered := false
	if !skip {
		if r := d.arrayRule(sp); r != nil {
			if r.action == actByKey {
				return sum128{}, false
			}
			unordered = true
		}
	}
	h := sum128{tagArray, tagArray ^ tagMember}
	n := uint64(0)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return d.finishArray(h, 0, unordered), true
	}
	if unordered {
		h = sum128{}
	}
	for idx := 0; ; idx++ {
		child, ignored := span{len(d.states), len(d.states)}, true
		switch {
		case skip:
		case unordered:
			child, ignored = d.enterIndex(sp, noIndex)
		default:
			child, ignored = d.enterIndex(sp, idx)
		}
		v, ok := d.value(child, depth+1, skip || ignored)
		d.leave(child)
		if !ok {
			return sum128{}, false
		}
		if !skip && !ignored {
			if unordered {
				h.a += mix(v.a + tagSet)
				h.b += mix(v.b ^ tagSet)
			} else {
				h.a = mix(h.a*0x9e3779b97f4a7c15 + v.a)
				h.b = mix(h.b*0xd1b54a32d192ed03 ^ v.b)
			}
			n++
		}
		more, ok := d.separator(']')
		if !ok {
			return sum128{}, false
		}
		if !more {
			break
		}
	}
	return d.finishArray(h, n, unordered), true
}

func (d *digester) finishArray(h sum128, n uint64, unordered bool) sum128 {
	tag := uint64(tagArray)
	if unordered {
		tag = tagSet
	}
	return sum128{mix(h.a ^ mix(n^tag)), mix(h.b ^ mix(n+tag))}
}

// strStop marks the bytes that end the fast run inside a string: the
// quote, the backslash and the control characters JSON forbids raw.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str scans a string at d.i (its opening quote) and returns its decoded
// bytes: a slice of the body when it has no escapes, else of d.scratch
// (valid until the next call). Invalid UTF-8 is left as it is.
func (d *digester) str() ([]byte, bool) {
	d.i++ // '"'
	start := d.i
	b := d.b
	i := d.i
	for i < len(b) && !strStop[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		d.i = i + 1
		return b[start:i], true
	}
	// Escapes: decode into scratch.
	out := append(d.scratch[:0], b[start:i]...)
	for {
		if i >= len(b) || b[i] < 0x20 {
			return nil, false
		}
		switch b[i] {
		case '"':
			d.i = i + 1
			d.scratch = out
			return out, true
		case '\\':
			i++
			if i >= len(b) {
				return nil, false
			}
			switch e := b[i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b, i+1)
				if !ok {
					return nil, false
				}
				i += 4
				if 0xd800 <= r && r < 0xe000 {
					// A surrogate: only a high one followed by a low one is a rune.
					lo, ok := rune(0), false
					if r < 0xdc00 && i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
						lo, ok = hex4(b, i+3)
					}
					if !ok || lo < 0xdc00 || lo >= 0xe000 {
						return nil, false // a lone surrogate: leave it to encoding/json
					}
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					i += 6
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, false
			}
			i++
		default:
			j := i
			for j < len(b) && !strStop[b[j]] {
				j++
			}
			out = append(out, b[i:j]...)
			i = j
		}
	}
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number scans a number at d.i, checking JSON's grammar, and hashes it in
// canonical form (see appendCanonicalNumber), so that every spelling of a
// value hashes alike.
func (d *digester) number(skip bool) (sum128, bool) {
	b := d.b
	i := d.i
	neg := false
	if b[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return sum128{}, false
	}
	intPart := b[intStart:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		fs := i + 1
		if i = skipDigits(b, fs); i == fs {
			return sum128{}, false
		}
		frac = b[fs:i]
	}
	var exp int64
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		var ok bool
		if exp, i, ok = scanExponent(b, i+1); !ok {
			return sum128{}, false
		}
	}
	d.i = i
	if skip {
		return sum128{}, true
	}
	out := appendCanonicalNumber(d.scratch[:0], neg, intPart, frac, exp)
	d.scratch = out
	return d.leaf(out, tagNumber), true
}

// skipDigits returns the index of the first byte at or after i that is not
// a decimal digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanExponent reads an exponent's optional sign and digits at b[i:]
// (after the "e"); more than maxExpDigits significant digits fail.
func scanExponent(b []byte, i int) (exp int64, end int, ok bool) {
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	es := i
	if i = skipDigits(b, es); i == es {
		return 0, 0, false
	}
	digits := b[es:i]
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) > maxExpDigits {
		return 0, 0, false
	}
	for _, c := range digits {
		exp = exp*10 + int64(c-'0')
	}
	if neg {
		exp = -exp
	}
	return exp, i, true
}

// appendCanonicalNumber appends a number's canonical form to out: value =
// ±0.digits × 10^exp with no leading or trailing zeros in digits, written
// as the digits, 'e', exp in 8 bytes and a '-' when negative; zero,
// whatever its sign or exponent, is "0".
func appendCanonicalNumber(out []byte, neg bool, intPart, frac []byte, exp int64) []byte {
	// The digits, without leading zeros, and where the point falls.
	var lead int64
	if len(intPart) == 1 && intPart[0] == '0' {
		z := 0
		for z < len(frac) && frac[z] == '0' {
			z++
		}
		lead = -int64(z)
		frac = frac[z:]
	} else {
		lead = int64(len(intPart))
		out = append(out, intPart...)
	}
	out = append(out, frac...)
	for len(out) > 0 && out[len(out)-1] == '0' {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return append(out, '0')
	}
	e := uint64(lead + exp)
	out = append(out, 'e', byte(e), byte(e>>8), byte(e>>16), byte(e>>24), byte(e>>32), byte(e>>40), byte(e>>48), byte(e>>56))
	if neg {
		out = append(out, '-')
	}
	return out
}
