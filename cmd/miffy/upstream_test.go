package main

import (
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestInsecureUpstreamShown: tls_insecure_skip_verify is shown by
// check-config and logged as a warning at start.
func TestInsecureUpstreamShown(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/config.toml"
	writeFile(path, "[upstream.candidate]\ntls_insecure_skip_verify = true\n")
	var out strings.Builder
	if err := run(t.Context(), []string{"check-config", path}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	const warning = "# warning: upstream.tls_insecure_skip_verify: upstream TLS certificates are not verified for: candidate"
	if !strings.Contains(out.String(), "[upstream.candidate]\ntls_insecure_skip_verify = true") ||
		!strings.Contains(out.String(), warning) {
		t.Errorf("check-config output:\n%s", out.String())
	}
	// serve logs the same warnings at start (TestStartWarns).
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstreamSides(cfg); err != nil {
		t.Fatal(err)
	}

	// Without it: no warning.
	writeFile(path, "")
	out.Reset()
	if err := run(t.Context(), []string{"check-config", path}, nil, &out, io.Discard); err != nil || strings.Contains(out.String(), "certificates are not verified") {
		t.Errorf("check-config: %v\n%s", err, out.String())
	}
}

// TestRouteProtocolWired: a route's protocols reach its table entry.
func TestRouteProtocolWired(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/config.toml"
	writeFile(path, "[[routes]]\npath = \"/grpc/{x}\"\ncandidate_protocol = \"h2c\"\nsecondary_protocol = \"http1\"\n")
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	table, err := buildTable(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r := table.Routes()[0]
	if got := []string{r.ReferenceProtocol, r.CandidateProtocol, r.SecondaryProtocol}; strings.Join(got, ",") != ",h2c,http1" {
		t.Errorf("route protocols %q", got)
	}
}
