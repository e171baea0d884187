package front

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// bufferBeforeChunking is how much body a response holds back before
// its head goes out: a handler that finishes within it gets a
// Content-Length, as with net/http.
const bufferBeforeChunking = 2048

// response is the fast path's http.ResponseWriter (and http.Flusher). Its
// head is fixed when WriteHeader is called: the fields are written to a
// buffer then, so that later changes to the map (trailer values) do not
// show, without copying the map.
type response struct {
	c      *conn
	req    *http.Request
	body   *reqBody
	header http.Header

	status      int
	wroteHeader bool // WriteHeader called (with a final status)
	headerOut   bool // the head is in the write buffer
	handlerDone bool

	cl       int64 // the announced Content-Length, or -1
	written  int64
	chunking bool
	// closeAfter: the connection closes after this response.
	closeAfter bool

	// Fixed by WriteHeader, used when the head goes out.
	te        string   // the handler's Transfer-Encoding
	conn      string   // the handler's Connection
	connField []string // all of it, as at WriteHeader
	hasConn   bool
	hasDate   bool
	sniff     bool // no Content-Type (nor Content-Encoding): sniff the body
	trailers  bool // trailers declared (Trailer) or set (TrailerPrefix)
	declared  []string
	pending   []byte // body held back, in c.pend
	err       error  // the first write error
	// The handler's own Content-Length field: net/http writes it as
	// set (unless it drops it), and adds none of its own then.
	hasCLField bool
	clField    []string
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// SetHeader makes h the response's header, in place of the map Header
// returns, and reports whether it did: a proxy hands over its upstream's
// fields rather than copy them. It does only before WriteHeader and while
// that map is empty (nobody has set a field in it). h is the response's
// from then on; the handler sets its fields through h or Header.
func (w *response) SetHeader(h http.Header) bool {
	if w.wroteHeader || len(w.header) > 0 || h == nil {
		return false
	}
	w.header = h
	return true
}

var errAfterHandler = errors.New("front: write after the handler returned")

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199) && status != 204 && status != 304
}

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.handlerDone {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	bw := w.c.bw
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		writeStatusLine(bw, code)
		for _, k := range w.sortedKeys() {
			if k == "Content-Length" || k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) {
				continue
			}
			writeField(bw, k, w.header[k])
		}
		bw.WriteString("\r\n")
		w.noteErr(bw.Flush())
		return
	}
	w.wroteHeader = true
	w.status = code
	w.pending = w.c.pend[:0]

	// Fix the head now: the fields into c.hb, sorted as net/http writes
	// them, less those decided when the head goes out.
	hb := w.c.hb[:0]
	allowed := bodyAllowed(code)
	_, haveType := w.header["Content-Type"]
	for _, k := range w.sortedKeys() {
		vv := w.header[k]
		switch {
		case strings.HasPrefix(k, http.TrailerPrefix):
			w.trailers = true
			continue
		case k == "Content-Length":
			w.hasCLField, w.clField = true, vv
			if len(vv) > 0 && vv[0] != "" {
				if v, err := strconv.ParseInt(vv[0], 10, 64); err == nil && v >= 0 {
					w.cl = v
				} else {
					w.c.s.logf("http: invalid Content-Length of %q", vv[0])
				}
			}
			continue
		case k == "Transfer-Encoding":
			if len(vv) > 0 {
				w.te = vv[0]
			}
			continue
		case k == "Connection":
			w.hasConn, w.connField = true, vv
			if len(vv) > 0 {
				w.conn = vv[0]
			}
			continue
		case k == "Date":
			w.hasDate = true
		case k == "Trailer":
			for _, v := range vv {
				w.trailers = true
				for f := range strings.SplitSeq(v, ",") {
					if f = textproto.TrimString(f); f != "" {
						if f = http.CanonicalHeaderKey(f); validTrailer(f) {
							w.declared = append(w.declared, f)
						}
					}
				}
			}
		case code == 304 && k == "Content-Type":
			continue
		}
		hb = appendField(hb, k, vv)
	}
	w.c.hb = hb
	if !allowed {
		w.cl = -1
		w.te = ""
	}
	w.sniff = allowed && !haveType && w.te == "" && w.header.Get("Content-Encoding") == ""
}

