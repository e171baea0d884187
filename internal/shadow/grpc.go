package shadow

import (
	"encoding/binary"
	"io"
	"net/http"
	"strings"
)

// isGRPC reports whether r is a gRPC call (RFC-less but stable: the
// content type "application/grpc", optionally "+proto" and the like).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;")
}

// streamTee passes a request body that must flow (a gRPC call: its
// messages are not known to end before the answer starts) and keeps a
// copy of it, up to limit, for a replay once the call is over.
type streamTee struct {
	rc    io.ReadCloser
	limit int64
	buf   []byte
	over  bool // more than limit came: not replayed
	ended bool // the body was read to its end
}

func (t *streamTee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && !t.over {
		if int64(len(t.buf)+n) > t.limit {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	if err == io.EOF {
		t.ended = true
	}
	return n, err
}

func (t *streamTee) Close() error { return t.rc.Close() }

// unary returns the whole body of a call that sent exactly one message
// and ended: a unary (or server-streaming) call, which can be replayed.
// Client and bidirectional streams, and bodies over the limit, give nil.
func (t *streamTee) unary() ([]byte, bool) {
	if !t.ended || t.over {
		return nil, false
	}
	b := t.buf
	// A gRPC message: a compression flag, a 4-byte length, the message.
	if len(b) < 5 || int64(binary.BigEndian.Uint32(b[1:5])) != int64(len(b)-5) {
		return nil, false
	}
	return b, true
}
