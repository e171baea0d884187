package canary

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/miffy-proxy/miffy/internal/route"
)

// UpstreamHeader names the side in the decide handler's answer.
const UpstreamHeader = "X-Miffy-Upstream"

// RuleHeaderName names the deciding rule in the decide handler's answer.
const RuleHeaderName = "X-Miffy-Rule"

// Lookup finds the router of a canary route by name.
type Lookup func(name string) (r *Router, pattern string, ok bool)

// Handler returns the decision endpoint for other proxies, to mount at
// "/decide/" on the management port: GET /decide/{route} answers 200 with
// X-Miffy-Upstream: reference|candidate (and X-Miffy-Rule, and the sticky
// cookie as Set-Cookie). It suits nginx auth_request: the subrequest
// carries the client's headers; X-Original-URI and X-Original-Method, when
// present, stand for the client's request line, X-Real-IP for its address.
// A route name with a leading slash may be given without it
// (/decide/api/{id} finds "/api/{id}"). An unknown route is 404.
func Handler(lookup Lookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/decide/")
		rt, pattern, ok := lookup(name)
		if !ok {
			rt, pattern, ok = lookup("/" + name)
		}
		if !ok {
			http.Error(w, "miffy: no canary route named "+name, http.StatusNotFound)
			return
		}
		view := r.Clone(r.Context())
		view.Body = http.NoBody
		view.ContentLength = 0
		if m := r.Header.Get("X-Original-Method"); m != "" {
			view.Method = m
		}
		if uri := r.Header.Get("X-Original-URI"); uri != "" {
			if u, err := url.ParseRequestURI(uri); err == nil {
				view.URL = u
			}
		} else {
			view.URL = &url.URL{Path: "/"}
		}
		if ip := r.Header.Get("X-Real-IP"); ip != "" {
			view.RemoteAddr = ip + ":0"
		}
		for _, h := range []string{"X-Original-Method", "X-Original-URI"} {
			view.Header.Del(h)
		}
		var params Params
		if rt.sticky.kind == stickyParam {
			params = matchParams(pattern, view.Method, view.URL.EscapedPath())
		}
		d := rt.DecideExternal(view, params, view.URL.EscapedPath())
		w.Header().Set(UpstreamHeader, d.Side.String())
		w.Header().Set(RuleHeaderName, string(d.Rule))
		w.Header().Set("Cache-Control", "no-store")
		if d.Cookie != nil {
			w.Header().Add("Set-Cookie", d.Cookie.String())
		}
		w.WriteHeader(http.StatusOK)
	})
}

// matchParams matches a path against a route pattern for its parameters.
func matchParams(pattern, method, path string) Params {
	var t route.Table[struct{}]
	if t.Add(pattern, nil, struct{}{}) != nil {
		return nil
	}
	_, ps, _, ok := t.Match(method, path)
	if !ok {
		return nil
	}
	return ps
}
