package server

import (
	"bytes"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// framing is how a request head says its body is framed.
type framing struct {
	length  int64 // Content-Length; 0 when absent
	chunked bool
}

// parseHead judges a request head: lines that each end in CRLF (the blank
// line after them cut off), already free of bare CR and LF. It returns the
// body's framing, or the reason the head is refused.
func parseHead(head []byte) (f framing, reason string) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	method, line, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(line, []byte{' '})
	switch {
	case !ok1 || !ok2 || !isToken(method):
		return f, "request_line"
	case !targetOK(target):
		return f, "request_target"
	}
	http10 := false
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		http10 = true
	default:
		return f, "version"
	}

	var cl, te int
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := fieldLine(line)
		if !ok {
			return f, "field"
		}
		switch {
		case httpsyntax.EqualFold(string(name), "Content-Length"):
			if cl++; cl > 1 {
				return f, "content_length"
			}
			n, ok := parseLength(value)
			if !ok {
				return f, "content_length"
			}
			f.length = n
		case httpsyntax.EqualFold(string(name), "Transfer-Encoding"):
			if te++; te > 1 || http10 || !httpsyntax.EqualFold(string(value), "chunked") {
				return f, "transfer_encoding"
			}
			f.chunked = true
		}
	}
	if cl > 0 && te > 0 {
		return framing{}, "content_length_and_transfer_encoding"
	}
	return f, ""
}

// fieldsOK reports whether every line of a block (each ending in CRLF) is a
// well-formed field line.
func fieldsOK(block []byte) bool {
	for len(block) > 0 {
		var line []byte
		line, block, _ = bytes.Cut(block, []byte("\r\n"))
		if _, _, ok := fieldLine(line); !ok {
			return false
		}
	}
	return true
}

// fieldLine splits a field line into its name and its value without the
// whitespace around it. A line that starts with whitespace (obs-fold), a
// name that is not a token or has whitespace before the colon, and a value
// with control bytes other than HTAB are refused.
func fieldLine(line []byte) (name, value []byte, ok bool) {
	name, value, ok = bytes.Cut(line, []byte{':'})
	if !ok || !isToken(name) {
		return nil, nil, false
	}
	value = bytes.Trim(value, " \t")
	return name, value, httpsyntax.ValidValue(string(value))
}

// parseLength parses a Content-Length value: digits only (no sign, no
// list), at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// chunkSize parses a chunk-size line (without its CRLF): hex digits, then
// optional extensions after ";" that hold no control bytes.
func chunkSize(line []byte) (int64, bool) {
	hex, ext, _ := bytes.Cut(line, []byte{';'})
	n, ok := httpsyntax.ChunkSize(hex)
	return n, ok && httpsyntax.ValidValue(string(ext))
}

// targetOK reports whether a request-target is in origin form ("/...") or
// absolute form ("http://..."), with no control bytes, spaces or DEL. The
// asterisk form and the authority form are refused: miffy forwards neither.
func targetOK(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if t[0] != '/' && !hasSchemePrefix(t) {
		return false
	}
	for _, b := range t {
		if b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

func hasSchemePrefix(t []byte) bool {
	return len(t) > 7 && httpsyntax.EqualFold(string(t[:7]), "http://") ||
		len(t) > 8 && httpsyntax.EqualFold(string(t[:8]), "https://")
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	for _, c := range b {
		if !httpsyntax.IsToken(c) {
			return false
		}
	}
	return len(b) > 0
}
