package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/publish"
)

const ctlUsage = `Usage: miffy ctl [flags] COMMAND [ARGS]

Commands:
  routes                              list routes and their live state
  set-weight ROUTE PERCENT            canary weight, 0..100
  set-upstream ROUTE SIDE URL         SIDE: reference, candidate or secondary
  pause ROUTE | resume ROUTE          stop or restart shadowing
  reset-breaker ROUTE                 close a tripped canary breaker (not with -fleet)
  clear ROUTE                         drop the route's runtime overrides
  rollout COMMAND ROUTE               a rollout: pause, resume, abort, promote, status (ctl rollout -h)

Flags:
`

// runCtl drives the admin API of one instance, or with -fleet the control
// topic that every instance follows.
func runCtl(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miffy ctl", flag.ContinueOnError)
	fs.Usage = func() { io.WriteString(fs.Output(), ctlUsage); fs.PrintDefaults() }
	path := fs.String("config", "", "config file, for the management port, brokers and control topic")
	mgmtURL := fs.String("mgmt", "", "management URL (default http://127.0.0.1:<management.port>)")
	token := fs.String("token", "", "admin token (default $MIFFY_ADMIN_TOKEN)")
	fleet := fs.Bool("fleet", false, "write to the control topic ([control] topic) instead of one instance")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.Arg(0) == "rollout" {
		// Rollout commands go through the rollout topic, never one instance.
		for _, f := range []string{"mgmt", "token", "fleet"} {
			if flagSet(fs, f) {
				return fmt.Errorf("%w: -%s: not for ctl rollout (its commands go through [rollout] topic)", errUsage, f)
			}
		}
		return runCtlRollout(ctx, *path, fs.Args()[1:], environ, stdout, stderr)
	}
	c, err := parseCtl(fs.Args())
	if err != nil {
		fs.Usage()
		return err
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if *fleet {
		return ctlFleet(ctx, cfg, c, stdout)
	}
	base := *mgmtURL
	if base == "" {
		base = "http://127.0.0.1:" + strconv.Itoa(cfg.Management.Port)
	}
	tok := *token
	if tok == "" {
		tok = lookupEnv(environ, "MIFFY_ADMIN_TOKEN")
	}
	if tok == "" {
		return fmt.Errorf("%w: no admin token: set MIFFY_ADMIN_TOKEN or -token (or use -fleet)", errUsage)
	}
	return ctlAdmin(ctx, base, tok, c, stdout)
}

// ctlFleet lists or changes the routes' desired state on the control
// topic.
func ctlFleet(ctx context.Context, cfg *config.Config, c ctlCommand, stdout io.Writer) error {
	if cfg.Control.Topic == "" {
		return fmt.Errorf("-fleet: [control] topic is not set")
	}
	if !c.list && c.change.ResetBreaker {
		return fmt.Errorf("-fleet: reset-breaker acts on one instance; drop -fleet")
	}
	opts, err := publish.ClientOptions(cfg.Kafka.Properties)
	if err != nil {
		return err
	}
	all, err := control.ReadDesired(ctx, opts, cfg.Control.Topic)
	if err != nil {
		return err
	}
	if c.list {
		return printJSON(stdout, all)
	}
	var next *control.Desired
	if !c.change.Clear {
		d := all[c.change.Route].Merge(c.change.Desired)
		next = &d
	}
	if err := control.PublishDesired(ctx, opts, cfg.Control.Topic, c.change.Route, next); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "control topic %q: route %q -> %s\n", cfg.Control.Topic, c.change.Route, desiredJSON(next))
	return nil
}

// ctlAdmin lists or changes the routes of the instance whose management
// URL is base, through its admin API.
func ctlAdmin(ctx context.Context, base, token string, c ctlCommand, stdout io.Writer) error {
	method, body := http.MethodGet, []byte(nil)
	if !c.list {
		method = http.MethodPost
		body, _ = json.Marshal(c.change)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+"/admin/routes", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusNotFound && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// Not the admin API's own 404 (no such route, in JSON): nothing
		// is mounted at /admin/.
		return fmt.Errorf("admin API at %s is off: start miffy with MIFFY_ADMIN_TOKEN or [management] admin_token_file", base)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(out)))
	}
	if c.list {
		var routes []control.RouteState
		if err := json.Unmarshal(out, &routes); err == nil {
			printRoutes(stdout, routes)
			return nil
		}
	}
	stdout.Write(out)
	return nil
}

type ctlCommand struct {
	list   bool
	change control.Change
}

func parseCtl(args []string) (ctlCommand, error) {
	if len(args) == 0 {
		return ctlCommand{}, fmt.Errorf("%w: ctl needs a command", errUsage)
	}
	want := map[string]int{"routes": 0, "set-weight": 2, "set-upstream": 3, "pause": 1, "resume": 1, "reset-breaker": 1, "clear": 1}
	n, ok := want[args[0]]
	if !ok {
		return ctlCommand{}, fmt.Errorf("%w: unknown ctl command %q", errUsage, args[0])
	}
	if len(args)-1 != n {
		return ctlCommand{}, fmt.Errorf("%w: %s takes %d arguments", errUsage, args[0], n)
	}
	var c ctlCommand
	if n > 0 {
		c.change.Route = args[1]
	}
	switch args[0] {
	case "routes":
		c.list = true
	case "set-weight":
		w, err := strconv.ParseFloat(strings.TrimSuffix(args[2], "%"), 64)
		if err != nil {
			return c, fmt.Errorf("%w: weight %q is not a number", errUsage, args[2])
		}
		c.change.Weight = &w
	case "set-upstream":
		u := args[3]
		switch args[2] {
		case "reference":
			c.change.Reference = &u
		case "candidate":
			c.change.Candidate = &u
		case "secondary":
			c.change.Secondary = &u
		default:
			return c, fmt.Errorf("%w: side %q is not reference, candidate or secondary", errUsage, args[2])
		}
	case "pause", "resume":
		p := args[0] == "pause"
		c.change.Paused = &p
	case "reset-breaker":
		c.change.ResetBreaker = true
	case "clear":
		c.change.Clear = true
	}
	return c, nil
}

func desiredJSON(d *control.Desired) string {
	if d == nil {
		return "cleared"
	}
	b, _ := json.Marshal(d)
	return string(b)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRoutes(w io.Writer, routes []control.RouteState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tMODE\tWEIGHT\tBREAKER\tPAUSED\tREFERENCE\tCANDIDATE\tOVERRIDES")
	for _, r := range routes {
		weight := "-"
		if r.Weight != nil {
			weight = strconv.FormatFloat(*r.Weight, 'f', -1, 64) + "%"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", r.Name, r.Mode, weight, orDash(r.Breaker), r.Paused,
			r.Reference, r.Candidate, desiredJSON(&r.Overrides))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
