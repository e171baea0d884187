package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/logging"
	"github.com/miffy-proxy/miffy/internal/mgmt"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/rollout"
	"github.com/miffy-proxy/miffy/internal/server"
)

const rolloutUsage = `Usage: miffy rollout [-config FILE]

Runs a rollout controller: it judges each route with a [routes.rollout]
table every [rollout] evaluate_every and sets its weight through the
[control] topic, step by step on the evidence ([verdict]). Any number may
run; the one holding the lease ([rollout] lease_topic) acts. Serves
/healthz, /readyz and /metrics (miffy_rollout_*) on [management] host:port.

Flags:
`

// runRollout runs the rollout controller until ctx is done.
func runRollout(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miffy rollout", flag.ContinueOnError)
	fs.Usage = func() { io.WriteString(fs.Output(), rolloutUsage); fs.PrintDefaults() }
	cfg, _, err := loadWithFlags(fs, args, environ, stdout, stderr)
	if err != nil {
		return err
	}
	routes := rolloutRoutes(cfg)
	if len(routes) == 0 {
		return errors.New("rollout: no route has a [routes.rollout] table; nothing to roll out")
	}
	log, err := logging.New(stderr, cfg.Logging, cfg.LogLevel)
	if err != nil {
		return err
	}
	opts, err := publish.ClientOptions(cfg.Kafka.Properties)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctl, err := rollout.New(rolloutConfig(cfg, routes), opts, log.With().Str("component", "rollout").Logger(), reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Management.Host, strconv.Itoa(cfg.Management.Port)))
	if err != nil {
		return fmt.Errorf("management.port: listening: %w", err)
	}
	mg := mgmt.New(mgmt.Config{PProf: cfg.Management.PProf}, reg)
	mg.AddCheck("rollout", ctl.Ready)
	srv, err := server.New(server.Config{
		ReadHeaderTimeout: 10 * time.Second,
		TLS:               server.TLSFiles{CertFile: cfg.Management.TLSCertFile, KeyFile: cfg.Management.TLSKeyFile, ClientCAFile: cfg.Management.TLSClientCAFile},
	}, mg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("management: %w", err)
	}
	go srv.Serve(ln)
	log.Info().Str("management", ln.Addr().String()).Str("controller", ctl.ID()).Msg("miffy rollout is running")
	runErr := ctl.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return runErr
}

// rolloutConfig is the controller's config from miffy's.
func rolloutConfig(cfg *config.Config, routes []rollout.Route) rollout.Config {
	ro := cfg.Rollout
	return rollout.Config{
		Topic:         ro.Topic,
		LeaseTopic:    ro.LeaseTopic,
		LeaseTimeout:  ro.LeaseTimeout,
		EvaluateEvery: ro.EvaluateEvery,
		ControlTopic:  cfg.Control.Topic,
		TallyTopic:    cfg.Report.TallyTopic,
		TallyInterval: cfg.Report.TallyInterval,
		ID:            ro.ControllerID,
		Routes:        routes,
	}
}

// rolloutRoutes are the rollouts of cfg's routes that have one (Load
// resolved their unset keys from [rollout]).
func rolloutRoutes(cfg *config.Config) []rollout.Route {
	var out []rollout.Route
	for _, rc := range cfg.Routes {
		if ro := rc.Rollout; ro != nil {
			out = append(out, rollout.Route{
				Name:            rc.Name,
				Steps:           ro.Steps,
				Interval:        ro.Interval,
				ShadowFirst:     *ro.ShadowFirst,
				MaxInconclusive: ro.MaxInconclusive,
				Limits:          cfg.Verdict.With(rc.Verdict),
			})
		}
	}
	return out
}
