package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// headError is an upstream answer refused for its head. ErrorKind names it
// for records and metrics ("error_kind").
type headError struct{ kind, msg string }

func (e *headError) Error() string     { return e.msg }
func (e *headError) ErrorKind() string { return e.kind }

var (
	// ErrResponseHeaderTooLarge is returned for a response head longer
	// than Config.MaxResponseHeaderBytes.
	ErrResponseHeaderTooLarge error = &headError{"response_header_too_large", "response header too large"}
	// ErrMalformedResponse is wrapped by the errors for a response head
	// that breaks HTTP/1.1's syntax or framing rules: a bare CR or LF, a
	// NUL, an obs-folded or nameless field, a status outside 100..599, a
	// signed or non-numeric Content-Length, Content-Length values that
	// differ, Content-Length with Transfer-Encoding.
	ErrMalformedResponse error = &headError{"malformed_response", "malformed response"}
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}

// readResponse reads a response head of at most max bytes from *brp. The
// whole head is buffered and checked first (readHead, checkHead); *brp is
// replaced by a larger reader where the head does not fit in it. The
// common kind (HTTP/1.1, a final status, framed by one Content-Length, no
// field net/http might read otherwise) is parsed here, into x, with a few
// allocations; any other head, already checked, is left to
// http.ReadResponse on the same buffered bytes. src is what *brp reads
// from.
func readResponse(brp **bufio.Reader, src io.Reader, req *http.Request, x *exch, max int) (*http.Response, error) {
	n, err := readHead(brp, src, max)
	if err != nil {
		return nil, err
	}
	br := *brp
	raw, _ := br.Peek(n)
	resp := &x.resp
	common, err := checkHead(raw, req.Method, resp)
	if err != nil {
		*resp = http.Response{}
		return nil, err
	}
	if !common {
		*resp = http.Response{}
		r, err := http.ReadResponse(br, req)
		if err != nil {
			// The head is checked and buffered whole: what net/http
			// refuses is in it (an unknown transfer coding).
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		return r, nil
	}
	br.Discard(n)
	if resp.ContentLength == 0 {
		resp.Body = http.NoBody
	} else {
		x.cl = clBody{br: br, remain: resp.ContentLength}
		resp.Body = &x.cl
	}
	return resp, nil
}

// exch is the one allocation of an exchange: the body handed to the
// caller and, for a response of the common kind, the response itself and
// the framing under its body.
type exch struct {
	resp http.Response
	body body
	cl   clBody
}

var headEnd = []byte("\r\n\r\n")

// readHead waits until a whole head (up to its empty line) is buffered in
// *brp and returns its length. A head that breaks its lines with a bare
// LF or CR, or holds a NUL, fails as soon as that is buffered, not when
// an empty line (which may never come) is; one longer than max fails
// with ErrResponseHeaderTooLarge once max bytes are read, so no more than
// max bytes are ever held for it. Where the head outgrows the reader's
// buffer, *brp is replaced by a larger reader on src that starts with
// the bytes buffered so far.
func readHead(brp **bufio.Reader, src io.Reader, max int) (int, error) {
	br := *brp
	from, checked := 0, 0
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.Index(b[from:], headEnd); i >= 0 {
			n := from + i + len(headEnd)
			if n > max {
				return 0, ErrResponseHeaderTooLarge
			}
			return n, nil
		}
		if len(b) >= max {
			return 0, ErrResponseHeaderTooLarge
		}
		// The bytes so far are all head: refuse bad line breaks now.
		var err error
		if checked, err = checkBreaks(b, checked); err != nil {
			return 0, err
		}
		if from = len(b) - 3; from < 0 {
			from = 0
		}
		if len(b) >= br.Size() {
			br = grow(br, src, min(4*br.Size(), max))
			*brp = br
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// checkBreaks checks b[from:] for a NUL, an LF not after a CR and a CR
// not before an LF; a CR that ends b is left for the next call, which
// starts where this one stopped.
func checkBreaks(b []byte, from int) (int, error) {
	for i := from; i < len(b); i++ {
		switch b[i] {
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return i, malformed("bare LF in the head")
			}
		case '\r':
			if i+1 == len(b) {
				return i, nil
			}
			if b[i+1] != '\n' {
				return i, malformed("bare CR in the head")
			}
		case 0:
			return i, malformed("NUL in the head")
		}
	}
	return len(b), nil
}

// grow returns a reader of the given size on src that starts with what
// br has buffered.
func grow(br *bufio.Reader, src io.Reader, size int) *bufio.Reader {
	b, _ := br.Peek(br.Buffered())
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), src), size)
}

// plainLines reports whether every CR and LF in b is part of a CRLF, and
// b holds no NUL (vectorised counts: quicker than a loop over the bytes).
func plainLines(b []byte) bool {
	crlf := bytes.Count(b, []byte("\r\n"))
	return bytes.IndexByte(b, 0) < 0 && bytes.Count(b, []byte("\n")) == crlf && bytes.Count(b, []byte("\r")) == crlf
}

