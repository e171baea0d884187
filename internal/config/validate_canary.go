package config

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/route"
)

// routeCanary checks a route's forwarding and canary keys.
func (v *validator) routeCanary(key string, r Route, pathOK bool) {
	if r.TrimPrefix != "" && (!strings.HasPrefix(r.TrimPrefix, "/") || strings.ContainsAny(r.TrimPrefix, "?# ")) {
		v.errorf("%s.trim_prefix: %q is not a path prefix such as \"/v2\"", key, r.TrimPrefix)
	}
	v.hostHeader(key+".reference_host_header", r.ReferenceHostHeader)
	v.hostHeader(key+".candidate_host_header", r.CandidateHostHeader)
	if r.Mode != "" {
		v.oneOf(key+".mode", r.Mode, routeModes)
	}
	if r.Mode != ModeCanary {
		for _, k := range canaryOnlyKeys(r) {
			v.errorf("%s.%s: only for mode = \"canary\"", key, k)
		}
		return
	}
	if !(r.Weight >= 0 && r.Weight <= 100) || math.IsNaN(r.Weight) {
		v.errorf("%s.weight: must be between 0 and 100 (got %v)", key, r.Weight)
	}
	if sk, err := canary.ParseStickyKey(r.StickyKey); err != nil {
		v.errorf("%s.sticky_key: %v", key, err)
	} else if name := sk.Param(); name != "" && pathOK {
		p, _ := route.Parse(r.Path)
		found := false
		for _, n := range p.Names() {
			found = found || n == name
		}
		if !found {
			v.errorf("%s.sticky_key: %q: the path %q has no parameter %q", key, r.StickyKey, r.Path, name)
		}
	} else if strings.HasPrefix(r.StickyKey, "header:") && !isToken(strings.TrimPrefix(r.StickyKey, "header:")) {
		v.errorf("%s.sticky_key: %q is not a header name", key, r.StickyKey)
	}
	if r.StickyCookie != "" && !isToken(r.StickyCookie) {
		v.errorf("%s.sticky_cookie: %q is not a cookie name", key, r.StickyCookie)
	}
	if r.OverrideHeader != "" && !isToken(r.OverrideHeader) {
		v.errorf("%s.override_header: %q is not a header name", key, r.OverrideHeader)
	}
	if r.CanaryHeader != "" && !isToken(r.CanaryHeader) {
		v.errorf("%s.canary_header: %q is not a header name", key, r.CanaryHeader)
	}
	v.baseURL(key+".decision_url", r.DecisionURL, false)
	if r.DecisionCacheTTL > 0 && r.StickyKey == "" {
		v.errorf("%s.decision_cache_ttl: decisions are cached per sticky key; set sticky_key too", key)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"decision_timeout", r.DecisionTimeout}, {"decision_cache_ttl", r.DecisionCacheTTL}, {"window", r.Window}, {"cooldown", r.Cooldown}} {
		v.nonNegative(key+"."+d.name, d.d)
	}
	v.atLeast(key+".max_errors", int64(r.MaxErrors), 0)
	v.atLeast(key+".max_requests", int64(r.MaxRequests), 0)
	v.atLeast(key+".probes", int64(r.Probes), 0)
	v.share(key+".max_error_rate", r.MaxErrorRate)
	if !(r.MaxRPS >= 0) || math.IsInf(r.MaxRPS, 0) {
		v.errorf("%s.max_rps: %v is not a number of requests per second (0 = no limit)", key, r.MaxRPS)
	}
}

// canaryOnlyKeys lists the canary keys a route sets.
func canaryOnlyKeys(r Route) []string {
	var keys []string
	add := func(set bool, k string) {
		if set {
			keys = append(keys, k)
		}
	}
	add(r.Weight != 0, "weight")
	add(r.StickyKey != "", "sticky_key")
	add(r.StickyCookie != "", "sticky_cookie")
	add(r.OverrideHeader != "", "override_header")
	add(r.CanaryHeader != "", "canary_header")
	add(r.DecisionURL != "", "decision_url")
	add(r.DecisionTimeout != 0, "decision_timeout")
	add(r.DecisionCacheTTL != 0, "decision_cache_ttl")
	add(r.MaxErrors != 0, "max_errors")
	add(r.MaxErrorRate != 0, "max_error_rate")
	add(r.Window != 0, "window")
	add(r.MaxRequests != 0, "max_requests")
	add(r.MaxRPS != 0, "max_rps")
	add(r.Cooldown != 0, "cooldown")
	add(r.Probes != 0, "probes")
	add(r.Shadow, "shadow")
	return keys
}

// canary checks the [canary] section.
func (v *validator) canary(c *Config) {
	k := c.Canary
	if !isToken(k.OverrideHeader) {
		v.errorf("canary.override_header: %q is not a header name", k.OverrideHeader)
	}
	if !isToken(k.ServedByHeader) {
		v.errorf("canary.served_by_header: %q is not a header name", k.ServedByHeader)
	}
	v.positive("canary.decision_timeout", k.DecisionTimeout)
	v.nonNegative("canary.decision_cache_ttl", k.DecisionCacheTTL)
	v.atLeast("canary.decision_max_body_bytes", k.DecisionMaxBodyBytes, 1)
	v.positive("canary.window", k.Window)
	v.atLeast("canary.min_requests", int64(k.MinRequests), 1)
	v.positive("canary.cooldown", k.Cooldown)
	v.atLeast("canary.probes", int64(k.Probes), 1)

	var canaries []string
	for _, r := range c.Routes {
		if r.Mode == ModeCanary {
			canaries = append(canaries, r.Name)
		}
	}
	switch {
	case k.SocketRoute != "" && !slices.Contains(canaries, k.SocketRoute):
		v.errorf("canary.socket_route: %q is not the name of a route with mode = \"canary\"", k.SocketRoute)
	case k.Socket != "" && len(canaries) == 0:
		v.errorf("canary.socket: %q is set but no route has mode = \"canary\"", k.Socket)
	}
}

// CanarySocketRoute returns the name of the route whose weight the decision
// socket serves: [canary] socket_route, else the first canary route.
func (c *Config) CanarySocketRoute() string {
	if c.Canary.SocketRoute != "" {
		return c.Canary.SocketRoute
	}
	for _, r := range c.Routes {
		if r.Mode == ModeCanary {
			return r.Name
		}
	}
	return ""
}

// hostHeader checks a Host header override: host or host:port.
func (v *validator) hostHeader(key, h string) {
	if h == "" {
		return
	}
	if strings.ContainsAny(h, " /?#@\t\r\n") {
		v.errorf("%s: %q is not a host (host or host:port)", key, h)
	}
}

// hostPort checks a host:port address.
func (v *validator) hostPort(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf("%s: %q is not host:port", key, addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf("%s: %q has an invalid port", key, addr)
	}
}
