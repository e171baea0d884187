package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/report"
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
	path := fs.String("config", "", "config file for [kafka] (default $MIFFY_CONFIG, else ./config.toml if present)")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port...] (default [kafka] \"bootstrap.servers\")")
	topic := fs.String("topic", "", "topic to read (default [kafka] topic)")
	group := fs.String("group", "", "consumer group: start at its committed offsets and commit what was read")
	from := fs.String("from", "start", "where to start without a committed offset: start, end, an RFC 3339 time, or a duration ago (1h)")
	untilEnd := fs.Bool("until-end", true, "stop at the end offsets the topic had at the start (false: read until interrupted)")
	follow := fs.Bool("follow", false, "keep reading and print the summary every -interval")
	interval := fs.Duration("interval", 5*time.Second, "time between prints with -follow")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	top := fs.Int("top", 10, "differing paths listed per route")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	start, err := report.ParseFrom(*from, time.Now())
	if err != nil {
		return fmt.Errorf("%w: -from: %v", errUsage, err)
	}
	if *interval <= 0 {
		return fmt.Errorf("%w: -interval: must be positive, got %s", errUsage, *interval)
	}
	if *top <= 0 {
		return fmt.Errorf("%w: -top: must be positive, got %d", errUsage, *top)
	}

	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	props := maps.Clone(cfg.Kafka.Properties)
	if props == nil {
		props = map[string]string{}
	}
	if *brokers != "" {
		props["bootstrap.servers"] = *brokers
	}
	opts, err := publish.ClientOptions(props)
	if err != nil {
		return err
	}
	if *topic == "" {
		*topic = cfg.Kafka.Topic
	}
	return report.Run(ctx, report.Options{
		Topic:     *topic,
		Client:    opts,
		Group:     *group,
		From:      start,
		UntilEnd:  *untilEnd,
		Follow:    *follow,
		Interval:  *interval,
		JSON:      *asJSON,
		Aggregate: report.Config{TopPaths: *top},
	}, stdout, stderr)
}
