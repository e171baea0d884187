package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/report"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// runReport reads the records that miffy instances published to the topic
// and prints a summary per route (see internal/report/README.md). The
// broker, topic and SASL/TLS properties come from the same config as
// serve; flags override them.
func runReport(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miffy report", flag.ContinueOnError)
	fs.Usage = func() {
		io.WriteString(fs.Output(), "Usage: miffy report [flags]\n\nReads the records on the topic and prints a diff report per route.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	f := newReportFlags(fs)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if err := f.validate(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(*f.path, environ)
	if err != nil {
		return err
	}
	props := maps.Clone(cfg.Kafka.Properties)
	if props == nil {
		props = map[string]string{}
	}
	if *f.brokers != "" {
		props["bootstrap.servers"] = *f.brokers
	}
	opts, err := publish.ClientOptions(props)
	if err != nil {
		return err
	}
	topic, tallyTopic := cmp.Or(*f.topic, cfg.Kafka.Topic), *f.tallyTopic
	switch tallyTopic {
	case "":
		tallyTopic = cfg.Report.TallyTopic
	case "-":
		tallyTopic = ""
	}
	if f.serve.set {
		return serveReport(ctx, cfg, opts, f.serve.addr, topic, tallyTopic, f.start, stdout, stderr)
	}
	sum, err := report.RunSummary(ctx, report.Options{
		Topic:      topic,
		TallyTopic: tallyTopic,
		Client:     opts,
		Group:      *f.group,
		From:       f.start,
		UntilEnd:   *f.untilEnd,
		Follow:     *f.follow,
		Interval:   *f.interval,
		JSON:       *f.asJSON,
		Aggregate: report.Config{
			TopPaths:   *f.top,
			Until:      f.untilT,
			LatencyTie: cfg.Report.LatencyTie,
			Limits:     routeLimits(cfg),
		},
	}, stdout, stderr)
	if err != nil || !*f.check {
		return err
	}
	var configured []string
	for _, r := range cfg.Routes {
		configured = append(configured, r.Name)
	}
	return checkVerdict(sum, *f.routeName, configured, stderr)
}

// reportFlags are miffy report's flags; start and untilT are -from and
// -until parsed (by validate).
type reportFlags struct {
	path, brokers, topic, group, from, tallyTopic, until, routeName *string
	untilEnd, follow, asJSON, check                                 *bool
	interval                                                        *time.Duration
	top                                                             *int
	serve                                                           serveFlag

	start  report.From
	untilT time.Time
}

func newReportFlags(fs *flag.FlagSet) *reportFlags {
	f := &reportFlags{}
	f.path = fs.String("config", "", "config file for [kafka] (default $MIFFY_CONFIG, else ./config.toml if present)")
	f.brokers = fs.String("brokers", "", "bootstrap brokers, host:port[,host:port...] (default [kafka] \"bootstrap.servers\")")
	f.topic = fs.String("topic", "", "topic to read (default [kafka] topic)")
	f.group = fs.String("group", "", "consumer group: start at its committed offsets and commit what was read")
	f.from = fs.String("from", "start", "where to start without a committed offset: start, end, an RFC 3339 time, or a duration ago (1h)")
	f.untilEnd = fs.Bool("until-end", true, "stop at the end offsets the topic had at the start (false: read until interrupted)")
	f.follow = fs.Bool("follow", false, "keep reading and print the summary every -interval")
	f.interval = fs.Duration("interval", 5*time.Second, "time between prints with -follow")
	f.asJSON = fs.Bool("json", false, "print the summary as JSON")
	f.top = fs.Int("top", 10, "differing paths listed per route")
	f.tallyTopic = fs.String("tally-topic", "", "tally topic to read as well (default [report] tally_topic; \"-\": none)")
	f.until = fs.String("until", "", "leave out requests received after this: an RFC 3339 time, or a duration ago (10m)")
	f.check = fs.Bool("check", false, "exit 0 when every checked route passes, 1 when any fails, 3 when none fails but any is inconclusive")
	f.routeName = fs.String("route", "", "with -check: check only this route")
	fs.Var(&f.serve, "serve", "serve the report page, its API and gates on ADDR (--serve=ADDR; alone: "+defaultServeAddr+") until interrupted")
	return f
}

// validate rejects flags that do not go together or do not parse, and parses
// -from and -until.
func (f *reportFlags) validate(fs *flag.FlagSet) error {
	if f.serve.set && f.serve.addr == defaultServeAddr && fs.NArg() == 1 {
		f.serve.addr = fs.Arg(0) // --serve ADDR
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if f.serve.set && (*f.check || *f.follow || *f.asJSON) {
		return fmt.Errorf("%w: -serve: not with -check, -follow or -json (the page follows the topics)", errUsage)
	}
	var err error
	if f.start, err = report.ParseFrom(*f.from, time.Now()); err != nil {
		return fmt.Errorf("%w: -from: %v", errUsage, err)
	}
	if *f.interval <= 0 {
		return fmt.Errorf("%w: -interval: must be positive, got %s", errUsage, *f.interval)
	}
	if *f.top <= 0 {
		return fmt.Errorf("%w: -top: must be positive, got %d", errUsage, *f.top)
	}
	if *f.until != "" {
		u, err := report.ParseFrom(*f.until, time.Now())
		if err != nil || u.Time().IsZero() {
			return fmt.Errorf("%w: -until: want an RFC 3339 time or a duration such as 10m, got %q", errUsage, *f.until)
		}
		f.untilT = u.Time()
	}
	if *f.check && *f.follow {
		return fmt.Errorf("%w: -check and -follow: a check needs an end; drop -follow", errUsage)
	}
	if *f.routeName != "" && !*f.check {
		return fmt.Errorf("%w: -route: only with -check", errUsage)
	}
	return nil
}

// routeLimits returns each route's verdict limits: [verdict], with the
// route's own verdict keys in place.
func routeLimits(cfg *config.Config) func(string) verdict.Limits {
	return func(name string) verdict.Limits {
		for _, r := range cfg.Routes {
			if r.Name == name {
				return cfg.Verdict.With(r.Verdict)
			}
		}
		return cfg.Verdict
	}
}

// Exit statuses of report -check besides 0 (pass) and 2 (usage).
var (
	errCheckFailed       = errors.New("check failed")
	errCheckInconclusive = errors.New("check inconclusive")
)

// checkVerdict turns the verdicts of the checked routes (every route with
// evidence and every configured one, or only name) into report -check's
// error: nil when all pass, errCheckFailed when any fails,
// errCheckInconclusive otherwise. A checked route without evidence is
// inconclusive: silence is not a pass.
func checkVerdict(sum *report.Summary, name string, configured []string, stderr io.Writer) error {
	var verdicts []string
	var routes []string
	seen := map[string]bool{}
	if sum != nil {
		for _, r := range sum.Routes {
			if name == "" || r.Route == name {
				verdicts = append(verdicts, r.Verdict)
				routes = append(routes, r.Label()+" "+r.Verdict)
				seen[r.Route] = true
			}
		}
	}
	for _, c := range configured {
		if !seen[c] && (name == "" || c == name) && len(verdicts) > 0 {
			verdicts = append(verdicts, verdict.Inconclusive)
			routes = append(routes, c+" inconclusive (no evidence)")
		}
	}
	if len(verdicts) == 0 {
		what := "no route has evidence"
		if name != "" {
			what = fmt.Sprintf("route %q has no evidence", name)
		}
		return fmt.Errorf("%w: %s", errCheckInconclusive, what)
	}
	switch verdict.Worst(verdicts...) {
	case verdict.Fail:
		return fmt.Errorf("%w: %s", errCheckFailed, strings.Join(routes, ", "))
	case verdict.Inconclusive:
		return fmt.Errorf("%w: %s", errCheckInconclusive, strings.Join(routes, ", "))
	}
	fmt.Fprintf(stderr, "miffy report: check passed: %s\n", strings.Join(routes, ", "))
	return nil
}

// serveReport runs the report server until ctx is done.
func serveReport(ctx context.Context, cfg *config.Config, opts []kgo.Opt, addr, topic, tallyTopic string, from report.From, stdout, stderr io.Writer) error {
	log := zerolog.New(stderr).With().Timestamp().Str("component", "report").Logger()
	start := kgo.NewOffset().AtStart()
	switch {
	case from.String() == "end":
		start = kgo.NewOffset().AtEnd()
	case !from.Time().IsZero():
		start = kgo.NewOffset().AfterMilli(from.Time().UnixMilli())
	}
	b, err := startBoard(ctx, cfg, opts, addr, topic, tallyTopic, start, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "miffy report: serving the report page on %s (topics %q and %q); Ctrl-C to stop\n", b.URL, topic, tallyTopic)
	<-ctx.Done()
	b.Close()
	return nil
}
