package shadow

import (
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

// viaName is how miffy names itself in Via (RFC 9110 section 7.6.3).
const viaName = "miffy"

// admit checks what the framing guard leaves to the handler. It returns
// the request to serve (a shallow copy with its own header map when a
// header had to go), or the refusal the client gets instead.
func (p *Proxy) admit(r *http.Request) (*http.Request, error) {
	switch {
	case r.Method == http.MethodConnect:
		return r, refusal{status: http.StatusMethodNotAllowed, msg: "miffy: CONNECT is not supported"}
	case r.RequestURI == "*" || r.Method == "PRI":
		return r, refusal{http.StatusBadRequest, "miffy: asterisk-form requests are not forwarded", true}
	case hasDotSegment(r.URL.EscapedPath()):
		return r, refusal{http.StatusBadRequest, "miffy: dot segments in the request path", true}
	case viaLoop(r.Header["Via"]):
		return r, refusal{status: http.StatusLoopDetected, msg: "miffy: this request came through miffy already (Via); the upstream points back at miffy"}
	}
	underscores := 0
	for name := range r.Header {
		if strings.IndexByte(name, '_') >= 0 {
			underscores++
		}
	}
	badUpgrade := r.Header["Upgrade"] != nil && !p.upgradeAllowed(r.Header["Upgrade"])
	if underscores == 0 && !badUpgrade {
		return r, nil
	}
	// Names with "_" are dropped, as nginx does: CGI, WSGI and PHP
	// upstreams fold them into the dashed names (X_Forwarded_For would
	// pass for X-Forwarded-For there).
	r2 := r.WithContext(r.Context())
	r2.Header = make(http.Header, len(r.Header))
	for name, v := range r.Header {
		if strings.IndexByte(name, '_') < 0 {
			r2.Header[name] = v
		}
	}
	p.m.droppedHeaders.WithLabelValues("underscore").Add(float64(underscores))
	if badUpgrade {
		delete(r2.Header, "Upgrade")
		p.m.droppedHeaders.WithLabelValues("upgrade").Inc()
	}
	return r2, nil
}

// upgradeAllowed reports whether every protocol an Upgrade header offers
// is in AllowUpgrades.
func (p *Proxy) upgradeAllowed(values []string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(textproto.TrimString(tok), "/")
			if name == "" {
				continue
			}
			ok := false
			for _, a := range p.cfg.AllowUpgrades {
				if strings.EqualFold(a, name) {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// viaLoop reports whether a Via header names miffy as a hop already.
func viaLoop(values []string) bool {
	for _, v := range values {
		for hop := range strings.SplitSeq(v, ",") {
			f := strings.Fields(hop)
			if len(f) >= 2 && f[1] == viaName {
				return true
			}
		}
	}
	return false
}

// forwardFields appends the fields miffy adds to every request it sends
// upstream (reference, candidate and secondary alike, so that all three
// get the same request): Via always; X-Forwarded-For (after any the
// client sent, all its lines joined), -Host and -Proto when
// ForwardedHeaders is on; X-Request-Id when miffy made the correlation id
// (reqID) because the client sent none. They replace the client's fields
// of those names. The one builder of these fields: every way upstream
// (miffy's client, net/http's Transport, the upgrade proxy) sends them.
func (p *Proxy) forwardFields(fields []upstream.Field, r *http.Request, reqID string) []upstream.Field {
	if reqID != "" && r.Header.Get(requestIDHeader) == "" {
		fields = append(fields, upstream.Field{Name: requestIDHeader, Value: reqID})
	}
	via := "1.1 " + viaName // constants: no allocation per request
	switch {
	case r.ProtoMajor == 2:
		via = "2.0 " + viaName
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		via = "1.0 " + viaName
	}
	if prior := r.Header["Via"]; len(prior) > 0 {
		via = strings.Join(prior, ", ") + ", " + via
	}
	fields = append(fields, upstream.Field{Name: "Via", Value: via})
	if !p.cfg.ForwardedHeaders {
		return fields
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		fields = append(fields, upstream.Field{Name: "X-Forwarded-For", Value: ip})
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	return append(fields,
		upstream.Field{Name: "X-Forwarded-Host", Value: r.Host},
		upstream.Field{Name: "X-Forwarded-Proto", Value: proto})
}
