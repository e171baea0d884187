package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testPEM writes a self-signed certificate and its key to dir, and
// returns their paths.
func testPEM(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestUpstreamSides: [upstream] applies to every side, a side's table
// overrides any key of it, from the file and from the environment.
func TestUpstreamSides(t *testing.T) {
	dir := t.TempDir()
	cert, key := testPEM(t, dir)
	file := `
[upstream]
protocol = "h2c"
tls_ca_file = "` + cert + `"

[upstream.candidate]
protocol = "http1"
tls_server_name = "candidate.internal"
tls_insecure_skip_verify = true
tls_cert_file = "` + cert + `"
tls_key_file = "` + key + `"
`
	c, err := load(t, file, "MIFFY_UPSTREAM__SECONDARY__TLS_SERVER_NAME=secondary.internal")
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := map[string]UpstreamSide{
		"reference": {Protocol: "h2c", TLSCAFile: cert, TLSInsecureSkipVerify: &no},
		"candidate": {Protocol: "http1", TLSCAFile: cert, TLSCertFile: cert, TLSKeyFile: key, TLSServerName: "candidate.internal", TLSInsecureSkipVerify: &yes},
		"secondary": {Protocol: "h2c", TLSCAFile: cert, TLSServerName: "secondary.internal", TLSInsecureSkipVerify: &no},
	}
	got := map[string]UpstreamSide{}
	for _, side := range Sides {
		got[side] = c.Upstream.Side(side)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sides (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"candidate"}, c.Upstream.Insecure()); d != "" {
		t.Errorf("Insecure (-want +got):\n%s", d)
	}

	// check-config shows the tables with the keys they set.
	m := c.Masked()
	for _, line := range []string{"[upstream]\nprotocol = \"h2c\"", "[upstream.candidate]\nprotocol = \"http1\"", "tls_insecure_skip_verify = true", "[upstream.secondary]\ntls_server_name = \"secondary.internal\"", "[upstream.reference]\n\n"} {
		if !strings.Contains(m, line) {
			t.Errorf("Masked lacks %q:\n%s", line, m)
		}
	}
	// and loads back to the same config.
	back, err := load(t, m)
	if err != nil {
		t.Fatalf("loading Masked: %v", err)
	}
	if d := cmp.Diff(c.Upstream, back.Upstream); d != "" {
		t.Errorf("Masked round trip (-want +got):\n%s", d)
	}

	// Defaults: auto, the system's roots, verified.
	c, err = load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(UpstreamSide{Protocol: "auto", TLSInsecureSkipVerify: &no}, c.Upstream.Side("candidate")); d != "" {
		t.Errorf("default side (-want +got):\n%s", d)
	}
}

// TestUpstreamErrors: a bad [upstream] fails at start, naming the key.
func TestUpstreamErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := testPEM(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string
	}{
		{"unknown protocol", "[upstream]\nprotocol = \"h3\"", nil, []string{`upstream.protocol: "h3"`}},
		{"unknown protocol in a table", "[upstream.candidate]\nprotocol = \"http2\"", nil, []string{`upstream.candidate.protocol: "http2"`}},
		{"unknown key in a table", "[upstream.reference]\ntls_ca = \"x\"", nil, []string{"upstream.reference.tls_ca"}},
		{"unknown variable", "", []string{"MIFFY_UPSTREAM__REFERENCE__NOPE=1"}, []string{"MIFFY_UPSTREAM__REFERENCE__NOPE"}},
		{"missing CA file", "[upstream]\ntls_ca_file = \"" + missing + "\"", nil, []string{"upstream.tls_ca_file: reading CA file", "missing.pem"}},
		{"CA file without a certificate", "[upstream.secondary]\ntls_ca_file = \"" + key + "\"", nil, []string{"upstream.secondary.tls_ca_file", "no PEM certificate"}},
		{"certificate without key", "[upstream.candidate]\ntls_cert_file = \"" + cert + "\"", nil, []string{"upstream.candidate.tls_cert_file and tls_key_file", "both"}},
		{"key file missing", "[upstream]\ntls_cert_file = \"" + cert + "\"\ntls_key_file = \"" + missing + "\"", nil, []string{"upstream.tls_cert_file and tls_key_file", "missing.pem"}},
		{"h2c to https", "reference = \"https://ref.test\"\n[upstream]\nprotocol = \"h2c\"", nil, []string{"upstream.protocol: h2c", `"https://ref.test"`}},
		{"h2c to https, password hidden", "reference = \"https://u:hunter2@ref.test\"\n[upstream]\nprotocol = \"h2c\"", nil, []string{"upstream.protocol: h2c", `"https://u:********@ref.test"`}},
		{"route h2 to http, password hidden", "[[routes]]\npath = \"/a\"\nreference = \"http://u:hunter2@r.test\"\nreference_protocol = \"h2\"", nil, []string{"routes[0].reference_protocol: h2", `"http://u:********@r.test"`}},
		{"h2 to http in a table", "[upstream.candidate]\nprotocol = \"h2\"", nil, []string{"upstream.candidate.protocol: h2", "candidate"}},
		{"h2 to a route's http URL", "candidate = \"https://c.test\"\n[upstream]\nprotocol = \"h2\"\n[upstream.reference]\nprotocol = \"auto\"\n[upstream.secondary]\nprotocol = \"auto\"\n[[routes]]\npath = \"/a\"\ncandidate = \"http://plain.test\"", nil, []string{"upstream.protocol: h2", `"http://plain.test"`}},
		{"route protocol unknown", "[[routes]]\npath = \"/a\"\ncandidate_protocol = \"grpc\"", nil, []string{`routes[0].candidate_protocol: "grpc"`}},
		{"route h2c to https", "[[routes]]\npath = \"/a\"\nreference = \"https://r.test\"\nreference_protocol = \"h2c\"", nil, []string{"routes[0].reference_protocol: h2c", `"https://r.test"`}},
		{"bad boolean", "[upstream.reference]\ntls_insecure_skip_verify = \"maybe\"", nil, []string{"upstream.reference.tls_insecure_skip_verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.file, tt.environ...)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a password:\n%v", err)
			}
		})
	}
}

