package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

// upstreamSides reads [upstream]'s TLS files for each side.
func upstreamSides(cfg *config.Config) (map[string]shadow.Side, error) {
	sides := make(map[string]shadow.Side, len(config.Sides))
	for _, side := range config.Sides {
		s := cfg.Upstream.Side(side)
		tc, err := s.TLSFiles().Load()
		if err != nil {
			return nil, fmt.Errorf("upstream (%s): %w", side, err)
		}
		sides[side] = shadow.Side{Protocol: s.Protocol, TLS: tc}
	}
	return sides, nil
}

// insecureNote says which sides accept any certificate, or "".
func insecureNote(cfg *config.Config) string {
	sides := cfg.Upstream.Insecure()
	if len(sides) == 0 {
		return ""
	}
	return "upstream TLS certificates are not verified (tls_insecure_skip_verify) for: " + strings.Join(sides, ", ")
}

// warnInsecure logs insecureNote at start.
func warnInsecure(cfg *config.Config, log zerolog.Logger) {
	if note := insecureNote(cfg); note != "" {
		log.Warn().Strs("sides", cfg.Upstream.Insecure()).Msg(note)
	}
}

// printInsecure adds insecureNote to check-config's output.
func printInsecure(cfg *config.Config, w io.Writer) {
	if note := insecureNote(cfg); note != "" {
		fmt.Fprintln(w, "# WARNING: "+note)
	}
}
