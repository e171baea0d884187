package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

// Upstream is the [upstream] section: how every upstream is reached (TLS
// and protocol). Reference, Candidate and Secondary ([upstream.reference]
// and so on) override any of its keys for one side.
type Upstream struct {
	UpstreamSide `koanf:",squash"`
	Reference    UpstreamSide `koanf:"reference"`
	Candidate    UpstreamSide `koanf:"candidate"`
	Secondary    UpstreamSide `koanf:"secondary"`
}

// UpstreamSide holds the keys of [upstream] and of its per-side tables. In
// a side's table an empty string, or a boolean left out, takes
// [upstream]'s value.
type UpstreamSide struct {
	// Protocol is "auto" (HTTP/1.1, or HTTP/2 where TLS negotiates it),
	// "http1", "h2" (HTTP/2 over TLS) or "h2c" (HTTP/2 over TCP).
	Protocol              string `koanf:"protocol"`
	TLSCAFile             string `koanf:"tls_ca_file"`
	TLSCertFile           string `koanf:"tls_cert_file"`
	TLSKeyFile            string `koanf:"tls_key_file"`
	TLSServerName         string `koanf:"tls_server_name"`
	TLSInsecureSkipVerify *bool  `koanf:"tls_insecure_skip_verify"`
}

// Sides are the sides [upstream] has a table for, in order.
var Sides = []string{"reference", "candidate", "secondary"}

// Side returns the settings of one side (one of Sides): [upstream]'s,
// overridden by the side's table.
func (u Upstream) Side(side string) UpstreamSide {
	s := u.UpstreamSide
	var o UpstreamSide
	switch side {
	case "reference":
		o = u.Reference
	case "candidate":
		o = u.Candidate
	case "secondary":
		o = u.Secondary
	}
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&s.Protocol, o.Protocol},
		{&s.TLSCAFile, o.TLSCAFile},
		{&s.TLSCertFile, o.TLSCertFile},
		{&s.TLSKeyFile, o.TLSKeyFile},
		{&s.TLSServerName, o.TLSServerName},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if o.TLSInsecureSkipVerify != nil {
		s.TLSInsecureSkipVerify = o.TLSInsecureSkipVerify
	}
	if s.Protocol == "" {
		s.Protocol = upstream.ProtoAuto
	}
	return s
}

// TLSFiles returns the side's TLS settings, for upstream.TLSFiles.Load.
func (s UpstreamSide) TLSFiles() upstream.TLSFiles {
	return upstream.TLSFiles{
		CAFile:             s.TLSCAFile,
		CertFile:           s.TLSCertFile,
		KeyFile:            s.TLSKeyFile,
		ServerName:         s.TLSServerName,
		InsecureSkipVerify: s.TLSInsecureSkipVerify != nil && *s.TLSInsecureSkipVerify,
	}
}

// Insecure reports the sides that accept any certificate
// (tls_insecure_skip_verify), for a warning at start.
func (u Upstream) Insecure() []string {
	var sides []string
	for _, side := range Sides {
		if s := u.Side(side); s.TLSInsecureSkipVerify != nil && *s.TLSInsecureSkipVerify {
			sides = append(sides, side)
		}
	}
	return sides
}

// upstream checks [upstream] and its tables: known protocols, files that
// can be read and used, a client certificate with its key, and no h2c to
// an https URL nor h2 to an http one.
func (v *validator) upstream(c *Config) {
	u := c.Upstream
	v.oneOf("upstream.protocol", u.Protocol, upstream.Protocols)
	tables := map[string]UpstreamSide{"reference": u.Reference, "candidate": u.Candidate, "secondary": u.Secondary}
	for _, side := range Sides {
		if p := tables[side].Protocol; p != "" {
			v.oneOf("upstream."+side+".protocol", p, upstream.Protocols)
		}
	}
	// Each file is checked once, under the key that set it.
	loaded := map[upstream.TLSFiles]bool{}
	for _, side := range Sides {
		s := u.Side(side)
		files := s.TLSFiles()
		if !loaded[files] {
			loaded[files] = true
			if _, err := files.Load(); err != nil {
				v.errorf("%s: %v", tlsKey(u, side, err), err)
			}
		}
		for _, raw := range sideURLs(c, side) {
			if msg := protocolMismatch(s.Protocol, raw); msg != "" {
				v.errorf("%s: %s; the %s is %q", protocolKey(u, side), msg, side, upstream.RedactURL(raw))
				break
			}
		}
	}
	for i, r := range c.Routes {
		for _, side := range Sides {
			p, raw := r.sideProtocol(side)
			if p == "" {
				continue
			}
			key := fmt.Sprintf("routes[%d].%s_protocol", i, side)
			v.oneOf(key, p, upstream.Protocols)
			if msg := protocolMismatch(p, raw); msg != "" {
				v.errorf("%s: %s; the route's %s is %q", key, msg, side, upstream.RedactURL(raw))
			}
		}
	}
}

// sideProtocol returns the route's protocol for a side ("" where it sets
// none) and the side's URL.
func (r Route) sideProtocol(side string) (protocol, url string) {
	switch side {
	case "reference":
		return r.ReferenceProtocol, r.Reference
	case "candidate":
		return r.CandidateProtocol, r.Candidate
	}
	return r.SecondaryProtocol, r.Secondary
}

// protocolMismatch says why protocol cannot reach the URL raw, or "".
func protocolMismatch(protocol, raw string) string {
	parsed, err := url.Parse(raw)
	if err != nil {
		return "" // the URL's own key reports it
	}
	switch {
	case protocol == upstream.ProtoH2C && parsed.Scheme == "https":
		return "h2c is HTTP/2 without TLS (use h2 for https)"
	case protocol == upstream.ProtoH2 && parsed.Scheme == "http":
		return "h2 is HTTP/2 over TLS (use h2c for http)"
	}
	return ""
}

// sideURLs returns the upstream URLs of one side: the top-level one and
// those of the routes that set no protocol of their own for it.
func sideURLs(c *Config, side string) []string {
	var urls []string
	add := func(s string) {
		if s != "" && !slices.Contains(urls, s) {
			urls = append(urls, s)
		}
	}
	for _, r := range append([]Route{{Reference: c.Reference, Candidate: c.Candidate, Secondary: c.Secondary}}, c.Routes...) {
		if p, _ := r.sideProtocol(side); p != "" {
			continue
		}
		switch side {
		case "reference":
			add(r.Reference)
		case "candidate":
			add(r.Candidate)
		case "secondary":
			add(r.Secondary)
		}
	}
	return urls
}

// protocolKey names the key that set a side's protocol.
func protocolKey(u Upstream, side string) string {
	if sideTable(u, side).Protocol != "" {
		return "upstream." + side + ".protocol"
	}
	return "upstream.protocol"
}

// tlsKey names the key behind a side's TLS error: the side's table's
// where it sets the file at fault, else [upstream]'s.
func tlsKey(u Upstream, side string, err error) string {
	t := sideTable(u, side)
	key := func(name, own string) string {
		if own != "" {
			return "upstream." + side + "." + name
		}
		return "upstream." + name
	}
	if strings.Contains(err.Error(), "CA file") {
		return key("tls_ca_file", t.TLSCAFile)
	}
	return key("tls_cert_file", t.TLSCertFile+t.TLSKeyFile) + " and tls_key_file"
}

func sideTable(u Upstream, side string) UpstreamSide {
	switch side {
	case "reference":
		return u.Reference
	case "candidate":
		return u.Candidate
	}
	return u.Secondary
}