func (w *response) sortedKeys() []string {
	keys := w.c.keys[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.c.keys = keys[:0]
	return keys
}

// writeHead puts the head in the write buffer. first is the body's first
// bytes (for sniffing, and for the Content-Length of a finished handler).
func (w *response) writeHead(first []byte) {
	w.headerOut = true
	req := w.req
	head := req.Method == "HEAD"
	allowed := bodyAllowed(w.status)
	if w.handlerDone && !w.trailers && w.te == "" && allowed && !w.hasCLField && (!head || len(first) > 0) {
		w.cl = int64(len(first))
	}
	// net/http closes after the handler's Connection only if it is
	// exactly "close".
	closing := w.c.s.closing.Load()
	if req.Close || w.conn == "close" || closing {
		w.closeAfter = true
	}
	// An unread request body: read it away (up to net/http's bound) so
	// that the next request can be read, or close after this answer.
	tooBig := false
	if w.body != nil && !w.closeAfter {
		keep, big, err := w.body.discardRest()
		if !keep {
			// Linger unless the body failed: the client may still be
			// sending it.
			w.closeAfter, tooBig, w.c.lingers = true, big, err == nil
		}
	}
	hasCL := w.cl >= 0
	dropCL := false
	if hasCL && w.te != "" && w.te != "identity" {
		w.c.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", w.te, w.cl)
		w.cl, hasCL, dropCL = -1, false, true
	}
	switch {
	case head || !allowed || hasCL:
	case w.te == "identity":
		w.closeAfter = true
	default:
		w.chunking = true
	}

	bw := w.c.bw
	writeStatusLine(bw, w.status)
	bw.Write(w.c.hb)
	if !w.hasDate {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if w.hasCLField {
		if allowed && !w.chunking && !dropCL {
			writeField(bw, "Content-Length", w.clField)
		}
	} else if hasCL && !w.chunking {
		var nb [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(nb[:0], w.cl, 10))
		bw.WriteString("\r\n")
	}
	if w.sniff && len(first) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(first))
		bw.WriteString("\r\n")
	}
	switch {
	case w.closeAfter && (tooBig || closing || !boundedToken(w.conn, "close")):
		bw.WriteString("Connection: close\r\n")
	case w.hasConn:
		writeField(bw, "Connection", w.connField)
	}
	if w.chunking {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *response) Write(p []byte) (int, error) { return w.write(p, true) }

func (w *response) WriteString(s string) (int, error) {
	// The copy into the held-back body or the buffer is the only one.
	return w.write([]byte(s), false)
}

// write is Write, and WriteString if not direct.
func (w *response) write(p []byte, direct bool) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.handlerDone {
		return 0, errAfterHandler
	}
	if len(p) == 0 {
		return 0, nil // as net/http, whatever the status
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.cl >= 0 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	w.hold(p, direct)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// hold adds p to the body held back, as net/http's 2 KiB buffer in front
// of its chunking does (which decides what is sniffed, where the chunks
// end and what a panicking handler loses): what does not fit fills the
// buffer, which is sent on, the first time with the head. A large p that
// meets an empty buffer goes straight on if direct (Write; WriteString
// always fills the buffer).
func (w *response) hold(p []byte, direct bool) {
	for len(p) > bufferBeforeChunking-len(w.pending) {
		if len(w.pending) == 0 && direct {
			w.sendOn(p)
			return
		}
		k := bufferBeforeChunking - len(w.pending)
		w.pending = append(w.pending, p[:k]...)
		p = p[k:]
		w.sendOn(w.pending)
		w.pending = w.pending[:0]
		if w.err != nil {
			return
		}
	}
	w.pending = append(w.pending, p...)
}

// sendOn writes body bytes to the connection's buffer, after the head.
func (w *response) sendOn(p []byte) {
	if !w.headerOut {
		w.writeHead(p)
	}
	w.writeBody(p)
}

// sniffLen is how much net/http reads for sniffing before ReadFrom sends
// the head.
const sniffLen = 512

// ReadFrom is what io.Copy to the response uses, as in net/http: the
// first 512 bytes are written as by Write; if there are that many, the
// head goes out (chunked unless the length was set) with them, then the
// rest of src, straight to the connection if not chunked.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	if !w.headerOut {
		n0, err := io.Copy(writerOnly{w}, io.LimitReader(src, sniffLen))
		n += n0
		if err != nil || n0 < sniffLen {
			return n, err
		}
	}
	w.FlushError()
	if !w.chunking && bodyAllowed(w.status) && w.req.Method != "HEAD" && !w.handlerDone {
		// As net/http: no Content-Length check on this path.
		n0, err := w.c.bw.ReadFrom(src)
		w.written += n0
		return n + n0, err
	}
	n0, err := io.Copy(writerOnly{w}, src)
	return n + n0, err
}

