// Command benchtool is the Go half of bench/run.sh: the upstreams the
// benchmark proxies to, the embedded Kafka-protocol broker miffy publishes
// to, small helpers the script needs (free ports, readiness, metrics) and
// the report written to bench/RESULTS.md. It is not part of miffy.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("usage")

const usage = `benchtool: helpers for bench/run.sh

  benchtool upstream -addr HOST:PORT [-role reference|candidate] [-delay D] [-differ-every N] [-body-size N [-reorder]]
  benchtool broker -addr-file FILE [-addr HOST:PORT]
  benchtool freeports N
  benchtool wait [-timeout D] URL
  benchtool scrape [-upstream URL]... [-metrics URL]
  benchtool settle [-timeout D] METRICS_URL
  benchtool fetch URL FILE
  benchtool load [-rate R] [-d D] [-max-conns N] [-paths N] URL
  benchtool report -results FILE -machine FILE [-profile-dir DIR] -out FILE
  benchtool reportscale -brokers HOST:PORT [-miffy BIN] [-n N] [-routes N]
`

// run dispatches to one subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "upstream":
		return runUpstream(ctx, args, stderr)
	case "broker":
		return runBroker(ctx, args, stderr)
	case "freeports":
		return runFreePorts(args, stdout)
	case "wait":
		return runWait(ctx, args, stderr)
	case "scrape":
		return runScrape(ctx, args, stdout, stderr)
	case "settle":
		return runSettle(ctx, args, stderr)
	case "fetch":
		return runFetch(ctx, args)
	case "load":
		return runLoad(ctx, args, stdout, stderr)
	case "report":
		return runReport(args, stdout, stderr)
	case "reportscale":
		return runReportScale(ctx, args, stdout, stderr)
	default:
		io.WriteString(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}
