package compare

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
)

// ErrUnknownEncoding is wrapped by DecodeBody for a Content-Encoding it
// cannot undo.
var ErrUnknownEncoding = errors.New("unknown content encoding")

// DecodeBody undoes the Content-Encoding of h on body: gzip, x-gzip, deflate
// (zlib-wrapped, or raw as some servers send it), br and identity. A list
// such as "gzip, br" (or several Content-Encoding lines) was applied in
// order, so it is undone in reverse. An unknown encoding, or a body that does
// not decode, is an error. The decoders are chained as streams, so no
// intermediate layer is held in memory.
//
// The output is capped at maxBytes (0 means no cap); truncated reports that
// there was more. An empty body, or a header without Content-Encoding,
// returns body itself.
func DecodeBody(h http.Header, body []byte, maxBytes int64) (out []byte, truncated bool, err error) {
	encs := contentEncodings(h)
	if len(encs) == 0 || len(body) == 0 {
		if maxBytes > 0 && int64(len(body)) > maxBytes {
			return body[:maxBytes], true, nil
		}
		return body, false, nil
	}
	var r io.Reader = bytes.NewReader(body)
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close() // readers of in-memory data; nothing to report
		}
	}()
	for i := len(encs) - 1; i >= 0; i-- {
		switch encs[i] {
		case "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, false, fmt.Errorf("decoding gzip: %w", err)
			}
			closers = append(closers, zr)
			r = zr
		case "deflate":
			br := bufio.NewReader(r)
			if isZlibHeader(br) {
				zr, err := zlib.NewReader(br)
				if err != nil {
					return nil, false, fmt.Errorf("decoding deflate: %w", err)
				}
				closers = append(closers, zr)
				r = zr
			} else {
				fr := flate.NewReader(br)
				closers = append(closers, fr)
				r = fr
			}
		case "br":
			r = brotli.NewReader(r)
		default:
			return nil, false, fmt.Errorf("decoding body: %w %q", ErrUnknownEncoding, encs[i])
		}
	}
	if maxBytes > 0 {
		r = io.LimitReader(r, maxBytes+1)
	}
	out, err = io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("decoding %s body: %w", strings.Join(encs, ", "), err)
	}
	if maxBytes > 0 && int64(len(out)) > maxBytes {
		return out[:maxBytes], true, nil
	}
	return out, false, nil
}

// Decoded returns r with its Content-Encoding undone (see DecodeBody), the
// body cut at maxBytes (0: no cap; truncated says so), and the
// Content-Encoding and Content-Length fields gone from a copy of its
// header: the answer as Compare compares it, and as a record shows it. A
// response without a Content-Encoding, or with an empty body, is returned
// as it is. It is miffy's one way of decoding an answer.
func Decoded(r Response, maxBytes int64) (d Response, truncated bool, err error) {
	if len(r.Body) == 0 || len(contentEncodings(r.Header)) == 0 {
		return r, false, nil
	}
	body, truncated, err := DecodeBody(r.Header, r.Body, maxBytes)
	if err != nil {
		return r, false, err
	}
	h := r.Header.Clone()
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	return Response{Status: r.Status, Header: h, Body: body}, truncated, nil
}

// contentEncodings returns the lower-cased codings of h's Content-Encoding
// lines in the order they were applied, without empty entries.
func contentEncodings(h http.Header) []string {
	var encs []string
	for _, line := range h.Values("Content-Encoding") {
		for _, e := range strings.Split(line, ",") {
			if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
				encs = append(encs, e)
			}
		}
	}
	return encs
}

// isZlibHeader reports whether the stream starts with a zlib header (RFC
// 1950): deflate method, window <= 32K, and a valid header check.
func isZlibHeader(r *bufio.Reader) bool {
	b, err := r.Peek(2)
	if err != nil || len(b) < 2 {
		return false
	}
	cmf, flg := b[0], b[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}
