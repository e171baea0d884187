package shadow

import (
	"io"
	"net/http"
)

// debugBodyBytes caps the body shown in a debug line.
const debugBodyBytes = 64 << 10

// debugRequest logs a request forwarded to the client-facing upstream
// ([proxy] debug_requests, debug_bodies). Header values are not logged:
// they may hold secrets.
func (p *Proxy) debugRequest(role, method, url, host string, in *http.Request) {
	ev := p.log.Debug()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("role", role).Str("method", method).Str("url", p.cfg.RedactURI(url)).Str("host", host)
	if p.cfg.DebugBodies && in.GetBody != nil {
		if rc, err := in.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, debugBodyBytes))
			rc.Close()
			ev = ev.Bytes("body", b)
		}
	}
	ev.Msg("forwarding")
}

// debugReplay logs a replayed request.
func (p *Proxy) debugReplay(role, url, host, method string, body []byte) {
	ev := p.log.Debug()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("role", role).Str("method", method).Str("url", p.cfg.RedactURI(url)).Str("host", host)
	if p.cfg.DebugBodies {
		ev = ev.Bytes("body", body[:min(len(body), debugBodyBytes)])
	}
	ev.Msg("replaying")
}