// TestUpstreamEnv: MIFFY_ variables set [upstream] keys and its tables'
// (a boolean too); a table is not a key.
func TestUpstreamEnv(t *testing.T) {
	c, err := load(t, "# no keys\n", "MIFFY_UPSTREAM__CANDIDATE__TLS_INSECURE_SKIP_VERIFY=true", "MIFFY_UPSTREAM__PROTOCOL=http1")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if d := cmp.Diff(UpstreamSide{Protocol: "http1", TLSInsecureSkipVerify: &yes}, c.Upstream.Side("candidate")); d != "" {
		t.Errorf("candidate (-want +got):\n%s", d)
	}
	if _, err := load(t, "# no keys\n", "MIFFY_UPSTREAM__REFERENCE=x"); err == nil || !strings.Contains(err.Error(), "MIFFY_UPSTREAM__REFERENCE: unknown key") {
		t.Errorf("a table set from the environment: %v", err)
	}
}

// TestRouteProtocols: a route's protocol for a side applies to its URL
// for that side only, where the side's would not fit it.
func TestRouteProtocols(t *testing.T) {
	file := `
[upstream]
protocol = "h2"
[upstream.reference]
protocol = "auto"
[upstream.secondary]
protocol = "auto"

[[routes]]
path = "/grpc/{x}"
candidate = "http://grpc.internal:50051"
candidate_protocol = "h2c"
`
	c, err := load(t, file)
	if err == nil {
		t.Fatalf("the top-level candidate (http) with h2 was accepted")
	}
	c, err = load(t, file+"\n", "MIFFY_CANDIDATE=https://c.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[0].CandidateProtocol; got != "h2c" {
		t.Errorf("candidate_protocol %q", got)
	}
	if m := c.Masked(); !strings.Contains(m, `candidate_protocol = "h2c"`) || strings.Contains(m, `reference_protocol`) {
		t.Errorf("Masked:\n%s", m)
	}
}