// writerOnly hides the response's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.req.Method == "HEAD" || w.err != nil {
		return
	}
	bw := w.c.bw
	if w.chunking {
		var nb [16]byte
		bw.Write(strconv.AppendInt(nb[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.noteErr(err)
		return
	}
	_, err := bw.Write(p)
	w.noteErr(err)
}

func (w *response) noteErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// Flush sends what is written so far: the head, then the body, chunked
// unless its length was announced.
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.handlerDone {
		return nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.sendOn(w.pending)
	w.pending = w.pending[:0]
	w.noteErr(w.c.bw.Flush())
	return w.err
}

// finish ends the response after the handler returned; it reports
// whether the connection can carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.handlerDone = true
	w.sendOn(w.pending)
	w.pending = w.pending[:0]
	bw := w.c.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	w.noteErr(bw.Flush())
	if w.err != nil || w.closeAfter {
		return false
	}
	// A body shorter than announced: the client would wait for the rest.
	if w.req.Method != "HEAD" && w.cl >= 0 && bodyAllowed(w.status) && w.written != w.cl {
		return false
	}
	return true
}

func (w *response) writeTrailers() {
	bw := w.c.bw
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeField(bw, http.CanonicalHeaderKey(name), vv)
		}
	}
	for _, k := range w.declared {
		if vv := w.header[k]; len(vv) > 0 {
			writeField(bw, k, vv)
		}
	}
}

// validTrailer reports whether net/http sends a declared trailer: not
// one RFC 9110 section 6.5.1 forbids (k is canonical).
func validTrailer(k string) bool {
	return !strings.HasPrefix(k, "If-") && !forbiddenTrailers[k]
}

var forbiddenTrailers = map[string]bool{
	"Authorization": true, "Cache-Control": true, "Connection": true, "Content-Encoding": true,
	"Content-Length": true, "Content-Range": true, "Content-Type": true, "Expect": true,
	"Host": true, "Keep-Alive": true, "Max-Forwards": true, "Pragma": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Range": true, "Realm": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Www-Authenticate": true,
}

// boundedToken reports whether v holds tok, in any case, between the ends
// of v, spaces, tabs and commas: net/http's test of a response's
// Connection field for "close".
func boundedToken(v, tok string) bool {
	bound := func(c byte) bool { return c == ' ' || c == ',' || c == '\t' }
	for i := 0; tok != "" && i+len(tok) <= len(v); i++ {
		if (i == 0 || bound(v[i-1])) && (i+len(tok) == len(v) || bound(v[i+len(tok)])) &&
			httpsyntax.EqualFold(v[i:i+len(tok)], tok) {
			return true
		}
	}
	return false
}

// writeStatusLine writes the status line for code (100 to 999, as
// WriteHeader checks).
func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		// Three digits, byte by byte: no buffer that could escape.
		bw.WriteByte(byte('0' + code/100))
		bw.WriteByte(byte('0' + code/10%10))
		bw.WriteByte(byte('0' + code%10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
}

// writeField writes a field's values as net/http does: a valid name only,
// line breaks in values turned to spaces, values trimmed.
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !httpsyntax.ValidToken(k) {
		return
	}
	for _, v := range vv {
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(cleanValue(v))
		bw.WriteString("\r\n")
	}
}

func appendField(b []byte, k string, vv []string) []byte {
	if !httpsyntax.ValidToken(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, cleanValue(v)...)
		b = append(b, "\r\n"...)
	}
	return b
}

func cleanValue(v string) string {
	if httpsyntax.HasLineBreak(v) {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	return httpsyntax.TrimOWS(v)
}

// httpDate is the Date field's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &cachedDate{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[cachedDate]
