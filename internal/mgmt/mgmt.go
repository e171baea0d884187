// Package mgmt is miffy's management listener: health, readiness, metrics
// and, when switched on, pprof. It is a separate port from client traffic.
package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition; nil error means ready. An error that
// has a method Degraded() bool returning true (found with errors.As) is a
// warning, not a failure: /readyz stays 200 and shows the check as
// "degraded: <error>" (e.g. the control topic lost after it was read: the
// instance serves on with its last known state).
type Check func(ctx context.Context) error

// degraded is what a warning error implements; see Check.
type degraded interface{ Degraded() bool }

// isDegraded reports whether err is a warning rather than a failure.
func isDegraded(err error) bool {
	var d degraded
	return errors.As(err, &d) && d.Degraded()
}

// Config says what the management handler serves.
type Config struct {
	// PProf serves /debug/pprof/.
	PProf bool
	// CheckInterval is how long a readiness result is reused. If zero, 2s.
	CheckInterval time.Duration
	// CheckTimeout bounds one check. If zero, 2s.
	CheckTimeout time.Duration
}

// Server holds the handler and the readiness checks.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	mu     sync.Mutex
	checks map[string]Check
	cache  map[string]result
}

type result struct {
	err error
	at  time.Time
}

// New returns the management handler. g is the registry served on /metrics.
func New(cfg Config, g prometheus.Gatherer) *Server {
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 2 * time.Second
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 2 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), checks: map[string]Check{}, cache: map[string]result{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if cfg.PProf {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s
}

// Handle adds a handler, e.g. a report page.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddCheck adds a readiness condition under a name shown by /readyz.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// readyz answers 200 when every check passes or is only degraded, else
// 503; the body names each check and its state as JSON: "ok",
// "degraded: <error>", or the error of a failing check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()

	out := map[string]string{}
	ready := true
	for name, c := range checks {
		switch err := s.run(r.Context(), name, c); {
		case err == nil:
			out[name] = "ok"
		case isDegraded(err):
			out[name] = "degraded: " + err.Error()
		default:
			ready = false
			out[name] = err.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": out})
}

func (s *Server) run(ctx context.Context, name string, c Check) error {
	s.mu.Lock()
	res, ok := s.cache[name]
	s.mu.Unlock()
	if ok && time.Since(res.at) < s.cfg.CheckInterval {
		return res.err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	err := c(ctx)
	s.mu.Lock()
	s.cache[name] = result{err: err, at: time.Now()}
	s.mu.Unlock()
	return err
}
