package board

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/verdict"
)

//go:embed assets
var assets embed.FS

// Config is what the report server needs besides its Store.
type Config struct {
	// Topic is the record topic, where examples are fetched from.
	Topic string
	// Client are the Kafka connection options, for fetching examples.
	Client []kgo.Opt
	// Limits gives a route's verdict limits. Required.
	Limits func(route string) verdict.Limits
	// Token, if set, is required on every request: "Authorization:
	// Bearer TOKEN", or the cookie that "?token=TOKEN" sets.
	Token string
	// LocalOnly refuses requests whose Host is not an IP address or
	// localhost: a page on loopback without a token must not be readable
	// by another site through DNS rebinding.
	LocalOnly bool
	// Info is what Diffy's /api/1/info reports: the upstreams' targets.
	Info Info
	// FetchTimeout bounds fetching one example record. If zero, 5s.
	FetchTimeout time.Duration
	// MaxFetches bounds the example fetches in flight. If zero, 4.
	MaxFetches int
}

// Info names the upstreams, for Diffy's /api/1/info.
type Info struct {
	Reference, Candidate, Secondary string
}

// Server serves the page, its API, the gates and Diffy's API.
type Server struct {
	cfg     Config
	st      *Store
	mux     *http.ServeMux
	fetches chan struct{}
}

// tokenCookie carries the token for the page (EventSource cannot send
// headers).
const tokenCookie = "miffy_report_token"

// NewServer returns the report server's handler over st.
func NewServer(cfg Config, st *Store) *Server {
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.MaxFetches == 0 {
		cfg.MaxFetches = 4
	}
	s := &Server{cfg: cfg, st: st, mux: http.NewServeMux(), fetches: make(chan struct{}, cfg.MaxFetches)}
	static, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /api/routes", s.overview)
	s.mux.HandleFunc("GET /api/route", s.detail)
	s.mux.HandleFunc("GET /api/records/{partition}/{offset}", s.record)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.HandleFunc("GET /api/verdict", s.verdict)
	s.mux.HandleFunc("POST /gate/flagger", s.flagger)
	s.diffyRoutes()
	s.rolloutRoutes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if s.cfg.LocalOnly && !localHost(r.Host) {
		http.Error(w, "miffy: this report server answers only to an IP address or localhost (set [report] token_file to serve it under a name)", http.StatusMisdirectedRequest)
		return
	}
	if s.cfg.Token != "" && !s.authorized(w, r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="miffy report"`)
		http.Error(w, "miffy: a token is required ([report] token_file)", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// localHost reports whether a Host header names an IP address or
// localhost.
func localHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return host == "localhost" || net.ParseIP(host) != nil
}

// authorized checks the bearer token, the cookie, or ?token= on the page
// (which then sets the cookie).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	eq := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1 }
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && eq(got) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && eq(c.Value) {
		return true
	}
	if got := r.URL.Query().Get("token"); got != "" && eq(got) && r.Method == http.MethodGet && r.URL.Path == "/" {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: got, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	return false
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	b, _ := assets.ReadFile("assets/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// errBadRange is a range the page cannot draw.
var errBadRange = errors.New("range: want 5m, 1h, 24h, all, or custom with from and to (RFC 3339)")

func parseRange(r *http.Request) (Range, error) {
	q := r.URL.Query()
	rg := Range{Name: q.Get("range")}
	switch rg.Name {
	case "", "all", "5m", "1h", "24h":
		return rg, nil
	case "custom":
		var err1, err2 error
		rg.From, err1 = time.Parse(time.RFC3339, q.Get("from"))
		if to := q.Get("to"); to != "" {
			rg.To, err2 = time.Parse(time.RFC3339, to)
		}
		if err1 != nil || err2 != nil || (!rg.To.IsZero() && rg.To.Before(rg.From)) {
			return rg, errBadRange
		}
		return rg, nil
	}
	return rg, errBadRange
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // JSON, never HTML: "> 0.1 %" reads as written
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	rg, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.st.Overview(rg, s.cfg.Limits))
}

func (s *Server) detail(w http.ResponseWriter, r *http.Request) {
	rg, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, ok := s.st.Detail(r.URL.Query().Get("route"), rg, s.cfg.Limits)
	if !ok {
		writeError(w, http.StatusNotFound, "no such route")
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// record answers a record fetched from the topic by partition and offset:
// the permalink of an example.
func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	p, err1 := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	o, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		writeError(w, http.StatusBadRequest, "want /api/records/{partition}/{offset}")
		return
	}
	b, status, err := s.fetch(r.Context(), Ref{Partition: int32(p), Offset: o})
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, max-age=3600") // records never change
	w.Write(b)
}

// fetch reads one record, bounded in time and in fetches at once. The
// value is answered only if it is a JSON object (a miffy record as
// published, redacted); a status goes with an error.
func (s *Server) fetch(ctx context.Context, ref Ref) ([]byte, int, error) {
	select {
	case s.fetches <- struct{}{}:
		defer func() { <-s.fetches }()
	default:
		return nil, http.StatusServiceUnavailable, errors.New("too many example fetches at once; retry")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	b, err := fetch(ctx, s.cfg.Client, s.cfg.Topic, ref)
	switch {
	case errors.Is(err, errGone):
		return nil, http.StatusGone, err
	case err != nil:
		return nil, http.StatusGatewayTimeout, err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return nil, http.StatusUnprocessableEntity, errors.New("not a miffy record")
	}
	return b, http.StatusOK, nil
}

// events streams "update" server-sent events when new evidence arrives, at
// most once a second, until the client goes away.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	last, idle := ^uint64(0), 0 // the first event tells the version at connection
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		v, changed := s.st.Changed()
		if v != last {
			last = v
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(w, "event: update\ndata: {\"version\":%d}\n\n", v); err != nil {
				return
			}
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
			// Throttle: wait for the tick before the next event.
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		case <-tick.C:
			// A keep-alive comment now and then keeps proxies from
			// closing an idle stream.
			if idle++; idle%15 == 0 {
				if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
					return
				}
				fl.Flush()
			}
		}
	}
}
