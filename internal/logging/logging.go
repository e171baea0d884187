// Package logging builds miffy's zerolog logger in one of three formats.
package logging

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing to w. format is "human" (console lines),
// "json" (JSON lines) or "stackdriver" (JSON with Google Cloud's field
// names: severity, message, time). level is debug, info, warn or error.
func New(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log_level: %q is not one of debug, info, warn, error", level)
	}
	var l zerolog.Logger
	switch format {
	case "human", "":
		l = zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: true})
	case "json":
		l = zerolog.New(w)
	case "stackdriver":
		l = zerolog.New(stackdriverWriter{w})
	default:
		return zerolog.Nop(), fmt.Errorf("logging: %q is not one of human, json, stackdriver", format)
	}
	return l.Level(lvl).With().Timestamp().Logger(), nil
}
