package main

import (
	"fmt"

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
