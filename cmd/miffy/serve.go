package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/logging"
	"github.com/miffy-proxy/miffy/internal/mgmt"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/server"
	"github.com/miffy-proxy/miffy/internal/shadow"
	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

// addrs are the listeners' actual addresses, for whoever waits on them.
type addrs struct {
	proxy, mgmt net.Addr
}

// serveOpts are what serve needs besides the config.
type serveOpts struct {
	// path is the config file given (-config, else ""): reloads read it
	// again, with environ, the way loadConfig did at start.
	path    string
	environ []string
	// reload enables SIGHUP and watching the config file.
	reload bool
	// ready, if set, is called once the listeners are up.
	ready func(addrs)
	// warnings are logged at start (config.Warnings; not for the demo).
	warnings []string
}

// serve runs the proxy and the management listener until ctx is done, then
// shuts down in order: stop accepting and drain client requests, wait for
// replays, flush the publisher, close the management listener last.
func serve(ctx context.Context, cfg *config.Config, so serveOpts, stdout, stderr io.Writer) error {
	log, err := logging.New(stderr, cfg.Logging, cfg.LogLevel)
	if err != nil {
		return err
	}
	log.Debug().Str("config", cfg.Masked()).Msg("effective config")
	for _, w := range so.warnings {
		log.Warn().Msg("config: " + w)
	}
	reg := newRegistry()

	// Each part is closed by a defer on the error returns; the orderly
	// shutdown (shutdown) closes them first, and the closes are safe twice.
	p, err := startPipeline(cfg, log, reg, stdout, stderr)
	if err != nil {
		return err
	}
	defer p.close()
	proxyLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Proxy.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("port: listening: %w", err)
	}
	defer proxyLn.Close()
	mgmtLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Management.Host, strconv.Itoa(cfg.Management.Port)))
	if err != nil {
		return fmt.Errorf("management.port: listening: %w", err)
	}
	defer mgmtLn.Close()
	canarySvc, err := startCanary(cfg, p.proxy, log.With().Str("component", "canary").Logger())
	if err != nil {
		return err
	}
	defer canarySvc.Close()
	mg, stopMgmt, err := management(cfg, so, p, canarySvc, log, reg)
	if err != nil {
		return err
	}
	defer stopMgmt()
	proxySrv, mgmtSrv, err := servers(cfg, p.proxy, mg, log, reg)
	if err != nil {
		return err
	}
	tlsCtx, stopTLS := context.WithCancel(context.Background())
	defer stopTLS()
	watchTLS(tlsCtx, log, map[string]*server.Server{"proxy": proxySrv, "management": mgmtSrv})
	errc := make(chan error, 2)
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	go func() { errc <- mgmtSrv.Serve(mgmtLn) }()
	log.Info().Str("proxy", proxyLn.Addr().String()).Str("management", mgmtLn.Addr().String()).
		Str("reference", upstream.RedactURL(cfg.Reference)).Str("candidate", upstream.RedactURL(cfg.Candidate)).Int("routes", len(p.proxy.Table().Routes())).
		Str("topic", cfg.Kafka.Topic).Msg("miffy is serving")
	if so.reload {
		defer watchConfig(so, log, p.reload(cfg, so, log))()
	}
	if so.ready != nil {
		so.ready(addrs{proxy: proxyLn.Addr(), mgmt: mgmtLn.Addr()})
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Str("shutdown_timeout", cfg.ShutdownTimeout.String()).Int64("replays", p.proxy.Replays()).Int64("records", p.kafka.Buffered()).
			Msg("shutting down: draining client requests, then replays, then delivering the buffered records; a second interrupt stops at once")
	case err := <-errc:
		runErr = fmt.Errorf("serving: %w", err)
	}
	return shutdown(ctx, cfg, runErr, proxySrv, mgmtSrv, canarySvc, p, log)
}