// checkHead checks a whole head (ending in its empty line) against
// HTTP/1.1's syntax and framing rules, and reports whether it is of the
// common kind, which it then parses into resp. Any head it accepts,
// http.ReadResponse reads as meant.
func checkHead(raw []byte, method string, resp *http.Response) (common bool, err error) {
	if !plainLines(raw) {
		_, err := checkBreaks(raw, 0)
		if err == nil {
			err = malformed("bad line break in the head")
		}
		return false, err
	}
	s := string(raw) // one copy; the strings below point into it
	le := indexOf(s, "\r\n")
	line := s[:le]
	code, err := checkStatusLine(line)
	if err != nil {
		return false, err
	}
	h := headFields{resp: resp, cl: -1}
	h.common = method != http.MethodHead && line[7] == '1' && code >= 200 && code != 204 && code != 304
	rest := s[le+2 : len(s)-2]
	if h.common {
		nf := countByte(rest, '\n')
		h.vals = make([]string, nf)
		*resp = http.Response{
			Status:     line[9:],
			StatusCode: code,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     make(http.Header, nf),
		}
	}
	for len(rest) > 0 {
		e := indexOf(rest, "\r\n")
		if err := h.field(rest[:e]); err != nil {
			return false, err
		}
		rest = rest[e+2:]
	}
	if h.te && h.cl >= 0 {
		// RFC 9112 section 6.3: a sign of smuggling, handled as an error.
		return false, malformed("both Content-Length and Transfer-Encoding")
	}
	if !h.common || h.cl < 0 {
		return false, nil // read to the close: net/http's
	}
	resp.ContentLength = h.cl
	if resp.Close {
		delete(resp.Header, "Connection") // as net/http does
	}
	return true, nil
}

// checkStatusLine checks "HTTP/1.1 200 OK" (three digits, then a space and
// a reason, or the end) and returns the status code.
func checkStatusLine(line string) (int, error) {
	if len(line) < 12 || (line[:9] != "HTTP/1.1 " && line[:9] != "HTTP/1.0 ") || (len(line) > 12 && line[12] != ' ') {
		return 0, malformed("status line %.40q", line)
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return 0, malformed("status line %.40q", line)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return 0, malformed("status %d outside 100..599", code)
	}
	if !httpsyntax.ValidValue(line[12:]) {
		return 0, malformed("status line %.40q", line)
	}
	return code, nil
}

// headFields is what checkHead learns from the fields of a head.
type headFields struct {
	resp   *http.Response // filled while the head is common
	common bool           // the head is of the common kind (see checkHead)
	vals   []string       // backing array of resp's header values
	cl     int64          // Content-Length; -1 if none
	te     bool           // a Transfer-Encoding field was seen
}

// field checks one field line and, while the head is common, adds it to
// resp's header.
func (h *headFields) field(f string) error {
	colon := indexOf(f, ":")
	if colon <= 0 {
		return malformed("field %.40q", f)
	}
	name := f[:colon]
	for i := 0; i < len(name); i++ {
		if !httpsyntax.IsToken(name[i]) {
			// obs-fold lands here too: its line starts with a space.
			return malformed("field name %.40q", name)
		}
	}
	value := httpsyntax.TrimOWS(f[colon+1:])
	if !httpsyntax.ValidValue(value) {
		return malformed("value of %.40q", name)
	}
	switch {
	case httpsyntax.EqualFold(name, "Content-Length"):
		n, ok := parseLength(value)
		if !ok {
			return malformed("Content-Length %.40q", value)
		}
		if h.cl >= 0 {
			if n != h.cl {
				return malformed("Content-Length values differ")
			}
			h.common = false // net/http folds them into one
		}
		h.cl = n
	case httpsyntax.EqualFold(name, "Transfer-Encoding"):
		h.te = true
		h.common = false
	case httpsyntax.EqualFold(name, "Trailer"):
		h.common = false
	case httpsyntax.EqualFold(name, "Connection") && h.common:
		if httpsyntax.HasToken(value, "close") {
			h.resp.Close = true
		}
	}
	if !h.common {
		return nil
	}
	key := textproto.CanonicalMIMEHeaderKey(name)
	if prior, ok := h.resp.Header[key]; ok {
		h.resp.Header[key] = append(prior, value)
		return nil
	}
	h.vals[0] = value
	h.resp.Header[key] = h.vals[:1:1]
	h.vals = h.vals[1:]
	return nil
}

// parseLength parses a Content-Length value: 1*DIGIT, no sign, within
// int64.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// clBody is a body framed by Content-Length.
type clBody struct {
	br     *bufio.Reader
	remain int64
}

func (b *clBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *clBody) Close() error { return nil }

func indexOf(s, sep string) int {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return i
		}
	}
	return -1
}

func countByte(s string, c byte) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}
