package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/rollout"
)

const ctlRolloutUsage = `Usage: miffy ctl rollout [flags] COMMAND ROUTE

Controls a route's rollout through the rollout topic ([rollout] topic), which
the acting controller (miffy rollout) reads: a command is honoured within one
[rollout] evaluate_every, and its answer is a decision on the topic.

Commands:
  pause ROUTE     hold the route at its current weight; the rollout stops advancing
  resume ROUTE    go on from where it was paused (also after a rollback)
  abort ROUTE     weight 0 at once, and the rollout stops for good
  promote ROUTE   weight 100 now, skipping the steps left
  status ROUTE    the route's decisions and commands, newest last: time, step,
                  weight, decision, controller and reasons. Exits 1 when the
                  topic has nothing for ROUTE.

ROUTE is the route's name ([[routes]] name). Examples:
  miffy ctl rollout -config miffy.toml pause shop
  miffy ctl rollout -brokers 127.0.0.1:9092 status shop
  miffy ctl rollout -config miffy.toml -wait 30s promote shop   # and print the answer

Flags:
`

// runCtlRollout is "miffy ctl rollout": operators' commands to the rollout
// controller, and a route's decision history. path is ctl's -config, if
// given before "rollout".
func runCtlRollout(ctx context.Context, path string, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miffy ctl rollout", flag.ContinueOnError)
	fs.Usage = func() { io.WriteString(fs.Output(), ctlRolloutUsage); fs.PrintDefaults() }
	fs.StringVar(&path, "config", path, "config file, for [kafka] and [rollout] topic (default $MIFFY_CONFIG, else ./config.toml if present)")
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port[,host:port...] (default [kafka] \"bootstrap.servers\")")
	asJSON := fs.Bool("json", false, "status: print the records as JSON, one a line")
	last := fs.Int("last", 0, "status: print only the last N decisions and commands (0: all)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up reaching Kafka after this long")
	wait := fs.Duration("wait", 0, "pause|resume|abort|promote: wait this long for the acting controller's answer and print it (exit 1 if none came)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 2 {
		// Flags may follow the command and route too: status shop -last 5.
		if err := parseFlags(fs, pos[2:], stdout, stderr); err != nil {
			return err
		}
		pos = append(pos[:2:2], fs.Args()...)
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("%w: ctl rollout takes a command and a route", errUsage)
	}
	cmdName, route := pos[0], pos[1]
	if cmdName != "status" && !slices.Contains(rollout.Commands, cmdName) {
		fs.Usage()
		return fmt.Errorf("%w: unknown ctl rollout command %q (want pause, resume, abort, promote or status)", errUsage, cmdName)
	}
	if *wait < 0 {
		return fmt.Errorf("%w: -wait: must not be negative, got %s", errUsage, *wait)
	}
	if *last < 0 {
		return fmt.Errorf("%w: -last: must not be negative, got %d", errUsage, *last)
	}
	cfg, err := loadConfig(path, environ)
	if err != nil {
		return err
	}
	opts, err := kafkaOptions(cfg, *brokers)
	if err != nil {
		return err
	}
	topic := cfg.Rollout.Topic
	ctx, cancel := context.WithTimeout(ctx, *timeout+*wait)
	defer cancel()

	hist, _, err := rollout.History(ctx, opts, topic)
	if err != nil {
		return err
	}
	var mine []rollout.Entry
	known := map[string]bool{}
	var fence rollout.Fence // as the controllers read the topic
	for _, e := range hist {
		r := entryRoute(e)
		known[r] = true
		if d := e.Decision; d != nil && !fence.Admit(d) || r != route {
			continue
		}
		mine = append(mine, e)
	}
	if cmdName == "status" {
		if len(mine) == 0 {
			return noRollout(route, topic, known)
		}
		if *last > 0 && len(mine) > *last {
			mine = mine[len(mine)-*last:]
		}
		if *asJSON {
			return printRolloutJSON(stdout, mine)
		}
		printRolloutStatus(stdout, route, topic, mine)
		return nil
	}
	return sendRolloutCommand(ctx, stdout, opts, topic, cfg, rollout.Command{Route: route, Command: cmdName, By: operator(environ), Time: time.Now().UTC()}, mine, known, *wait)
}