// newRegistry is the registry every part registers with: the Go
// collector's defaults, plus the scheduler's and the GC's histograms
// (go_sched_latencies_seconds: how long goroutines wait to run;
// go_gc_pauses_seconds): where a latency tail comes from.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	goMetrics := collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsScheduler)
	reg.MustRegister(collectors.NewGoCollector(goMetrics), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// pipeline is what a request goes through, and what it leaves behind: the
// proxy, its control manager, the record and tally publishers, the
// canary event log.
type pipeline struct {
	carry       *control.Carry
	kafka       *publish.Kafka
	tallyPub    *tally.Kafka
	proxy       *shadow.Proxy
	manager     *control.Manager
	closeEvents func()
	shutDown    bool // shutdown has closed the proxy, within its deadline
}

// startPipeline makes the pipeline of cfg. On an error what it started is
// closed.
func startPipeline(cfg *config.Config, log zerolog.Logger, reg *prometheus.Registry, stdout, stderr io.Writer) (_ *pipeline, err error) {
	enc, err := publish.NewEncoder(encoderConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("publish.%w", err)
	}
	cm, canaryLog := canary.NewMetrics(reg), log.With().Str("component", "canary").Logger()
	build := func(c *config.Config) (*shadow.Table, error) { return buildTable(c, cm, canaryLog) }
	p := &pipeline{carry: &control.Carry{Build: build}, closeEvents: func() {}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	table, err := p.carry.Builder(cfg)(nil, nil)
	if err != nil {
		return nil, err
	}
	p.kafka, err = publish.NewKafka(publish.KafkaConfig{
		Topic:              cfg.Kafka.Topic,
		Properties:         cfg.Kafka.Properties,
		MaxBufferedRecords: cfg.Kafka.MaxBufferedRecords,
		MaxBufferedBytes:   cfg.Kafka.MaxBufferedBytes,
		DeliveryTimeout:    cfg.Kafka.DeliveryTimeout,
	}, enc, kafkaLogger(log, cfg.LogLevel), reg)
	if err != nil {
		return nil, fmt.Errorf("starting the Kafka client: %w", err)
	}
	tallies, tallyPub, err := startTallies(cfg, kafkaLogger(log, cfg.LogLevel), reg)
	if err != nil {
		return nil, fmt.Errorf("starting the tally publisher: %w", err)
	}
	p.tallyPub = tallyPub
	scfg := shadowConfig(cfg)
	if scfg.Sides, err = upstreamSides(cfg); err != nil {
		return nil, err
	}
	scfg.RedactURI = enc.RedactURI
	scfg.RedactBody = enc.RedactBody
	events, closeEvents, err := openEvents(cfg.Canary.Events, stdout, stderr, reg)
	if err != nil {
		return nil, err
	}
	p.closeEvents = closeEvents // after the proxy has shut down: it adds until its last request
	if events != nil {
		scfg.CanaryEvents = events.Add
	}
	scfg.Tally = tallies
	outlet := &publish.Outlet{Sink: p.kafka, Compared: tallies.Compared}
	if cfg.Publish.Console {
		outlet.Console = publish.NewConsole(stdout, enc)
	}
	judge := compare.NewJudge(compare.NoiseConfig{
		Relative: cfg.Noise.Relative,
		Absolute: cfg.Noise.Absolute,
		Window:   cfg.Noise.Window,
	}, time.Now)
	p.proxy = shadow.New(scfg, table, judge, outlet, log, reg)
	p.manager = control.NewManager(p.carry.Builder(cfg), p.proxy, log.With().Str("component", "control").Logger(), reg, tallies.Totals)
	p.manager.Started(float64(time.Now().Unix()))
	return p, nil
}

// close closes what the pipeline started, where the orderly shutdown has
// not: the publishers' closes are safe twice; the proxy is closed here only
// on the error returns (nothing taken, nothing to wait for).
func (p *pipeline) close() {
	if p.proxy != nil && !p.shutDown {
		p.proxy.Close(context.Background()) // its compare workers: no replay was taken
	}
	if p.tallyPub != nil {
		p.tallyPub.Close(context.Background())
	}
	if p.kafka != nil {
		p.kafka.Close(context.Background())
	}
	p.closeEvents()
}

// reload is what watchConfig calls: load the config file again and hand
// the manager its builder. cfg is the config serve started with.
func (p *pipeline) reload(cfg *config.Config, so serveOpts, log zerolog.Logger) func() {
	return func() {
		p.manager.Reload(func() (control.Builder, error) {
			next, err := loadConfig(so.path, so.environ)
			if err != nil {
				return nil, err
			}
			for _, w := range next.Warnings(miffy.DefaultConfig) {
				log.Warn().Msg("config reload: " + w)
			}
			if what := control.RestartOnly(cfg, next); what != "" {
				log.Warn().Str("changed", what).Msg("config reload: these settings take effect at the next restart")
			}
			return p.carry.Builder(next), nil
		}, float64(time.Now().Unix()))
	}
}

// management is the management handler: health, metrics, the decide
// handler, the admin API when a token is set, the control topic's
// follower when one is configured. stop stops the follower.
func management(cfg *config.Config, so serveOpts, p *pipeline, canarySvc *canaryServices, log zerolog.Logger, reg *prometheus.Registry) (_ *mgmt.Server, stop func(), err error) {
	mg := mgmt.New(mgmt.Config{PProf: cfg.Management.PProf}, reg)
	mg.Handle("/decide/", canarySvc.Decide)
	if cfg.Kafka.RequireBroker {
		mg.AddCheck("broker", p.kafka.Ping)
	}
	token, err := adminToken(cfg, so.environ)
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		mg.Handle("/admin/", control.AdminHandler(p.manager, token))
	}
	if cfg.Control.Topic == "" {
		return mg, func() {}, nil
	}
	opts, _ := publish.ClientOptions(cfg.Kafka.Properties) // checked by loadConfig
	follower, err := control.Follow(p.manager, control.FollowConfig{Topic: cfg.Control.Topic, StaleAfter: cfg.Control.StaleAfter}, opts, log.With().Str("component", "control").Logger(), reg)
	if err != nil {
		return nil, nil, err
	}
	mg.AddCheck("control", follower.Ready)
	return mg, func() { follower.Close() }, nil
}

// servers are the proxy's and the management listener's HTTP servers.
func servers(cfg *config.Config, proxy http.Handler, mg http.Handler, log zerolog.Logger, reg prometheus.Registerer) (proxySrv, mgmtSrv *server.Server, err error) {
	errLog := stdlog.New(httpErrorLog{log}, "", 0)
	rejected := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "miffy_proxy_rejected_total",
		Help: "Client requests refused with 400 and a close by the framing guard, by reason.",
	}, []string{"reason"})
	proxySrv, err = server.New(server.Config{
		ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout,
		ReadTimeout:       cfg.Proxy.ReadTimeout,
		WriteTimeout:      cfg.Proxy.WriteTimeout,
		IdleTimeout:       cfg.Proxy.IdleTimeout,
		MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
		TLS:               server.TLSFiles{CertFile: cfg.Proxy.TLSCertFile, KeyFile: cfg.Proxy.TLSKeyFile, ClientCAFile: cfg.Proxy.TLSClientCAFile},
		ErrorLog:          errLog,
		Rejected:          func(reason string) { rejected.WithLabelValues(reason).Inc() },
	}, proxy)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	mgmtSrv, err = server.New(server.Config{
		ReadHeaderTimeout: 10 * time.Second,
		TLS:               server.TLSFiles{CertFile: cfg.Management.TLSCertFile, KeyFile: cfg.Management.TLSKeyFile, ClientCAFile: cfg.Management.TLSClientCAFile},
		ErrorLog:          errLog,
	}, mg)
	if err != nil {
		return nil, nil, fmt.Errorf("management: %w", err)
	}
	return proxySrv, mgmtSrv, nil
}

