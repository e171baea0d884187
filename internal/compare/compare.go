// Package compare decides whether two HTTP responses differ, and how: the
// comparison engine of miffy. A Comparer, built from Rules, lists the
// differences between a reference and a candidate response as Diffs; a
// Judge then classes each diff as a Regression or as Noise by comparing it
// with what a second reference instance (the secondary) does, and with
// recent history.
//
// # Diff paths
//
//	status            the status codes differ (values are the two ints)
//	header:<Name>     a header named in CompareHeaders differs (canonical name)
//	$...              a JSON path into JSON bodies, e.g. $.items[2].price or $["a.b"]
//	body:line:<N>     text bodies differ from line N on (see textDiff)
//	body              other bodies differ ({"length", "sha256"} per side), one
//	                  side is not valid JSON, a canonicalize filter failed, or
//	                  a limit was hit (the values then say why)
//
// Diffs come in that order: status, headers in sorted order, then the body;
// JSON diffs in document order with object members sorted by name. Rule
// paths (Ignore, Unordered) use the same syntax, see "Rule paths".
//
// # Bodies
//
// Each body's Content-Encoding is undone first (see DecodeBody), so a gzip
// reference and an identity candidate agree. Byte-equal bodies are equal
// (unless the two sides have different canonicalize filters). JSON bodies
// then go through the equal-answer fast path (see digest.go): a streaming
// 128-bit digest under the rules, with no tree built; only when the
// digests differ is the field-level walk below run. Then:
//
//   - If either Content-Type is JSON (IsJSON), or neither side has a
//     Content-Type and both bodies parse as JSON, the bodies are compared as
//     JSON values: member order does not matter, numbers compare by value
//     exactly (1 == 1.0 == 1e0, but 9007199254740993 != 9007199254740992),
//     or within FloatTolerance. A side that does not parse gives one "body"
//     diff; when neither parses they are compared as text.
//   - Otherwise textual types (text/*, XML, JavaScript, YAML, form data...)
//     and untyped UTF-8 bodies are compared line by line (see textDiff).
//   - Anything else is compared as bytes.
//
// Values in diffs are the decoded JSON values (json.Number for numbers, so
// that they marshal unchanged), or strings; any value whose JSON rendering
// is longer than 256 bytes is replaced by that rendering cut short with a
// "…[truncated]" marker. Nesting deeper than 1000 levels and more than 500
// diffs end the walk with a "body" diff saying so.
//
// # Rule paths
//
// Rules name parts of a JSON body with a small subset of JSONPath:
//
//	path  = "$" { step }
//	step  = "." name        a member of an object: $.items, $.user-id
//	      | "." "*"         any member or element (wildcard)
//	      | "[" digits "]"  an array element by index: $.items[0]
//	      | "[" "*" "]"     any element or member (wildcard)
//	      | "[" string "]"  a member whose name needs quoting, as a JSON
//	                        string: $["a.b"], $["*"] (a literal star)
//
// A name is a run of characters other than the dot, brackets, quotes
// (single or double) and white space. Both wildcards match exactly one
// level, whatever its kind; there is no recursive descent. "$" alone is the
// whole body.
//
// Diffs render paths the same way, quoting a member name unless it is an
// identifier ([A-Za-z_][A-Za-z0-9_]*), so every rendered path parses back
// to itself: $.items[2].price, $.meta["generated-at"], $["a.b"].
//
// # Unordered arrays
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
//
// # Noise
//
// A response can differ from the reference for reasons that have nothing to
// do with the candidate: timestamps, random ids, a cache. Like Twitter's
// Diffy, miffy tells those apart by also asking a secondary, a second
// instance of the reference: what differs between reference and secondary
// is noise. A Judge applies two rules to each candidate diff on a path p:
//
//	(a) the request has a secondary answer and p also differs between the
//	    reference and the secondary: Noise.
//	(b) over a sliding window, per endpoint, with R the requests whose
//	    reference/candidate diffs include p, N those whose
//	    reference/secondary diffs include p, and T the requests classified:
//	    unless R > N, |R-N|/(R+N) > Relative and |R-N|/T > Absolute, Noise.
//
// Otherwise the diff is a Regression. Paths are matched with their array
// indexes replaced by [*] ($.items[3].ts and $.items[7].ts count together)
// and each path counts at most once per request; the Diff keeps its real
// path. Diffs at "status" and "error" are always Regressions.
//
// The window is kept as 10 time buckets of Window/10 each, on the clock
// given to NewJudge. Memory is bounded: at most 1000 endpoints and 10000
// paths (over all endpoints) are tracked; past that, new ones are judged by
// rule (a) only, until entries with nothing left in the window are dropped.
package compare

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"unicode/utf8"
)

// maxDecodedBytes caps a body after Compare undoes its Content-Encoding, so
// that a compression bomb cannot exhaust memory. Bodies cut there are
// compared as far as they go.
const maxDecodedBytes = 64 << 20

// Response is one side's answer. Body is the raw body as received; if
// Header has a Content-Encoding (gzip, deflate, br) Compare decodes it
// first.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Comparer compares responses under compiled Rules. It is safe for
// concurrent use.
type Comparer struct {
	c     *compiled
	seed  maphash.Seed
	seed2 maphash.Seed // the digest's second lane (see fastEqual)

	digesters sync.Pool // of *digester, for fastEqual
}