// sendRolloutCommand sends c, mine being its route's history so far, and
// with wait waits for the acting controller's answer.
func sendRolloutCommand(ctx context.Context, stdout io.Writer, opts []kgo.Opt, topic string, cfg *config.Config, c rollout.Command, mine []rollout.Entry, known map[string]bool, wait time.Duration) error {
	// A command for a route that no controller knows would wait forever:
	// the route must have a rollout in the config or records already.
	if len(mine) == 0 && !configuredRollout(cfg, c.Route) {
		return noRollout(c.Route, topic, known)
	}
	if err := rollout.Send(ctx, opts, topic, c); err != nil {
		return err
	}
	if wait == 0 {
		fmt.Fprintf(stdout, "rollout topic %q: %s sent for route %q; the acting controller answers within [rollout] evaluate_every (see: miffy ctl rollout status %s)\n",
			topic, c.Command, c.Route, c.Route)
		return nil
	}
	fmt.Fprintf(stdout, "rollout topic %q: %s sent for route %q; waiting up to %s for the acting controller\n", topic, c.Command, c.Route, wait)
	d, err := awaitAnswer(ctx, opts, topic, c, wait)
	if err != nil {
		return err
	}
	printRolloutStatus(stdout, c.Route, topic, []rollout.Entry{{Value: rollout.Value{Decision: d}}})
	return nil
}

// awaitAnswer waits up to wait for the decision that answers command c:
// one whose command_offset is at or past c's offset on the topic.
func awaitAnswer(ctx context.Context, opts []kgo.Opt, topic string, c rollout.Command, wait time.Duration) (*rollout.Decision, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		hist, _, err := rollout.History(ctx, opts, topic)
		if err != nil {
			return nil, err
		}
		sent := int64(-1)
		for _, e := range hist {
			if x := e.Command; x != nil && sent < 0 && x.Route == c.Route && x.Command == c.Command && x.By == c.By && x.Time.Equal(c.Time) {
				sent = e.Offset
			}
			if d := e.Decision; d != nil && sent >= 0 && d.Route == c.Route && d.CommandOffset != nil && *d.CommandOffset >= sent {
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("no answer from a rollout controller within -wait %s: is one running (miffy rollout) with route %q in its config? The command stays on the topic and is honoured when one acts", wait, c.Route)
		case <-tick.C:
		}
	}
}

// configuredRollout reports whether the config has a route of that name
// with a [routes.rollout] table.
func configuredRollout(cfg *config.Config, name string) bool {
	return slices.ContainsFunc(cfg.Routes, func(r config.Route) bool { return r.Name == name && r.Rollout != nil })
}

func noRollout(route, topic string, known map[string]bool) error {
	names := slices.Sorted(maps.Keys(known))
	also := "no route has any"
	if len(names) > 0 {
		also = "routes with records: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("no rollout records for route %q on topic %q (%s); is the name right (the route's name = ...), does the route have a [routes.rollout] table, and is a controller (miffy rollout) running?", route, topic, also)
}

func entryRoute(e rollout.Entry) string {
	if e.Decision != nil {
		return e.Decision.Route
	}
	return e.Command.Route
}

// operator is who sends a command: user@host.
func operator(environ []string) string {
	user := cmp.Or(lookupEnv(environ, "USER"), lookupEnv(environ, "LOGNAME"), "unknown")
	host, _ := os.Hostname()
	return user + "@" + cmp.Or(host, "unknown")
}

func printRolloutJSON(w io.Writer, entries []rollout.Entry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		var v any = e.Decision
		if e.Decision == nil {
			v = e.Command
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// printRolloutStatus prints the route's state after its last decision,
// then its decisions and commands, newest last.
func printRolloutStatus(w io.Writer, route, topic string, entries []rollout.Entry) {
	var last *rollout.Decision
	for _, e := range entries {
		if e.Decision != nil {
			last = e.Decision
		}
	}
	if last == nil {
		fmt.Fprintf(w, "rollout of %q (topic %q): no decision yet, only commands\n", route, topic)
	} else {
		state := "active"
		switch {
		case last.Done:
			state = "done"
		case last.Paused:
			state = "paused"
		}
		fmt.Fprintf(w, "rollout of %q (topic %q): step %d, weight %s, %s, last decision %s at %s by %s\n",
			route, topic, last.Step, weightText(last.Weight), state, last.Decision, last.Time.UTC().Format(time.RFC3339), last.Controller)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTEP\tWEIGHT\tDECISION\tCONTROLLER\tREASONS")
	for _, e := range entries {
		if d := e.Decision; d != nil {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", d.Time.UTC().Format(time.RFC3339), d.Step, weightText(d.Weight),
				d.Decision, orDash(d.Controller), orDash(strings.Join(d.Reasons, "; ")))
			continue
		}
		c := e.Command
		fmt.Fprintf(tw, "%s\t-\t-\tcommand %s\t-\tsent by %s\n", c.Time.UTC().Format(time.RFC3339), c.Command, orDash(c.By))
	}
	tw.Flush()
}

func weightText(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) + "%" }

// kafkaOptions are the Kafka client options of cfg's [kafka], brokers (if
// not empty) in place of its bootstrap.servers.
func kafkaOptions(cfg *config.Config, brokers string) ([]kgo.Opt, error) {
	props := maps.Clone(cfg.Kafka.Properties)
	if props == nil {
		props = map[string]string{}
	}
	if brokers != "" {
		props["bootstrap.servers"] = brokers
	}
	return publish.ClientOptions(props)
}
