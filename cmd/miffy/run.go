package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/miffy-proxy/miffy"
)

// errUsage marks a command line that could not be understood (exit 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errCheckInconclusive):
		return 3
	}
	return 1
}

const usage = `miffy: a shadow-testing proxy

Usage:
  miffy [-config FILE]            serve (config: FILE, $MIFFY_CONFIG or ./config.toml)
  miffy demo                      demo upstreams, an embedded broker and the proxy
  miffy demo -rollout             the same, rolled out step by step by a rollout controller
  miffy check-config [FILE]       validate and print the effective config, secrets masked
  miffy report [flags]            read the topics and print a per-route diff report and verdict
  miffy report -check [-route R]  exit 0 when the routes pass, 1 when any fails, 3 if inconclusive
  miffy report --serve[=ADDR]     the report page, verdict API and gates (default 127.0.0.1:8888)
  miffy ctl [flags] COMMAND       change routes at runtime (admin API, or -fleet: control topic)
  miffy ctl rollout CMD ROUTE     pause, resume, abort, promote or show (status) a rollout
  miffy rollout [-config FILE]    the rollout controller: canary weights step by step on evidence
  miffy version                   print the version (also --version)

Every command takes -h for its own flags.
`

const checkConfigUsage = `Usage: miffy check-config [FILE]

Validates the config (FILE, else $MIFFY_CONFIG, else ./config.toml if present,
on top of the embedded defaults and under the MIFFY_ and KAFKA_ variables),
prints it as miffy sees it with secrets masked, then any warnings as
"# warning:" lines. Exits 1 naming the key when the config is bad.
`

// run is the whole program: main only adds signals, the environment and
// the exit code.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	if err := runCommand(ctx, args, environ, stdout, stderr); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}

// runCommand runs the subcommand args name.
func runCommand(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && isHelp(args[0]) {
		args = append([]string{"help"}, args[1:]...) // not serve's flag set: the whole usage
	}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "serve":
		fs := flag.NewFlagSet("miffy", flag.ContinueOnError)
		fs.Usage = func() { io.WriteString(fs.Output(), usage) }
		cfg, path, err := loadWithFlags(fs, args, environ, stdout, stderr)
		if err != nil {
			return err
		}
		so := serveOpts{path: path, environ: environ, reload: true, warnings: cfg.Warnings(miffy.DefaultConfig)}
		return serve(ctx, cfg, so, stdout, stderr)
	case "demo":
		return runDemo(ctx, args, environ, stdout, stderr)
	case "ctl":
		return runCtl(ctx, args, environ, stdout, stderr)
	case "report":
		return runReport(ctx, args, environ, stdout, stderr)
	case "rollout":
		return runRollout(ctx, args, environ, stdout, stderr)
	case "check-config":
		if len(args) > 0 && isHelp(args[0]) {
			io.WriteString(stdout, checkConfigUsage)
			return errHelp
		}
		return checkConfig(args, environ, stdout)
	case "version":
		fmt.Fprintln(stdout, "miffy", version())
		return nil
	case "help":
		io.WriteString(stdout, usage)
		return nil
	default:
		io.WriteString(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
