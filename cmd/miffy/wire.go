package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/shadow"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

var _ shadow.Publisher = (*publish.Outlet)(nil)

// loadConfig loads the embedded defaults, the user's file and the
// environment. path "" means $MIFFY_CONFIG, else ./config.toml if present.
func loadConfig(path string, environ []string) (*config.Config, error) {
	if path == "" {
		path = lookupEnv(environ, "MIFFY_CONFIG")
	}
	cfg, err := config.Load(miffy.DefaultConfig, path, environ)
	if err != nil {
		return nil, err
	}
	if _, err := publish.ClientOptions(cfg.Kafka.Properties); err != nil {
		return nil, config.NameVariables(environ, err)
	}
	if _, err := publish.NewEncoder(encoderConfig(cfg)); err != nil {
		return nil, fmt.Errorf("publish.%w", err)
	}
	return cfg, nil
}

// encoderConfig is what the record encoder (and the redaction of logs)
// takes from the config.
func encoderConfig(cfg *config.Config) publish.EncoderConfig {
	return publish.EncoderConfig{
		MaxBodyBytes:      cfg.Publish.MaxBodyBytes,
		RedactHeaders:     cfg.Publish.RedactHeaders,
		RedactJSONPaths:   cfg.Publish.RedactJSONPaths,
		RedactQueryParams: cfg.Publish.RedactQueryParams,
		RedactJSONKeys:    cfg.Publish.RedactJSONKeys,
	}
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if len(kv) > len(key) && kv[len(key)] == '=' && kv[:len(key)] == key {
			return kv[len(key)+1:]
		}
	}
	return ""
}

func shadowConfig(cfg *config.Config) shadow.Config {
	return shadow.Config{
		ForwardedHeaders:       cfg.Proxy.ForwardedHeaders,
		DialTimeout:            cfg.Proxy.DialTimeout,
		ReferenceTimeout:       cfg.Proxy.ReferenceTimeout,
		MaxIdleConnsPerHost:    cfg.Proxy.MaxIdleConnsPerHost,
		UpstreamIdleTimeout:    cfg.Proxy.UpstreamIdleTimeout,
		MaxRequestBodyBytes:    cfg.Proxy.MaxRequestBodyBytes,
		MaxBodyBytes:           cfg.Shadow.MaxBodyBytes,
		MaxResponseBytes:       cfg.Shadow.MaxResponseBytes,
		Timeout:                cfg.Shadow.Timeout,
		MaxInFlight:            cfg.Shadow.MaxInFlight,
		MaxInFlightBytes:       cfg.Shadow.MaxInFlightBytes,
		AccessLog:              cfg.AccessLog,
		ServedByHeader:         cfg.Canary.ServedByHeader,
		DebugRequests:          cfg.Proxy.DebugRequests,
		DebugBodies:            cfg.Proxy.DebugBodies,
		AllowUpgrades:          cfg.Proxy.AllowUpgrades,
		MaxResponseHeaderBytes: cfg.Proxy.MaxResponseHeaderBytes,
		CompareQueue:           cfg.Shadow.CompareQueue,
	}
}

// buildTable turns the configured routes into a routing table; canary
// routers count into cm (nil: nowhere) and log to log.
func buildTable(cfg *config.Config, cm *canary.Metrics, log zerolog.Logger) (*shadow.Table, error) {
	upstream, err := parseURL("reference", cfg.Reference)
	if err != nil {
		return nil, err
	}
	routes := make([]*shadow.Route, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		cmp, err := compare.New(cfg.Compare.Merge(rc.Rules))
		if err != nil {
			return nil, fmt.Errorf("%s.%w", key, err)
		}
		// Load resolved every route's values (config.Resolve): nothing
		// here takes a default.
		if rc.AllowSideEffects == nil || rc.Sample == nil || rc.PublishNoise == nil {
			return nil, fmt.Errorf("%s: not resolved (config.Resolve)", key)
		}
		r := &shadow.Route{
			Name:             rc.Name,
			Pattern:          rc.Path,
			Key:              rc.Key,
			Methods:          rc.Methods,
			AllowSideEffects: *rc.AllowSideEffects,
			Sample:           *rc.Sample,
			Publish:          shadow.PublishMode(rc.Publish),
			PublishNoise:     *rc.PublishNoise,
			Comparer:         cmp,
			TrimPrefix:       rc.TrimPrefix,
			ReferenceHost:    rc.ReferenceHostHeader,
			CandidateHost:    rc.CandidateHostHeader,

			ReferenceProtocol: rc.ReferenceProtocol,
			CandidateProtocol: rc.CandidateProtocol,
			SecondaryProtocol: rc.SecondaryProtocol,
		}
		if r.Reference, err = parseURL(key+".reference", rc.Reference); err != nil {
			return nil, err
		}
		if r.Candidate, err = parseURL(key+".candidate", rc.Candidate); err != nil {
			return nil, err
		}
		if rc.Secondary != "" {
			if r.Secondary, err = parseURL(key+".secondary", rc.Secondary); err != nil {
				return nil, err
			}
		}
		if rc.Mode == config.ModeCanary {
			if r.Canary, err = canaryRouter(cfg, rc, cm, log); err != nil {
				return nil, fmt.Errorf("%s.%w", key, err)
			}
			r.Shadow = rc.Shadow
		}
		routes = append(routes, r)
	}
	return shadow.NewTable(upstream, routes)
}

