package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gotoml "github.com/pelletier/go-toml/v2"
)

func TestMasked(t *testing.T) {
	c, err := load(t, `
reference = "http://ref-user:pa55word@ref.internal:3000/base"
candidate = "http://cand.internal:3001"
routes = [{ path = "/api/{value}", key = "value", secondary = "https://u:routepass@sec.internal" }]

[kafka]
topic = "diffs"
"sasl.username" = "miffy"
"ssl.key.password" = "keypass"
`, "KAFKA_SASL_PASSWORD=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	// Not a property miffy supports (Load refuses it), but Masked must
	// hide any token all the same.
	c.Kafka.Properties["sasl.oauthbearer.token"] = "tok123"
	got := c.Masked()
	for _, secret := range []string{"s3cret", "keypass", "tok123", "pa55word", "routepass"} {
		if strings.Contains(got, secret) {
			t.Errorf("Masked shows the secret %q:\n%s", secret, got)
		}
	}
	for _, want := range []string{
		`"sasl.password" = "********"`,
		`"ssl.key.password" = "********"`,
		`"sasl.username" = "miffy"`,
		`reference = "http://ref-user:********@ref.internal:3000/base"`,
		`candidate = "http://cand.internal:3001"`,
		`secondary = "https://u:********@sec.internal"`,
		`topic = "diffs"`,
		`timeout = "5s"`,
		`window = "10m"`,
		"[[routes]]",
		`key = "value"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Masked lacks %s:\n%s", want, got)
		}
	}
	var m map[string]any
	if err := gotoml.Unmarshal([]byte(got), &m); err != nil {
		t.Errorf("Masked is not valid TOML: %v\n%s", err, got)
	}
}

// TestMaskedRoundTrip loads the Masked text of a config without secrets
// back and gets the same config.
func TestMaskedRoundTrip(t *testing.T) {
	c, err := load(t, `
port = 8081
management_port = 9001
logging = "json"
reference = "http://127.0.0.1:3000"
candidate = "http://127.0.0.1:3001"
secondary = "http://127.0.0.1:3002/prefix"

[kafka]
topic = "diffs"
"bootstrap.servers" = "kafka-1:9092,kafka-2:9092"
"sasl.mechanisms" = "PLAIN"
"linger.ms" = 5

[compare]
ignore = ["$.meta.generated_at"]
float_tolerance = 0.001
canonicalize = "del(.debug) | .items |= sort_by(.id)"

[[routes]]
path = "/api/{value}"
key = "value"

[[routes]]
path = "/users/{id}"
methods = ["GET"]
sample = 0.25
publish_noise = true
compare_headers = []
unordered = ["$.items by id"]
`, "MIFFY_SHADOW__TIMEOUT=1m30s", "MIFFY_COMPARE__COMPARE_HEADERS=Content-Type, ETag")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "masked.toml")
	if err := os.WriteFile(path, []byte(c.Masked()), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(defaults(t), path, nil)
	if err != nil {
		t.Fatalf("loading Masked output: %v\n%s", err, c.Masked())
	}
	if diff := cmp.Diff(c, again); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestMaskedShowsFilePaths: a key that names a file is shown even when
// its name has a secret word; the secrets themselves stay masked.
func TestMaskedShowsFilePaths(t *testing.T) {
	c, err := load(t, `
[management]
admin_token_file = "/run/secrets/miffy-admin-token"

[kafka]
"sasl.password" = "filepass"
"ssl.key.location" = "/etc/miffy/key.pem"
"ssl.key.password" = "keypass"
`)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Masked()
	for _, want := range []string{
		`admin_token_file = "/run/secrets/miffy-admin-token"`,
		`"ssl.key.location" = "/etc/miffy/key.pem"`,
		`"sasl.password" = "********"`,
		`"ssl.key.password" = "********"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Masked lacks %s:\n%s", want, got)
		}
	}
	for _, secret := range []string{"filepass", "keypass"} {
		if strings.Contains(got, secret) {
			t.Errorf("Masked shows the secret %q:\n%s", secret, got)
		}
	}
}

func TestMaskValue(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"token file path", "admin_token_file", "/run/secrets/admin", "/run/secrets/admin"},
		{"token file path, any case", "Admin_Token_File", "/run/secrets/admin", "/run/secrets/admin"},
		{"secret path", "secret_path", "/etc/miffy/secret", "/etc/miffy/secret"},
		{"key location", "ssl.key.location", "/etc/key.pem", "/etc/key.pem"},
		{"token value", "admin_token", "t0ken", mask},
		{"oauth token", "sasl.oauthbearer.token", "t0ken", mask},
		{"sasl password", "sasl.password", "pw", mask},
		{"key password", "ssl.key.password", "pw", mask},
		{"secret", "client_secret", "s", mask},
		{"a word with file in it is not a file key", "token_profile", "t", mask},
		{"file key with a URL password", "ca_file", "https://u:pw@host/ca.pem", "https://u:********@host/ca.pem"},
		{"plain", "topic", "diffs", "diffs"},
		{"empty secret", "sasl.password", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskValue(tt.key, tt.value); got != tt.want {
				t.Errorf("maskValue(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
			}
		})
	}
}
