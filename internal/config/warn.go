package config

import (
	"fmt"
	"slices"
	"strings"
)

// standardMethods are the HTTP methods a route is expected to name: RFC
// 9110's, PATCH, and WebDAV's common ones. Others are allowed (a method is
// any token) but warned about: "GETT" never matches a real client.
var standardMethods = []string{
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
}

// Warnings returns what the config allows but is probably a mistake, each
// naming its key: no routes (nothing is shadowed), a method that is not a
// standard one, reference or candidate at the demo's values of the
// embedded defaults (passed in, as to Load). Load has accepted the config;
// miffy starts all the same.
func (c *Config) Warnings(defaults []byte) []string {
	var out []string
	if len(c.Routes) == 0 {
		out = append(out, `routes: none configured; every request goes to the reference and nothing is shadowed (routes = [{ path = "/{*rest}" }] shadows everything)`)
	}
	for i, r := range c.Routes {
		for j, m := range r.Methods {
			if slices.Contains(standardMethods, m) {
				continue
			}
			w := fmt.Sprintf("routes[%d].methods[%d]: %q is not a standard HTTP method; the route matches it only if a client sends exactly that", i, j, m)
			if k := nearest(m, standardMethods); k != "" {
				w += fmt.Sprintf(" (did you mean %q?)", k)
			}
			out = append(out, w)
		}
	}
	usesCandidate := false
	for _, r := range c.Routes {
		usesCandidate = usesCandidate || r.Candidate == c.Candidate
	}
	def, _ := parseTOML(defaults, "")
	if s, _ := def["reference"].(string); s != "" && c.Reference == s {
		out = append(out, fmt.Sprintf("reference: %q is the demo's default; clients are answered from it (set reference to your service's URL)", s))
	}
	if s, _ := def["candidate"].(string); s != "" && c.Candidate == s && usesCandidate {
		out = append(out, fmt.Sprintf("candidate: %q is the demo's default; copies of routed requests go to it (set candidate to the version under test)", s))
	}
	if sides := c.Upstream.Insecure(); len(sides) > 0 {
		out = append(out, "upstream.tls_insecure_skip_verify: upstream TLS certificates are not verified for: "+strings.Join(sides, ", "))
	}
	return out
}
