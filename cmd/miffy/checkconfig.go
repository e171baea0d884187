package main

import (
	"fmt"
	"io"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy"
)

// checkConfig validates a config and prints it as miffy sees it, with
// secrets masked, then its warnings as "# warning: " comment lines.
func checkConfig(args []string, environ []string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: check-config takes at most one file", errUsage)
	}
	path := ""
	if len(args) == 1 {
		path = args[0]
	}
	cfg, err := loadConfig(path, environ)
	if err != nil {
		return err
	}
	if _, err := buildTable(cfg, nil, zerolog.Nop()); err != nil {
		return err
	}
	fmt.Fprint(stdout, cfg.Masked())
	for _, w := range cfg.Warnings(miffy.DefaultConfig) {
		fmt.Fprintln(stdout, "# warning:", w)
	}
	fmt.Fprintln(stdout, "# config OK")
	return nil
}
