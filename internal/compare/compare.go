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
// JSON diffs in document order with object members sorted by name.
package compare

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
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
	c    *compiled
	seed maphash.Seed
}

// New compiles r. Errors name the key they are about, like Validate.
func New(r Rules) (*Comparer, error) {
	c, err := compileRules(r)
	if err != nil {
		return nil, err
	}
	return &Comparer{c: c, seed: maphash.MakeSeed()}, nil
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
		return c.jsonBodies(rb, cb, nil, nil)
	case rct == "" && cct == "":
		// Neither side says: JSON if both parse, else text or bytes.
		va, ea := decodeJSON(rb)
		vb, eb := decodeJSON(cb)
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
	b, _, err := DecodeBody(r.Header, r.Body, maxDecodedBytes)
	if err != nil {
		return nil, fmt.Errorf("content-encoding: %w", err)
	}
	return b, nil
}

// jsonBodies compares two bodies as JSON; va and vb are their decoded
// values when already known. A side that does not parse gives one "body"
// diff, unless neither parses: then they are compared as text (or bytes).
func (c *Comparer) jsonBodies(rb, cb []byte, va, vb any) []Diff {
	var ea, eb error
	if va == nil {
		va, ea = decodeJSON(rb)
	}
	if vb == nil {
		vb, eb = decodeJSON(cb)
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
	w := walker{c: c.c, seed: c.seed}
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
