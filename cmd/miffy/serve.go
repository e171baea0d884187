package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/front"
	"github.com/miffy-proxy/miffy/internal/logging"
	"github.com/miffy-proxy/miffy/internal/mgmt"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/shadow"
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

	reg := prometheus.NewRegistry()
	// The Go collector's defaults, plus the scheduler's and the GC's
	// histograms (go_sched_latencies_seconds: how long goroutines wait to
	// run; go_gc_pauses_seconds): where a latency tail comes from.
	goMetrics := collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsScheduler)
	reg.MustRegister(collectors.NewGoCollector(goMetrics), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	enc, err := publish.NewEncoder(publish.EncoderConfig{
		MaxBodyBytes:    cfg.Publish.MaxBodyBytes,
		RedactHeaders:   cfg.Publish.RedactHeaders,
		RedactJSONPaths: cfg.Publish.RedactJSONPaths,
	})
	if err != nil {
		return fmt.Errorf("publish.%w", err)
	}
	lv := &live{}
	table, err := lv.builder(cfg)(nil, nil)
	if err != nil {
		return err
	}
	kafka, err := publish.NewKafka(publish.KafkaConfig{
		Topic:              cfg.Kafka.Topic,
		Properties:         cfg.Kafka.Properties,
		MaxBufferedRecords: cfg.Kafka.MaxBufferedRecords,
		MaxBufferedBytes:   cfg.Kafka.MaxBufferedBytes,
		DeliveryTimeout:    cfg.Kafka.DeliveryTimeout,
	}, enc, kafkaLogger(log, cfg.LogLevel), reg)
	if err != nil {
		return fmt.Errorf("starting the Kafka client: %w", err)
	}

	tallies, tallyPub, err := startTallies(cfg, kafkaLogger(log, cfg.LogLevel), reg)
	if err != nil {
		kafka.Close(context.Background())
		return fmt.Errorf("starting the tally publisher: %w", err)
	}
	defer tallyPub.Close(context.Background()) // on the error returns; safe twice
	scfg := shadowConfig(cfg)
	scfg.Tally = tallies
	if cfg.Publish.Console {
		scfg.Console = publish.NewConsole(stdout, enc)
	}
	judge := compare.NewJudge(compare.NoiseConfig{
		Relative: cfg.Noise.Relative,
		Absolute: cfg.Noise.Absolute,
		Window:   cfg.Noise.Window,
	}, time.Now)
	proxy := shadow.New(scfg, table, judge, kafka, log, reg)
	manager := control.NewManager(lv.builder(cfg), proxy, log.With().Str("component", "control").Logger(), reg, reg)
	manager.Started(float64(time.Now().Unix()))

	proxyLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Proxy.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		kafka.Close(context.Background())
		return fmt.Errorf("port: listening: %w", err)
	}
	mgmtLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Management.Host, strconv.Itoa(cfg.Management.Port)))
	if err != nil {
		proxyLn.Close()
		kafka.Close(context.Background())
		return fmt.Errorf("management.port: listening: %w", err)
	}

	canarySvc, err := startCanary(cfg, proxy, log.With().Str("component", "canary").Logger())
	if err != nil {
		proxyLn.Close()
		mgmtLn.Close()
		kafka.Close(context.Background())
		return err
	}
	defer canarySvc.Close() // safe twice; on the error returns below

	mg := mgmt.New(mgmt.Config{PProf: cfg.Management.PProf}, reg)
	mg.Handle("/decide/", canarySvc.Decide)
	if cfg.Kafka.RequireBroker {
		mg.AddCheck("broker", kafka.Ping)
	}
	token, err := adminToken(cfg, so.environ)
	if err != nil {
		proxyLn.Close()
		mgmtLn.Close()
		kafka.Close(context.Background())
		return err
	}
	if token != "" {
		mg.Handle("/admin/", control.AdminHandler(manager, token))
	}
	if cfg.Control.Topic != "" {
		opts, _ := publish.ClientOptions(cfg.Kafka.Properties) // checked by loadConfig
		follower, err := control.Follow(manager, cfg.Control.Topic, opts, log.With().Str("component", "control").Logger(), reg)
		if err != nil {
			proxyLn.Close()
			mgmtLn.Close()
			kafka.Close(context.Background())
			return err
		}
		defer follower.Close()
		mg.AddCheck("control", follower.Ready)
	}
	errLog := stdlog.New(httpErrorLog{log}, "", 0)
	proxySrv := &http.Server{
		Handler:           proxy,
		ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout,
		ReadTimeout:       cfg.Proxy.ReadTimeout,
		IdleTimeout:       cfg.Proxy.IdleTimeout,
		MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	mgmtSrv := &http.Server{Handler: mg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	errc := make(chan error, 3)
	var fast *front.Server
	if cfg.Proxy.FastServer {
		// net/http's server gets what the fast path hands off; both
		// serve the same hardened handler.
		clientLn := shadow.Harden(proxySrv, nil)
		fast = front.New(proxySrv.Handler, front.Config{
			ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout,
			ReadTimeout:       cfg.Proxy.ReadTimeout,
			IdleTimeout:       cfg.Proxy.IdleTimeout,
			MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
			ErrorLog:          errLog,
		})
		registerHandoffs(reg, fast)
		clientLn = shadow.GuardListener(fast.Handoff())
		go func() { errc <- proxySrv.Serve(clientLn) }()
		go func() { errc <- fast.Serve(proxyLn) }()
	} else {
		clientLn := shadow.Harden(proxySrv, proxyLn)
		go func() { errc <- proxySrv.Serve(clientLn) }()
	}
	go func() { errc <- mgmtSrv.Serve(mgmtLn) }()
	log.Info().Str("proxy", proxyLn.Addr().String()).Str("management", mgmtLn.Addr().String()).
		Str("reference", cfg.Reference).Str("candidate", cfg.Candidate).Int("routes", len(table.Routes())).
		Str("topic", cfg.Kafka.Topic).Msg("miffy is serving")
	if so.reload {
		stopWatch := watchConfig(so, log, func() {
			manager.Reload(func() (control.Builder, error) {
				next, err := loadConfig(so.path, so.environ)
				if err != nil {
					return nil, err
				}
				if what := restartOnly(cfg, next); what != "" {
					log.Warn().Str("changed", what).Msg("config reload: these settings take effect at the next restart")
				}
				return lv.builder(next), nil
			}, float64(time.Now().Unix()))
		})
		defer stopWatch()
	}
	if so.ready != nil {
		so.ready(addrs{proxy: proxyLn.Addr(), mgmt: mgmtLn.Addr()})
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-errc:
		runErr = fmt.Errorf("serving: %w", err)
	}

	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := shutdownProxy(shutCtx, proxySrv, fast); err != nil {
		log.Warn().Err(err).Msg("client requests still open at the shutdown deadline")
	}
	canarySvc.Close()
	if err := proxy.Close(shutCtx); err != nil {
		log.Warn().Err(err).Msg("replays abandoned at the shutdown deadline")
	}
	if err := tallyPub.Close(shutCtx); err != nil {
		log.Error().Err(err).Msg("tallies not delivered at the shutdown deadline")
	}
	if err := kafka.Close(shutCtx); err != nil {
		log.Error().Err(err).Msg("records not delivered at the shutdown deadline")
	}
	mgmtSrv.Shutdown(shutCtx)
	log.Info().Msg("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// shutdownProxy shuts the client-facing servers down together: the fast
// path (if on) and net/http's.
func shutdownProxy(ctx context.Context, srv *http.Server, fast *front.Server) error {
	if fast == nil {
		return srv.Shutdown(ctx)
	}
	errc := make(chan error, 1)
	go func() { errc <- fast.Shutdown(ctx) }()
	err := srv.Shutdown(ctx)
	return errors.Join(err, <-errc)
}

// registerHandoffs exports how many client connections the fast path
// handed to net/http, by reason.
func registerHandoffs(reg prometheus.Registerer, fast *front.Server) {
	for _, reason := range front.Reasons {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "miffy_proxy_handoffs_total",
			Help:        "Client connections the fast HTTP/1.1 path handed to net/http's server (proxy.fast_server), by reason.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(fast.Handoffs(reason)) }))
	}
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
