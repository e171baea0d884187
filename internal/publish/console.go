package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Console prints every compared request as REQUEST/RESPONSE lines
// ([publish] console = true):
//
//	REQUEST <id> => (GET /api/3, headers: accept=*/*, authorization=[REDACTED])
//	RESPONSE <id> reference => (200, 1.2ms, 27 bytes, sha256:abcd1234…)
//	RESPONSE <id> secondary => (200, 1.1ms, 27 bytes, sha256:…)
//	RESPONSE <id> candidate => (error: timeout, 5000.0ms)
//	DIFF <id> regression $.price
//
// The secondary line comes only when there is one, DIFF lines only when there are differences.
// Headers are redacted like records. It is safe for concurrent use: each
// request's block is one Write.
type Console struct {
	enc *Encoder
	mu  sync.Mutex
	w   io.Writer
}

var _ interface{ Publish(*Record) bool } = (*Console)(nil)

// NewConsole returns a Console writing to w, redacting with enc.
func NewConsole(w io.Writer, enc *Encoder) *Console {
	return &Console{enc: enc, w: w}
}

// Publish prints r; it returns false if the write failed.
func (c *Console) Publish(r *Record) bool {
	b := make([]byte, 0, 512)
	b = append(b, "REQUEST "...)
	b = append(b, r.ID...)
	b = append(b, " => ("...)
	b = append(b, r.Request.Method...)
	b = append(b, ' ')
	b = append(b, c.enc.RedactURI(r.Request.URI)...)
	b = append(b, ", headers: "...)
	b = c.appendHeaders(b, r.Request.Header)
	b = append(b, ")\n"...)
	b = appendConsoleSide(b, r.ID, "reference", &r.Reference)
	if r.Secondary != nil {
		b = appendConsoleSide(b, r.ID, "secondary", r.Secondary)
	}
	b = appendConsoleSide(b, r.ID, "candidate", &r.Candidate)
	for _, d := range r.Diffs {
		b = append(b, "DIFF "...)
		b = append(b, r.ID...)
		b = append(b, ' ')
		b = append(b, d.Class...)
		b = append(b, ' ')
		b = append(b, d.Path...)
		b = append(b, '\n')
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(b)
	return err == nil
}

// appendHeaders appends name=value pairs, lower-case names in order, several
// values joined with ", ", redacted values as [REDACTED].
func (c *Console) appendHeaders(b []byte, h http.Header) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareFold)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, strings.ToLower(k)...)
		b = append(b, '=')
		if c.enc.isRedactedHeader(k) {
			b = append(b, redacted...)
			continue
		}
		for j, v := range h[k] {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = append(b, c.enc.headerValue(k, v)...)
		}
	}
	return b
}

// appendConsoleSide appends one RESPONSE line.
func appendConsoleSide(b []byte, id, role string, s *Side) []byte {
	b = append(b, "RESPONSE "...)
	b = append(b, id...)
	b = append(b, ' ')
	b = append(b, role...)
	b = append(b, " => ("...)
	ms := strconv.AppendFloat(nil, float64(s.Duration.Microseconds())/1000, 'f', 1, 64)
	if s.Err != nil {
		b = append(b, "error: "...)
		b = append(b, ErrorKind(s.Err)...)
		b = append(b, ", "...)
		b = append(b, ms...)
		return append(b, "ms)\n"...)
	}
	sum := sha256.Sum256(s.Body)
	b = strconv.AppendInt(b, int64(s.Status), 10)
	b = append(b, ", "...)
	b = append(b, ms...)
	b = append(b, "ms, "...)
	b = strconv.AppendInt(b, int64(len(s.Body)), 10)
	b = append(b, " bytes, sha256:"...)
	b = hex.AppendEncode(b, sum[:4])
	return append(b, "…)\n"...)
}
