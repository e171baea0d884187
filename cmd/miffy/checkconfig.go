package main

import (
	"fmt"
	"io"
)

// checkConfig validates a config and prints it as miffy sees it, with
// secrets masked.
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
	if _, err := buildTable(cfg); err != nil {
		return err
	}
	fmt.Fprint(stdout, cfg.Masked())
	printInsecure(cfg, stdout)
	fmt.Fprintln(stdout, "# config OK")
	return nil
}
