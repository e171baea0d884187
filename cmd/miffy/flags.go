package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/miffy-proxy/miffy/internal/config"
)

// errHelp means the usage was asked for (-h, -help, --help) and printed on
// standard output: run returns nil, and miffy exits 0.
var errHelp = errors.New("help printed")

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// parseFlags parses args with fs. Asked for help, it prints the usage on
// stdout and returns errHelp; on a bad flag it prints the message and the
// usage on stderr and returns an error wrapping errUsage (exit 2).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(buf.Bytes())
		return errHelp
	case err != nil:
		stderr.Write(buf.Bytes())
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// loadWithFlags is a command that takes -config FILE (and fs's other
// flags) and no arguments: it parses args and loads the config, returning
// the file named.
func loadWithFlags(fs *flag.FlagSet, args, environ []string, stdout, stderr io.Writer) (*config.Config, string, error) {
	path := fs.String("config", "", "config file (default $MIFFY_CONFIG, else ./config.toml if present)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := loadConfig(*path, environ)
	return cfg, *path, err
}