// New compiles r. Errors name the key they are about, like Validate.
func New(r Rules) (*Comparer, error) {
	c, err := compileRules(r)
	if err != nil {
		return nil, err
	}
	cmp := &Comparer{c: c, seed: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	cmp.digesters.New = func() any { return cmp.newDigester() }
	return cmp, nil
}

// Compare lists the differences between the reference and the candidate;
// nil when they are equal. A status difference is always reported, and
// the bodies are compared whatever the statuses. Compare never panics: an
// internal error becomes a "body" diff saying so.
func (c *Comparer) Compare(ref, cand Response) (diffs []Diff) {
	defer func() {
		if p := recover(); p != nil {
			diffs = append(diffs, reasonDiff(capString(fmt.Sprintf("internal error comparing: %v", p))))
		}
	}()
	return c.compare(ref, cand)
}

// compare is Compare without the recover, so that fuzzing sees panics.
func (c *Comparer) compare(ref, cand Response) []Diff {
	var diffs []Diff
	if ref.Status != cand.Status {
		diffs = append(diffs, Diff{Path: "status", Kind: Changed, Reference: ref.Status, Candidate: cand.Status})
	}
	diffs = append(diffs, headerDiffs(c.c.headers, ref.Header, cand.Header)...)
	diffs = append(diffs, c.body(ref, cand)...)
	if len(diffs) == 0 {
		return nil
	}
	return diffs
}

// body compares the bodies, after undoing any Content-Encoding.
func (c *Comparer) body(ref, cand Response) []Diff {
	rb, rerr := decodeForCompare(ref)
	cb, cerr := decodeForCompare(cand)
	if rerr != nil || cerr != nil {
		if rerr != nil && cerr != nil && bytes.Equal(ref.Body, cand.Body) {
			return nil
		}
		d := Diff{Path: "body", Kind: Changed, Reference: summary(rb), Candidate: summary(cb)}
		if rerr != nil {
			d.Reference = rerr.Error()
		}
		if cerr != nil {
			d.Candidate = cerr.Error()
		}
		return []Diff{d}
	}
	sameFilter := c.c.canonRef == c.c.canonCand
	if sameFilter && bytes.Equal(rb, cb) {
		return nil
	}
	rct, cct := ref.Header.Get("Content-Type"), cand.Header.Get("Content-Type")
	switch {
	case IsJSON(rct) || IsJSON(cct):
		if c.fastEqual(rb, cb) {
			return nil
		}
		return c.jsonBodies(rb, cb, nil, nil)
	case rct == "" && cct == "":
		// Neither side says: JSON if both parse, else text or bytes.
		if c.fastEqual(rb, cb) {
			return nil // both are JSON, and equal
		}
		va, ea := c.decode(rb)
		vb, eb := c.decode(cb)
		if ea == nil && eb == nil {
			return c.jsonBodies(rb, cb, va, vb)
		}
		if utf8.Valid(rb) && utf8.Valid(cb) {
			return textDiff(rb, cb)
		}
		return bytesDiff(rb, cb)
	case isText(rct) || isText(cct):
		return textDiff(rb, cb)
	default:
		return bytesDiff(rb, cb)
	}
}

// decodeForCompare returns a response's body with its Content-Encoding
// undone, cut at maxDecodedBytes.
func decodeForCompare(r Response) ([]byte, error) {
	d, _, err := Decoded(r, maxDecodedBytes)
	if err != nil {
		return nil, fmt.Errorf("content-encoding: %w", err)
	}
	return d.Body[:min(len(d.Body), maxDecodedBytes)], nil
}

// jsonBodies compares two bodies as JSON; va and vb are their decoded
// values when already known. A side that does not parse gives one "body"
// diff, unless neither parses: then they are compared as text (or bytes).
func (c *Comparer) jsonBodies(rb, cb []byte, va, vb any) []Diff {
	var ea, eb error
	if va == nil {
		va, ea = c.decode(rb)
	}
	if vb == nil {
		vb, eb = c.decode(cb)
	}
	switch {
	case ea != nil && eb != nil && ea != errTooDeep && eb != errTooDeep:
		if utf8.Valid(rb) && utf8.Valid(cb) {
			return textDiff(rb, cb)
		}
		return bytesDiff(rb, cb)
	case ea != nil || eb != nil:
		d := Diff{Path: "body", Kind: Changed, Reference: capValue(va), Candidate: capValue(vb)}
		if ea != nil {
			d.Reference = notJSON(rb, ea)
		}
		if eb != nil {
			d.Candidate = notJSON(cb, eb)
		}
		return []Diff{d}
	}
	ctx := context.Background()
	var fa, fb error
	if c.c.canonRef != nil {
		va, fa = c.c.canonRef.run(ctx, va)
	}
	if c.c.canonCand != nil {
		vb, fb = c.c.canonCand.run(ctx, vb)
	}
	if fa != nil || fb != nil {
		d := Diff{Path: "body", Kind: Changed}
		if fa != nil {
			d.Reference = "canonicalize: " + fa.Error()
		}
		if fb != nil {
			d.Candidate = "canonicalize: " + fb.Error()
		}
		return []Diff{d}
	}
	w := walker{ruleStates: ruleStates{c: c.c}, seed: c.seed}
	sp, ignored := w.root()
	if !ignored {
		w.value(va, vb, sp, 0)
	}
	return w.diffs
}

// notJSON describes a side whose body is not JSON: the reason when it is
// nested too deep, else the body (or its digest).
func notJSON(b []byte, err error) any {
	if err == errTooDeep {
		return err.Error()
	}
	return summary(b)
}
