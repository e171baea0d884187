package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/broker"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/demo"
	"github.com/miffy-proxy/miffy/internal/logging"
	"github.com/miffy-proxy/miffy/internal/publish"
)

const demoUsage = `Usage: miffy demo [flags]

Starts a demo reference and candidate, an embedded Kafka-protocol broker and
the proxy on the embedded defaults (./config.toml is not read): nothing to
install, no Docker. Ports in use? The proxy and management ports come from
the environment, the demo's own listeners from the flags:

  MIFFY_PORT=18080 MIFFY_MANAGEMENT_PORT=19000 miffy demo \
      -reference 127.0.0.1:13000 -candidate 127.0.0.1:13001 -broker 127.0.0.1:19092

With -rollout the demo route is a canary route that a rollout controller
moves step by step on evidence, while the demo sends it traffic; POST
/demo/bad on the candidate makes it bad, and the rollout rolls back.

Flags:
`

// runDemo starts the demo reference and candidate, an embedded
// Kafka-protocol broker and the proxy, on the embedded defaults: nothing to
// install, no Docker.
func runDemo(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miffy demo", flag.ContinueOnError)
	fs.Usage = func() {
		io.WriteString(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	brokerAddr := fs.String("broker", "127.0.0.1:9092", "address of the embedded broker")
	refAddr := fs.String("reference", "127.0.0.1:3000", "address of the demo reference")
	candAddr := fs.String("candidate", "127.0.0.1:3001", "address of the demo candidate")
	reportAddr := fs.String("report", defaultServeAddr, "address of the report page (as miffy report --serve); \"off\": none")
	withRollout := fs.Bool("rollout", false, "roll the candidate out step by step with a rollout controller, and send traffic (see Rolling out safely in README.md)")
	interval := fs.Duration("interval", 30*time.Second, "with -rollout: the least time at each step")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *interval <= 0 {
		return fmt.Errorf("%w: -interval: must be positive, got %s", errUsage, *interval)
	}
	if !*withRollout && flagSet(fs, "interval") {
		return fmt.Errorf("%w: -interval: only with -rollout", errUsage)
	}

	b, err := broker.Start(broker.Config{Addr: *brokerAddr, Retention: time.Hour}, zerolog.Nop())
	if err != nil {
		return fmt.Errorf("starting the embedded broker on %s: %w", *brokerAddr, err)
	}
	defer b.Close()

	stopUpstreams, err := startDemoUpstreams(*refAddr, *candAddr)
	if err != nil {
		return err
	}
	defer stopUpstreams()

	cfg, err := demoConfig(environ, b.Addr(), *refAddr, *candAddr, *withRollout, *interval)
	if err != nil {
		return err
	}
	opts, err := publish.ClientOptions(cfg.Kafka.Properties)
	if err != nil {
		return err
	}
	pageURL := ""
	if *reportAddr != "off" {
		log := zerolog.New(stderr).With().Timestamp().Str("component", "report").Logger()
		page, err := startBoard(ctx, cfg, opts, *reportAddr, cfg.Kafka.Topic, cfg.Report.TallyTopic, kgo.NewOffset().AtStart(), log)
		if err != nil {
			return fmt.Errorf("starting the report page (-report): %w", err)
		}
		defer page.Close()
		pageURL = page.URL
	}
	var ro *demoRollout
	if *withRollout {
		log, err := logging.New(stderr, cfg.Logging, cfg.LogLevel)
		if err != nil {
			return err
		}
		log = log.With().Str("component", "rollout").Logger()
		if ro, err = startDemoRollout(ctx, cfg, opts, log); err != nil {
			return err
		}
		defer ro.stop()
	}
	return serve(ctx, cfg, serveOpts{environ: environ, ready: func(a addrs) {
		printDemoHelp(stdout, a, b.Addr(), cfg.Kafka.Topic, *refAddr, *candAddr, pageURL)
		if ro != nil {
			printDemoRolloutHelp(stdout, cfg.Routes[0].Name, b.Addr(), *candAddr, pageURL, *interval)
			ro.traffic("http://127.0.0.1:" + port(a.proxy))
		}
	}}, stdout, stderr)
}

// demoConfig is the demo's config: the embedded defaults (whatever
// ./config.toml says; MIFFY_ variables still apply) with one route to the
// demo upstreams through the embedded broker, rolled out with -rollout.
func demoConfig(environ []string, brokerAddr, refAddr, candAddr string, withRollout bool, interval time.Duration) (*config.Config, error) {
	cfg, err := config.LoadDefaults(miffy.DefaultConfig, environ)
	if err != nil {
		return nil, err
	}
	if cfg.Proxy.Host == "" {
		// Like its upstreams and broker, the demo stays on this machine
		// unless told otherwise (MIFFY_PROXY__HOST=0.0.0.0).
		cfg.Proxy.Host = "127.0.0.1"
	}
	cfg.Reference = "http://" + refAddr
	cfg.Candidate = "http://" + candAddr
	cfg.Kafka.Properties["bootstrap.servers"] = brokerAddr
	cfg.Routes = []config.Route{{
		Path: "/api/{value}", Key: "value", Name: "/api/{value}",
		Reference: cfg.Reference, Candidate: cfg.Candidate,
	}}
	// Tallies every second, so that the walkthrough's report and page
	// show every request at once.
	cfg.Report.TallyInterval = time.Second
	if withRollout {
		demoRolloutConfig(cfg, interval)
	}
	cfg.Resolve() // the routes above take [shadow], [publish], [noise] and [canary]'s values
	return cfg, cfg.Validate()
}

func startDemoUpstreams(refAddr, candAddr string) (stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(ctx)
		}
	}
	for _, u := range []struct {
		addr string
		h    http.Handler
	}{{refAddr, demo.Reference()}, {candAddr, demo.Candidate()}} {
		ln, err := net.Listen("tcp", u.addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("starting a demo upstream: %w", err)
		}
		s := &http.Server{Handler: u.h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Println("demo upstream:", err)
			}
		}()
	}
	return stop, nil
}

func printDemoHelp(w io.Writer, a addrs, brokerAddr, topic, refAddr, candAddr, pageURL string) {
	proxy := "localhost:" + port(a.proxy)
	fmt.Fprintf(w, `
miffy demo is running
  proxy       http://%[1]s   (routes: /api/{value})
  management  http://%[2]s   (/healthz /readyz /metrics)
  reference   http://%[3]s   candidate http://%[4]s
  broker      %[5]s   (embedded, topic %[6]q)
  report page %[7]s   (routes, verdicts, differing paths, examples; live)

Try:
  curl -s %[1]s/api/3     # candidate agrees (so do 1 and 2): no record
  curl -s %[1]s/api/4     # a changed field
  curl -s %[1]s/api/5     # a missing field
  curl -s %[1]s/api/6     # the candidate answers 500
  curl -s %[1]s/api/7     # the candidate is slow; you are not kept waiting
  curl -s %[1]s/api/8     # a number turned into a string
  curl -s %[1]s/          # no route: proxied to the reference, not shadowed

See the mismatches:
  kcat -b %[5]s -C -t %[6]s -e
  curl -s %[2]s/metrics | grep ^miffy_mismatches
  miffy report -brokers %[5]s          # compared, rates, p99, a verdict per route
  open %[7]s

Ports in use? MIFFY_PORT and MIFFY_MANAGEMENT_PORT move the proxy and the
management listener; -reference, -candidate and -broker the rest (miffy demo -h).
Stop with Ctrl-C.
`, proxy, "localhost:"+port(a.mgmt), refAddr, candAddr, brokerAddr, topic, cmp.Or(pageURL, "(off)"))
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
