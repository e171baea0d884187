package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// readResponse reads a response head. The common kind (HTTP/1.1, a final
// status, framed by one Content-Length, a head within the read buffer, no
// field net/http might read otherwise) is parsed here, with a few
// allocations; anything else, and any error, is left to
// http.ReadResponse, on the same buffered bytes. A common response is
// read into x.
func readResponse(br *bufio.Reader, req *http.Request, x *exch) (*http.Response, error) {
	if readCommon(br, req.Method, x) {
		return &x.resp, nil
	}
	return http.ReadResponse(br, req)
}

// exch is the one allocation of an exchange: the body handed to the
// caller and, for a response of the common kind, the response itself and
// the framing under its body.
type exch struct {
	resp http.Response
	body body
	cl   clBody
}

// readCommon reads the response into x if its head is of the common kind,
// and reports false (having consumed nothing) if not.
func readCommon(br *bufio.Reader, method string, x *exch) bool {
	if method == "HEAD" {
		return false
	}
	n := 0
	for from := 0; ; {
		b, _ := br.Peek(br.Buffered())
		i := bytes.Index(b[from:], []byte("\r\n\r\n"))
		if i >= 0 {
			n = from + i + 4
			break
		}
		if len(b) >= br.Size() {
			return false
		}
		if from = len(b) - 3; from < 0 {
			from = 0
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return false
		}
	}
	raw, _ := br.Peek(n)
	resp := &x.resp
	if !parseCommon(raw, resp) {
		*resp = http.Response{}
		return false
	}
	br.Discard(n)
	if resp.ContentLength == 0 {
		resp.Body = http.NoBody
	} else {
		x.cl = clBody{br: br, remain: resp.ContentLength}
		resp.Body = &x.cl
	}
	return true
}

// plainLines reports whether every CR and LF in b is part of a CRLF, and
// b holds no NUL (vectorised counts: quicker than a loop over the bytes).
func plainLines(b []byte) bool {
	crlf := bytes.Count(b, []byte("\r\n"))
	return bytes.IndexByte(b, 0) < 0 && bytes.Count(b, []byte("\n")) == crlf && bytes.Count(b, []byte("\r")) == crlf
}

// parseCommon parses a whole head into resp, or reports false if it is
// not of the common kind.
func parseCommon(raw []byte, resp *http.Response) bool {
	if !plainLines(raw) {
		return false // bare CR or LF, NUL: net/http's reading decides
	}
	s := string(raw) // one copy; the strings below point into it
	le := indexOf(s, "\r\n")
	line := s[:le]
	// "HTTP/1.1 200 OK": three digits, then a space or the end.
	if len(line) < 12 || line[:9] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return false
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == 204 || code == 304 {
		return false
	}
	rest := s[le+2 : len(s)-2]
	nf := countByte(rest, '\n')
	vals := make([]string, nf)
	*resp = http.Response{
		Status:        line[9:],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, nf),
		ContentLength: -1,
	}
	for len(rest) > 0 {
		e := indexOf(rest, "\r\n")
		f := rest[:e]
		rest = rest[e+2:]
		colon := indexOf(f, ":")
		if colon <= 0 {
			return false
		}
		name := f[:colon]
		for i := 0; i < len(name); i++ {
			if !httpsyntax.IsToken(name[i]) {
				return false
			}
		}
		value := httpsyntax.TrimOWS(f[colon+1:])
		if !httpsyntax.ValidValue(value) {
			return false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Content-Length":
			if resp.ContentLength >= 0 {
				return false
			}
			cl, err := strconv.ParseInt(value, 10, 64)
			if err != nil || cl < 0 || value[0] == '+' {
				return false
			}
			resp.ContentLength = cl
		case "Transfer-Encoding", "Trailer":
			return false
		case "Connection":
			if httpsyntax.HasToken(value, "close") {
				resp.Close = true
			}
		}
		if prior, ok := resp.Header[key]; ok {
			resp.Header[key] = append(prior, value)
			continue
		}
		vals[0] = value
		resp.Header[key] = vals[:1:1]
		vals = vals[1:]
	}
	if resp.ContentLength < 0 {
		return false // read to the close: net/http's
	}
	if resp.Close {
		delete(resp.Header, "Connection") // as net/http does
	}
	return true
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