// shutdown stops in order within [shutdown_timeout] (a second signal ends
// the waits at once): drain client requests, wait for the replays,
// deliver records and tallies side by side, close the management
// listener last. It returns runErr, or the records lost at a second
// signal.
func shutdown(ctx context.Context, cfg *config.Config, runErr error, proxySrv, mgmtSrv *server.Server, canarySvc *canaryServices, p *pipeline, log zerolog.Logger) error {
	hard := hardStop(ctx)
	shutCtx, cancel := context.WithTimeout(hard, cfg.ShutdownTimeout)
	defer cancel()
	if err := proxySrv.Shutdown(shutCtx); err != nil {
		log.Warn().Err(err).Msg("client requests still open at the shutdown deadline")
	}
	canarySvc.Close()
	if n := p.proxy.Replays(); n > 0 {
		log.Info().Int64("replays", n).Msg("waiting for the replays in flight")
	}
	p.shutDown = true
	if err := p.proxy.Close(shutCtx); err != nil {
		log.Warn().Err(err).Msg("replays abandoned at the shutdown deadline")
	}
	tallyDone := make(chan error, 1)
	go func() { tallyDone <- p.tallyPub.Close(shutCtx) }()
	if n := p.kafka.Buffered(); n > 0 {
		deadline, _ := shutCtx.Deadline()
		log.Info().Int64("records", n).Str("for_at_most", time.Until(deadline).Round(time.Millisecond).String()).
			Msg("delivering the buffered records to Kafka")
	}
	if err := p.kafka.Close(shutCtx); err != nil {
		log.Error().Err(err).Msg("records not delivered at the shutdown deadline")
		if hard.Err() != nil && runErr == nil {
			runErr = fmt.Errorf("stopped at a second signal: %w", err)
		}
	}
	if err := <-tallyDone; err != nil {
		log.Error().Err(err).Msg("tallies not delivered at the shutdown deadline")
	}
	mgmtSrv.Shutdown(shutCtx)
	log.Info().Msg("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// httpErrorLog sends net/http's server log lines (TLS errors, bad requests
// the server answers itself) to zerolog at debug level.
type httpErrorLog struct{ log zerolog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	msg := p
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	h.log.Debug().Str("component", "http").Msg(string(msg))
	return len(p), nil
}

// kafkaLogger is the client's logger: its info lines (metadata, producer
// ids) are only worth seeing when debugging.
func kafkaLogger(log zerolog.Logger, level string) zerolog.Logger {
	l := log.With().Str("component", "kafka").Logger()
	if level != "debug" {
		l = l.Level(zerolog.WarnLevel)
	}
	return l
}

// watchTLS reloads the listeners' TLS files when they change and on
// SIGHUP, until ctx is done. A failed reload keeps the files in use.
func watchTLS(ctx context.Context, log zerolog.Logger, srvs map[string]*server.Server) {
	for name, srv := range srvs {
		l := log.With().Str("listener", name).Logger()
		err := srv.WatchTLS(ctx,
			func() { l.Info().Msg("TLS files changed: reloaded") },
			func(err error) { l.Error().Err(err).Msg("TLS reload failed; the files in use stay") })
		if err != nil {
			l.Warn().Err(err).Msg("cannot watch the TLS files; reload with SIGHUP")
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				for name, srv := range srvs {
					if err := srv.ReloadTLS(); err != nil {
						log.Error().Err(err).Str("listener", name).Msg("TLS reload failed; the files in use stay")
					}
				}
			}
		}
	}()
}