// canaryRouter builds the router of a canary route, whose values Load
// resolved from [canary] (config.Resolve).
func canaryRouter(cfg *config.Config, rc config.Route, cm *canary.Metrics, log zerolog.Logger) (*canary.Router, error) {
	cc := canary.Config{
		Name:                 rc.Name,
		Weight:               rc.Weight,
		StickyKey:            rc.StickyKey,
		StickyCookie:         rc.StickyCookie,
		OverrideHeader:       rc.OverrideHeader,
		CanaryHeader:         rc.CanaryHeader,
		DecisionTimeout:      rc.DecisionTimeout,
		DecisionCacheTTL:     rc.DecisionCacheTTL,
		DecisionMaxBodyBytes: cfg.Canary.DecisionMaxBodyBytes,
		Breaker: canary.BreakerConfig{
			MaxErrors:    rc.MaxErrors,
			MaxErrorRate: rc.MaxErrorRate,
			MinRequests:  cfg.Canary.MinRequests,
			MaxRequests:  rc.MaxRequests,
			MaxRPS:       rc.MaxRPS,
			Window:       rc.Window,
			Cooldown:     rc.Cooldown,
			Probes:       rc.Probes,
		},
	}
	if rc.DecisionURL != "" {
		u, err := parseURL("decision_url", rc.DecisionURL)
		if err != nil {
			return nil, err
		}
		cc.DecisionURL = u
	}
	return canary.NewRouter(cc, cm, log)
}

// canaryServices are the decision services miffy offers other proxies: the
// maxwells-daemon socket ([canary] socket) reporting to statsd ([metrics]
// statsd), and the HTTP decide handler for the management port.
type canaryServices struct {
	// Decide answers /decide/{route}; mount it at "/decide/".
	Decide http.Handler
	socket *canary.Socket
	statsd *canary.Statsd
}

// startCanary starts the decision socket and the statsd client when they
// are configured, and makes the decide handler, which looks routes up in
// the proxy's current table. Close it after the proxy listener has shut
// down.
func startCanary(cfg *config.Config, proxy *shadow.Proxy, log zerolog.Logger) (*canaryServices, error) {
	lookup := func(name string) (*canary.Router, string, bool) {
		for _, r := range proxy.Table().Routes() {
			if r.Canary != nil && r.Name == name {
				return r.Canary, r.Pattern, true
			}
		}
		return nil, "", false
	}
	cs := &canaryServices{Decide: canary.Handler(lookup)}
	if cfg.Metrics.Statsd != "" {
		s, err := canary.DialStatsd(cfg.Metrics.Statsd)
		if err != nil {
			return nil, fmt.Errorf("metrics.statsd: %w", err)
		}
		cs.statsd = s
	}
	if cfg.Canary.Socket != "" {
		name := cfg.CanarySocketRoute()
		if _, _, ok := lookup(name); !ok {
			cs.Close()
			return nil, fmt.Errorf("canary.socket_route: no canary route named %q", name)
		}
		router := func() *canary.Router { rt, _, _ := lookup(name); return rt }
		sock, err := canary.ListenSocket(canary.SocketConfig{Path: cfg.Canary.Socket}, router, cs.statsd, log)
		if err != nil {
			cs.Close()
			return nil, fmt.Errorf("canary.socket: %w", err)
		}
		cs.socket = sock
		log.Info().Str("socket", sock.Addr()).Str("route", name).Msg("serving canary decisions on the unix socket")
	}
	return cs, nil
}

// Close stops the socket (waiting for exchanges in flight) and the statsd
// client.
func (cs *canaryServices) Close() error {
	var err error
	if cs.socket != nil {
		err = cs.socket.Close()
	}
	cs.statsd.Close()
	return err
}

// parseURL parses a base URL that config validated; the error, naming
// key, is for a URL set since (e.g. by a runtime override).
func parseURL(key, raw string) (*url.URL, error) {
	u, err := upstream.ParseBaseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return u, nil
}

// openEvents starts the canary event log [canary] events names (nil when
// off); close writes what is queued and closes the file.
func openEvents(dest string, stdout, stderr io.Writer, reg prometheus.Registerer) (events *canary.EventLog, close func(), err error) {
	var w io.Writer
	var f *os.File
	switch dest {
	case "":
		return nil, func() {}, nil
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		if f, err = os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640); err != nil {
			return nil, nil, fmt.Errorf("canary.events: %w", err)
		}
		w = f
	}
	events = canary.NewEventLog(w, reg)
	return events, func() {
		events.Close()
		if f != nil {
			f.Close()
		}
	}, nil
}
