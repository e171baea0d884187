package compare

import (
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/miffy-proxy/miffy/internal/jsonpath"
)

// maxValueBytes caps the JSON rendering of a value carried in a Diff.
const maxValueBytes = 256

// jsonType ranks the kinds of JSON value; a difference in rank is a
// TypeChanged diff.
type jsonType uint8

const (
	typeNull jsonType = iota
	typeBool
	typeNumber
	typeString
	typeArray
	typeObject
	typeOther // not produced by decodeJSON; compared with ==
)

// typeOf returns the JSON type of a decoded value.
func typeOf(v any) jsonType {
	switch v.(type) {
	case nil:
		return typeNull
	case bool:
		return typeBool
	case json.Number:
		return typeNumber
	case string:
		return typeString
	case []any:
		return typeArray
	case map[string]any:
		return typeObject
	default:
		return typeOther
	}
}

// decimal is a JSON number in a canonical form: value = ±0.digits × 10^exp
// with no leading or trailing zeros in digits. Zero has empty digits. Two
// numbers are equal by value exactly when their decimals are equal, whatever
// their spelling: 1, 1.0, 10e-1 and 0.1e1 are all {digits "1", exp 1}.
type decimal struct {
	neg    bool
	digits string
	exp    int64
	huge   bool   // the exponent did not fit in an int64; rawExp holds it
	rawExp string // the exponent's text when huge
}

// parseDecimal converts the text of a JSON number. It accepts what
// encoding/json accepts; anything else gives ok=false.
func parseDecimal(s string) (d decimal, ok bool) {
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mant, expText := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], s[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return decimal{}, false
	}
	var exp int64
	if expText != "" {
		e, err := strconv.ParseInt(expText, 10, 64)
		if err != nil {
			t := strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(expText, "+"), "-"), "0")
			if t == "" || !allDigits(t) {
				return decimal{}, false
			}
			d.huge, d.rawExp = true, expText
		}
		exp = e
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	// value = 0.digits × 10^(len(int part without leading zeros) + exp)
	lead := len(strings.TrimLeft(intPart, "0"))
	if lead == 0 {
		// 0.000123: leading zeros of the fraction move the point.
		lead = -(len(frac) - len(strings.TrimLeft(frac, "0")))
	}
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return decimal{}, true // zero, whatever its sign or exponent
	}
	d.digits = digits
	if !d.huge {
		if (exp > 0 && int64(lead) > math.MaxInt64-exp) || (exp < 0 && int64(lead) < math.MinInt64-exp) {
			d.huge, d.rawExp = true, expText
		} else {
			d.exp = int64(lead) + exp
		}
	}
	if d.huge {
		d.rawExp = strings.TrimLeft(strings.TrimPrefix(d.rawExp, "+"), "0") + "@" + strconv.Itoa(lead)
	}
	return d, true
}

// allDigits reports whether s has only ASCII digits (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// key returns a string that is equal for equal numbers.
func (d decimal) key() string {
	if d.digits == "" {
		return "0"
	}
	sign := "+"
	if d.neg {
		sign = "-"
	}
	if d.huge {
		return sign + d.digits + "E" + d.rawExp
	}
	return sign + d.digits + "e" + strconv.FormatInt(d.exp, 10)
}

// numbersEqual compares two JSON numbers by value; with tol > 0, numbers
// within tol of each other are equal. Exact equality is decided on the
// decimal form, so large integers that round to the same float64 differ.
func numbersEqual(a, b json.Number, tol float64) bool {
	if a == b {
		return true
	}
	da, okA := parseDecimal(string(a))
	db, okB := parseDecimal(string(b))
	if !okA || !okB {
		return false
	}
	if da == db {
		return true
	}
	if tol <= 0 {
		return false
	}
	// Exact arithmetic when the numbers are of a sane size; float64 otherwise.
	if small(da) && small(db) {
		ra, okA := new(big.Rat).SetString(string(a))
		rb, okB := new(big.Rat).SetString(string(b))
		if okA && okB {
			diff := ra.Sub(ra, rb)
			diff.Abs(diff)
			t := new(big.Rat).SetFloat64(tol)
			return t != nil && diff.Cmp(t) <= 0
		}
	}
	fa, errA := strconv.ParseFloat(string(a), 64)
	fb, errB := strconv.ParseFloat(string(b), 64)
	if errA != nil || errB != nil || math.IsInf(fa, 0) || math.IsInf(fb, 0) {
		return false
	}
	return math.Abs(fa-fb) <= tol
}

