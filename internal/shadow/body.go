package shadow

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// reqBody is a client's request body as its call forwards it. The stages
// that need it in memory (the decision service, a canary retry, the
// replay, a debug line) read it through fill, each to its own limit, once:
// what was read stays here, and the rest streams on after it. The inbound
// request is never written to.
type reqBody struct {
	rc    io.ReadCloser // the client's (within MaxRequestBodyBytes); nil: none
	buf   []byte        // what has been read
	whole bool          // buf is all of it
}

// newReqBody is r's body, limited to max bytes (0: no limit) when the
// client has not already said it is longer: that is errTooLarge.
func newReqBody(w http.ResponseWriter, r *http.Request, max int64) (reqBody, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return reqBody{whole: true}, nil
	}
	if max <= 0 {
		return reqBody{rc: r.Body}, nil
	}
	if r.ContentLength > max {
		return reqBody{}, errTooLarge
	}
	return reqBody{rc: http.MaxBytesReader(w, r.Body, max)}, nil
}

// fill reads the body into memory up to limit bytes and reports whether it
// is all there now. A longer body is read to limit+1 bytes and left to
// stream. An error is the client's: its body could not be read (see
// bodyError).
func (b *reqBody) fill(limit int64) (whole bool, err error) {
	if b.whole || int64(len(b.buf)) > limit {
		return b.whole, nil
	}
	more, err := io.ReadAll(io.LimitReader(b.rc, limit+1-int64(len(b.buf))))
	if b.buf == nil {
		b.buf = more
	} else {
		b.buf = append(b.buf, more...)
	}
	if err != nil {
		return false, err
	}
	b.whole = int64(len(b.buf)) <= limit
	return b.whole, nil
}

// has reports whether there is a body at all.
func (b *reqBody) has() bool { return len(b.buf) > 0 || b.rc != nil && !b.whole }

// bytes is the whole body when it is in memory, else nil.
func (b *reqBody) bytes() []byte {
	if !b.whole {
		return nil
	}
	return b.buf
}

// stream is the body to send as it comes: what was read, then the rest.
func (b *reqBody) stream() io.ReadCloser {
	if len(b.buf) == 0 {
		return b.rc
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b.buf), b.rc), b.rc}
}

// teeStream makes the body flow to the reference through a streamTee that
// keeps a copy (up to limit), and returns the tee.
func (b *reqBody) teeStream(limit int64) *streamTee {
	t := &streamTee{rc: b.stream(), limit: limit}
	b.rc, b.buf = t, nil
	return t
}

// errTooLarge is a request body over MaxRequestBodyBytes, by its
// Content-Length.
var errTooLarge = &http.MaxBytesError{}

// bodyError is the client's answer for a body that could not be read: 413
// over the limit, else 400.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return refusal{status: http.StatusRequestEntityTooLarge, msg: "miffy: request body too large"}
	}
	return refusal{status: http.StatusBadRequest, msg: "miffy: bad request body"}
}
