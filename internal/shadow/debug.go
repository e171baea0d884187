package shadow

import (
	"net/http"

	"github.com/miffy-proxy/miffy/internal/publish"
)

// debugBodyBytes caps the body shown in a debug line.
const debugBodyBytes = 64 << 10

// debugBody is a body as a debug line shows it: capped, then redacted by
// its content type (see Config.RedactBody).
func (p *Proxy) debugBody(b []byte, contentType string) []byte {
	b = b[:min(len(b), debugBodyBytes)]
	if p.cfg.RedactBody == nil {
		return b
	}
	return p.cfg.RedactBody(b, contentType)
}

// redactURI is a URI as the access log and debug lines show it (see
// Config.RedactURI).
func (p *Proxy) redactURI(s string) string {
	if p.cfg.RedactURI == nil {
		return s
	}
	return p.cfg.RedactURI(s)
}

// debugRequest logs a request forwarded to the client-facing upstream
// ([proxy] debug_requests, debug_bodies), with its body when it is in
// memory. Header values are not logged: they may hold secrets.
func (p *Proxy) debugRequest(role, method, url, host string, c *call) {
	ev := p.log.Debug()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("role", role).Str("method", method).Str("url", p.redactURI(url)).Str("host", host)
	if b := c.body.bytes(); p.cfg.DebugBodies && b != nil {
		ev = ev.Bytes("body", p.debugBody(b, c.r.Header.Get("Content-Type")))
	}
	ev.Msg("forwarding")
}

// debugReplay logs a replayed request.
func (p *Proxy) debugReplay(role, url, host, method string, body []byte, h http.Header) {
	ev := p.log.Debug()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("role", role).Str("method", method).Str("url", p.redactURI(url)).Str("host", host)
	if p.cfg.DebugBodies {
		ev = ev.Bytes("body", p.debugBody(body, h.Get("Content-Type")))
	}
	ev.Msg("replaying")
}

// debugResponses logs the answers of a compared request, each side's body
// capped and redacted ([proxy] debug_bodies).
func (p *Proxy) debugResponses(c *publish.Comparison) {
	if !p.cfg.DebugBodies || !p.log.Debug().Enabled() {
		return
	}
	sides := []struct {
		role string
		a    *publish.Answer
	}{{"reference", &c.Reference}, {"candidate", &c.Candidate}, {"secondary", c.Secondary}}
	for _, sd := range sides {
		if sd.a == nil {
			continue
		}
		ev := p.log.Debug().Str("id", c.ID).Str("role", sd.role).Str("url", p.redactURI(sd.a.URL))
		if sd.a.Err != nil {
			ev = ev.Str("error_kind", publish.ErrorKind(sd.a.Err))
		} else {
			ev = ev.Int("status", sd.a.Status).Bytes("body", p.debugBody(sd.a.Body, sd.a.Header.Get("Content-Type")))
		}
		ev.Msg("response")
	}
}