// small reports whether a decimal is cheap to turn into a big.Rat.
func small(d decimal) bool {
	return !d.huge && len(d.digits) <= 400 && d.exp > -400 && d.exp < 400
}

// capValue returns v ready to be carried in a Diff: v itself when its JSON
// rendering fits in maxValueBytes, else that rendering cut short with a
// marker, as a string.
func capValue(v any) any {
	switch x := v.(type) {
	case nil, bool:
		return v
	case json.Number:
		if len(x) <= maxValueBytes {
			return v
		}
		return truncate(string(x), len(x))
	case string:
		if len(x) <= maxValueBytes {
			return v
		}
		return truncate(x, len(x))
	}
	b, full := renderCapped(nil, v, maxValueBytes+1, 0)
	if full && len(b) <= maxValueBytes {
		return v
	}
	return truncate(string(b), -1)
}

// capString caps a plain string (a text line, a header value) the same way.
func capString(s string) string {
	if len(s) <= maxValueBytes {
		return s
	}
	return truncate(s, len(s))
}

// truncate cuts s to maxValueBytes at a rune boundary and appends the
// marker; total is the full size, or -1 when unknown.
func truncate(s string, total int) string {
	cut := min(len(s), maxValueBytes)
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if total < 0 {
		return s[:cut] + "…[truncated]"
	}
	return s[:cut] + "…[truncated, " + strconv.Itoa(total) + " bytes]"
}

// renderCapped appends the JSON rendering of v (object members sorted) to b,
// stopping once b is longer than limit. full reports that it was not cut.
func renderCapped(b []byte, v any, limit, depth int) ([]byte, bool) {
	if len(b) > limit {
		return b, false
	}
	if depth > maxDepth {
		return append(b, "…"...), false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case json.Number:
		return append(b, x...), true
	case string:
		if len(x) > limit {
			x = x[:limit]
		}
		return jsonpath.AppendJSONString(b, x), len(b) <= limit
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var full bool
			if b, full = renderCapped(b, e, limit, depth+1); !full {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		b = append(b, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonpath.AppendJSONString(b, k)
			b = append(b, ':')
			var full bool
			if b, full = renderCapped(b, x[k], limit, depth+1); !full {
				return b, false
			}
		}
		return append(b, '}'), true
	default:
		return append(b, `"?"`...), true
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orderValues orders two decoded JSON values for sorting by a key member:
// by type rank, then numbers by value, strings bytewise, booleans false
// first; arrays and objects by their rendering. It returns -1, 0 or +1.
func orderValues(a, b any) int {
	ta, tb := typeOf(a), typeOf(b)
	if ta != tb {
		if ta < tb {
			return -1
		}
		return 1
	}
	switch x := a.(type) {
	case nil:
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case json.Number:
		return compareNumbers(x, b.(json.Number))
	case string:
		return strings.Compare(x, b.(string))
	default:
		ra, _ := renderCapped(nil, a, 4096, 0)
		rb, _ := renderCapped(nil, b, 4096, 0)
		return strings.Compare(string(ra), string(rb))
	}
}

// compareNumbers orders two JSON numbers by value, exactly and without
// allocating for numbers of ordinary size.
func compareNumbers(a, b json.Number) int {
	da, okA := parseDecimal(string(a))
	db, okB := parseDecimal(string(b))
	if !okA || !okB {
		return strings.Compare(string(a), string(b))
	}
	if da.huge || db.huge {
		fa, _ := strconv.ParseFloat(string(a), 64)
		fb, _ := strconv.ParseFloat(string(b), 64)
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return strings.Compare(da.key(), db.key())
	}
	sa, sb := da.sign(), db.sign()
	if sa != sb || sa == 0 {
		return cmpInt(sa, sb)
	}
	// Same sign, both non-zero: compare magnitudes 0.digits × 10^exp.
	mag := cmpInt(da.exp, db.exp)
	if mag == 0 {
		mag = strings.Compare(da.digits, db.digits)
	}
	return sa * mag
}

// sign returns -1, 0 or +1.
func (d decimal) sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpInt orders two integers.
func cmpInt[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
