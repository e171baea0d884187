package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/verdict"
)

// defaults reads the real config.default.toml, as the binary embeds it.
func defaults(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../config.default.toml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// load writes file (if not empty) to a temporary config.toml and loads it.
func load(t *testing.T, file string, environ ...string) (*Config, error) {
	t.Helper()
	def := defaults(t)
	path := ""
	if file != "" {
		path = filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Chdir(t.TempDir()) // no ./config.toml
	}
	return Load(def, path, environ)
}

// miffy10 is a config.toml as miffy 1.0 users have it.
const miffy10 = `
port = 8081
management_port = 9001
logging = "json"

reference = "http://127.0.0.1:3000"
candidate = "http://127.0.0.1:3001"

routes = [
    { path = "/api/{value}", key = "value" },
    { path = "/api/13", candidate = "http://localhost:1337" },
    { path = "/api/42", reference = "http://localhost:3001", candidate = "http://localhost:3000" },
]

[kafka]
topic = "diffs"
"bootstrap.servers" = "kafka-1:9092,kafka-2:9092"
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "PLAIN"
"sasl.username" = "miffy"
`

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "defaults alone",
			check: func(t *testing.T, c *Config) {
				want := Config{
					Port: 8080, ManagementPort: 9000, Logging: "human", LogLevel: "info", AccessLog: true, ShutdownTimeout: 30 * time.Second,
					Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001",
					Routes: []Route{},
					Proxy: Proxy{
						ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
						WriteTimeout: time.Minute, MaxHeaderBytes: 1 << 20, AllowUpgrades: []string{"websocket"}, DialTimeout: 5 * time.Second, ReferenceTimeout: 30 * time.Second,
						MaxIdleConnsPerHost: 512, UpstreamIdleTimeout: 90 * time.Second, ForwardedHeaders: true,
						MaxResponseHeaderBytes: 1 << 20,
					},
					Upstream: Upstream{UpstreamSide: UpstreamSide{Protocol: "auto", TLSInsecureSkipVerify: new(bool)}},
					Shadow: Shadow{
						MaxBodyBytes: 1 << 20, MaxResponseBytes: 4 << 20, Timeout: 5 * time.Second,
						MaxInFlight: 10000, MaxInFlightBytes: 256 << 20, CompareQueue: 4096, Sample: 1,
					},
					Noise: Noise{Relative: 0.2, Absolute: 0.0003, Window: 10 * time.Minute},
					Publish: Publish{Mode: "mismatches", MaxBodyBytes: 65536, RedactHeaders: []string{}, RedactJSONPaths: []string{},
						RedactQueryParams: []string{"api_key", "apikey", "access_token", "refresh_token", "id_token", "token", "password", "passwd", "secret", "client_secret", "signature", "sig", "key", "x-amz-signature", "x-amz-security-token"},
						RedactJSONKeys:    []string{"password", "passwd", "secret", "client_secret", "access_token", "refresh_token", "id_token", "api_key", "token", "authorization"}},
					Kafka: Kafka{
						Topic: "miffy", MaxBufferedRecords: 100000, MaxBufferedBytes: 128 << 20, RequireBroker: true,
						Properties: map[string]string{"bootstrap.servers": "127.0.0.1:9092"},
					},
					Management: Management{Port: 9000, Host: "127.0.0.1"},
					Canary: Canary{
						OverrideHeader: "X-Canary", ServedByHeader: "X-Miffy-Served-By", DecisionTimeout: time.Second,
						DecisionMaxBodyBytes: 65536, Window: time.Minute, MinRequests: 10, Cooldown: 30 * time.Second, Probes: 5,
					},
					Report: Report{TallyTopic: "miffy-tallies", TallyInterval: 10 * time.Second, LatencyTie: time.Millisecond},
					Verdict: verdict.Limits{
						MinCompared: 200, MaxRegressionRate: 0.001, MaxCandidateErrorRate: 0.001, MaxLatencyRatio: 1.2, Confidence: 0.95,
					},
				}
				want.Compare.CompareHeaders = []string{"Content-Type"}
				want.Compare.Ignore = []string{}
				want.Compare.Unordered = []string{}
				want.Compare.CanonicalizeTimeout = time.Second
				want.Rollout = Rollout{Topic: "miffy-rollouts", LeaseTopic: "miffy-rollout-lease", LeaseTimeout: 10 * time.Second,
					EvaluateEvery: 10 * time.Second, Interval: 5 * time.Minute, ShadowFirst: true, MaxInconclusive: 30 * time.Minute}
				if diff := cmp.Diff(want, *c); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			},
		},
		{
			name:    "miffy 1.0 file with KAFKA_ and MIFFY_ variables",
			file:    miffy10,
			environ: []string{"KAFKA_SASL_PASSWORD=s3cret", "MIFFY_MANAGEMENT_PORT=9100", "KAFKA_HEAP_OPTS=-Xmx1g", "KAFKA_ADVERTISED_LISTENERS=x", "PATH=/bin", "MIFFY_CONFIG=/etc/miffy.toml"},
			check: func(t *testing.T, c *Config) {
				if c.Port != 8081 || c.Management.Port != 9100 || c.ManagementPort != 9100 || c.Logging != "json" {
					t.Errorf("port %d, management.port %d, management_port %d, logging %q; want 8081, 9100, 9100, json",
						c.Port, c.Management.Port, c.ManagementPort, c.Logging)
				}
				no, all := false, 1.0
				wantRoutes := []Route{
					{Path: "/api/{value}", Key: "value", Name: "/api/{value}", Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001", Mode: "shadow"},
					{Path: "/api/13", Name: "/api/13", Reference: "http://127.0.0.1:3000", Candidate: "http://localhost:1337", Mode: "shadow"},
					{Path: "/api/42", Name: "/api/42", Reference: "http://localhost:3001", Candidate: "http://localhost:3000", Mode: "shadow"},
				}
				for i := range wantRoutes {
					r := &wantRoutes[i]
					r.AllowSideEffects, r.Sample, r.Publish, r.PublishNoise = &no, &all, "mismatches", &no
				}
				if diff := cmp.Diff(wantRoutes, c.Routes); diff != "" {
					t.Errorf("routes (-want +got)\n%s", diff)
				}
				wantProps := map[string]string{
					"bootstrap.servers": "kafka-1:9092,kafka-2:9092",
					"security.protocol": "SASL_SSL",
					"sasl.mechanism":    "PLAIN",
					"sasl.username":     "miffy",
					"sasl.password":     "s3cret",
				}
				if diff := cmp.Diff(wantProps, c.Kafka.Properties); diff != "" {
					t.Errorf("properties (-want +got)\n%s", diff)
				}
				if c.Kafka.Topic != "diffs" {
					t.Errorf("topic %q, want diffs", c.Kafka.Topic)
				}
			},
		},
		{
			name: "routes as [[routes]] tables",
			file: `
[[routes]]
path = "/users/{id}/orders"
methods = ["get", " POST "]
ignore = ["$.generated_at"]
sample = 0.5
allow_side_effects = true
secondary = "http://127.0.0.1:3002"

[[routes]]
path = "/static/{*rest}"
name = "static"
publish = "none"
`,
			check: func(t *testing.T, c *Config) {
				half, yes, no, all := 0.5, true, false, 1.0
				want := []Route{
					{
						Path: "/users/{id}/orders", Name: "/users/{id}/orders", Methods: []string{"GET", "POST"},
						Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001", Secondary: "http://127.0.0.1:3002",
						Sample: &half, AllowSideEffects: &yes, Mode: "shadow", Publish: "mismatches", PublishNoise: &no,
					},
					{
						Path: "/static/{*rest}", Name: "static", Publish: "none", Reference: "http://127.0.0.1:3000", Candidate: "http://127.0.0.1:3001", Mode: "shadow",
						Sample: &all, AllowSideEffects: &no, PublishNoise: &no,
					},
				}
				want[0].Ignore = []string{"$.generated_at"}
				if diff := cmp.Diff(want, c.Routes); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			},
		},
		{
			name: "log_json legacy",
			file: "log_json = true\n",
			check: func(t *testing.T, c *Config) {
				if c.Logging != "json" || !c.LogJSON {
					t.Errorf("logging %q, log_json %v; want json, true", c.Logging, c.LogJSON)
				}
			},
		},
		{
			name:    "log_json in the file, logging in the environment: environment wins",
			file:    "log_json = true\n",
			environ: []string{"MIFFY_LOGGING=stackdriver"},
			check: func(t *testing.T, c *Config) {
				if c.Logging != "stackdriver" || c.LogJSON {
					t.Errorf("logging %q, log_json %v; want stackdriver, false", c.Logging, c.LogJSON)
				}
			},
		},
		{
			name:    "management_port in the file, management.port in the environment: environment wins",
			file:    "management_port = 9001\n",
			environ: []string{"MIFFY_MANAGEMENT__PORT=9100"},
			check: func(t *testing.T, c *Config) {
				if c.Management.Port != 9100 || c.ManagementPort != 9100 {
					t.Errorf("management.port %d, management_port %d; want 9100", c.Management.Port, c.ManagementPort)
				}
			},
		},
		{
			name: "brokers legacy",
			file: "[kafka]\nbrokers = [\"a:9092\", \" b:9092\"]\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Kafka.Properties["bootstrap.servers"]; got != "a:9092,b:9092" {
					t.Errorf("bootstrap.servers %q, want a:9092,b:9092", got)
				}
				if c.Kafka.Brokers != nil {
					t.Errorf("brokers %q, want nil (folded)", c.Kafka.Brokers)
				}
			},
		},
		{
			name: "brokers and the same bootstrap.servers",
			file: "[kafka]\nbrokers = [\"a:9092\", \"b:9092\"]\n\"bootstrap.servers\" = \"a:9092, b:9092\"\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Kafka.Properties["bootstrap.servers"]; got != "a:9092,b:9092" {
					t.Errorf("bootstrap.servers %q, want a:9092,b:9092", got)
				}
			},
		},
		{
			name:    "brokers in the file, KAFKA_BOOTSTRAP_SERVERS wins",
			file:    "[kafka]\nbrokers = [\"a:9092\"]\n",
			environ: []string{"KAFKA_BOOTSTRAP_SERVERS=env:9092"},
			check: func(t *testing.T, c *Config) {
				if got := c.Kafka.Properties["bootstrap.servers"]; got != "env:9092" {
					t.Errorf("bootstrap.servers %q, want env:9092", got)
				}
			},
		},
		{
			name:    "MIFFY_KAFKA__BROKERS as a list",
			environ: []string{"MIFFY_KAFKA__BROKERS=x:1, y:2"},
			check: func(t *testing.T, c *Config) {
				if got := c.Kafka.Properties["bootstrap.servers"]; got != "x:1,y:2" {
					t.Errorf("bootstrap.servers %q, want x:1,y:2", got)
				}
			},
		},
		{
			name: "MIFFY_ variables",
			environ: []string{
				"MIFFY_PORT=8081", "MIFFY_SHADOW__TIMEOUT=2s", "MIFFY_COMPARE__IGNORE=$.a, $.b",
				"MIFFY_KAFKA__TOPIC=diffs", "MIFFY_PUBLISH__CONSOLE=true", "MIFFY_NOISE__RELATIVE=0.5",
				"MIFFY_KAFKA__SASL_PASSWORD=pw", "MIFFY_CONFIG=/x.toml", "MIFFY_ADMIN_TOKEN=t",
				"MIFFY_ROUTES=[{ path = \"/api/{value}\", key = \"value\" }]",
			},
			check: func(t *testing.T, c *Config) {
				if c.Port != 8081 || c.Shadow.Timeout != 2*time.Second || c.Kafka.Topic != "diffs" ||
					!c.Publish.Console || c.Noise.Relative != 0.5 || c.Kafka.Properties["sasl.password"] != "pw" {
					t.Errorf("got port %d, shadow.timeout %s, kafka.topic %q, publish.console %v, noise.relative %v, sasl.password %q",
						c.Port, c.Shadow.Timeout, c.Kafka.Topic, c.Publish.Console, c.Noise.Relative, c.Kafka.Properties["sasl.password"])
				}
				if diff := cmp.Diff([]string{"$.a", "$.b"}, c.Compare.Ignore); diff != "" {
					t.Errorf("compare.ignore (-want +got)\n%s", diff)
				}
				if len(c.Routes) != 1 || c.Routes[0].Key != "value" {
					t.Errorf("routes %+v, want one with key value", c.Routes)
				}
			},
		},
		{
			name:    "miffy 1.0 environment spelling MIFFY_KAFKA_TOPIC",
			environ: []string{"MIFFY_KAFKA_TOPIC=legacy", "MIFFY_SHADOW_TIMEOUT=3s"},
			check: func(t *testing.T, c *Config) {
				if c.Kafka.Topic != "legacy" || c.Shadow.Timeout != 3*time.Second {
					t.Errorf("kafka.topic %q, shadow.timeout %s; want legacy, 3s", c.Kafka.Topic, c.Shadow.Timeout)
				}
			},
		},
		{
			name:    "KAFKA_ overrides MIFFY_ and the file",
			file:    "[kafka]\ntopic = \"file\"\n\"client.id\" = \"file\"\n",
			environ: []string{"MIFFY_KAFKA__TOPIC=miffy-env", "KAFKA_TOPIC=kafka-env", "KAFKA_CLIENT_ID=env", "KAFKA_MAX_BUFFERED_RECORDS=5", "KAFKA_SASL_MECHANISMS=SCRAM-SHA-512"},
			check: func(t *testing.T, c *Config) {
				if c.Kafka.Topic != "kafka-env" || c.Kafka.MaxBufferedRecords != 5 ||
					c.Kafka.Properties["client.id"] != "env" || c.Kafka.Properties["sasl.mechanism"] != "SCRAM-SHA-512" {
					t.Errorf("kafka %+v", c.Kafka)
				}
			},
		},
		{
			name: "kafka property values and dotted keys",
			file: "[kafka]\nbootstrap.servers = \"k:9092\"\n\"linger.ms\" = 5\n\"enable.idempotence\" = true\n\"retry.backoff.ms\" = 2.5\n",
			check: func(t *testing.T, c *Config) {
				want := map[string]string{"bootstrap.servers": "k:9092", "linger.ms": "5", "enable.idempotence": "true", "retry.backoff.ms": "2.5"}
				if diff := cmp.Diff(want, c.Kafka.Properties); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.file, tt.environ...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string // each must appear in the error
	}{
		{"unknown top-level key", "portt = 1\n", nil, []string{`unknown key "portt"`}},
		{"key case matters", "PORT = 1\n", nil, []string{`unknown key "PORT"`}},
		{"unknown nested key", "[shadow]\ntimout = \"1s\"\n", nil, []string{`unknown key "shadow.timout"; did you mean "shadow.timeout"?`}},
		{"unknown route key, hint", "routes = [{ path = \"/a\", mehtods = [\"GET\"] }]\n", nil, []string{`unknown key "routes[0].mehtods"; did you mean "routes[0].methods"?`}},
		{"unknown route rule key, hint", "routes = [{ path = \"/a\", ignor = [] }]\n", nil, []string{`did you mean "routes[0].ignore"?`}},
		{"unknown top-level key, hint", "refrence = \"http://a\"\n", nil, []string{`unknown key "refrence"; did you mean "reference"?`}},
		{"unknown route key", "routes = [{ path = \"/a\" }, { path = \"/b\", pathh = \"/c\" }]\n", nil, []string{`unknown key "routes[1].pathh"`}},
		{"unknown section", "[shadoww]\nx = 1\n", nil, []string{`unknown key "shadoww"`}},
		{"bad route URL", "routes = [{ path = \"/a\" }, { path = \"/b\", reference = \"htp:/x\" }]\n", nil,
			[]string{`routes[1].reference: "htp:/x" is not an absolute http(s) URL`}},
		{"bad top-level URL", "reference = \"127.0.0.1:3000\"\n", nil, []string{"reference: "}},
		{"URL with a query", "candidate = \"http://x/?a=1\"\n", nil, []string{"candidate: ", "query"}},
		{"missing reference", "reference = \"\"\n", nil, []string{"reference: required"}},
		{"duplicate route", "routes = [{ path = \"/a/{x}\" }, { path = \"/b\" }, { path = \"/a/{x}\" }]\n", nil,
			[]string{"routes[2]: duplicates routes[0]"}},
		{"conflicting route", "routes = [{ path = \"/a/{x}\", methods = [\"GET\"] }, { path = \"/a/{y}\" }]\n", nil,
			[]string{`routes[1]: path "/a/{y}" conflicts with routes[0]`}},
		{"bad route path", "routes = [{ path = \"api\" }]\n", nil, []string{"routes[0].path"}},
		{"missing route path", "routes = [{ key = \"x\" }]\n", nil, []string{"routes[0].path: required"}},
		{"bad method", "routes = [{ path = \"/a\", methods = [\"GE T\"] }]\n", nil, []string{"routes[0].methods[0]"}},
		{"bad sample", "[shadow]\nsample = 1.5\n", nil, []string{"shadow.sample"}},
		{"bad route sample", "routes = [{ path = \"/a\", sample = -0.1 }]\n", nil, []string{"routes[0].sample"}},
		{"nan sample", "[shadow]\nsample = nan\n", nil, []string{"shadow.sample"}},
		{"bad publish", "routes = [{ path = \"/a\", publish = \"some\" }]\n", nil, []string{"routes[0].publish"}},
		{"bad publish mode", "[publish]\nmode = \"diffs\"\n", nil, []string{"publish.mode"}},
		{"bad duration string", "[shadow]\ntimeout = \"5 seconds\"\n", nil, []string{"shadow.timeout"}},
		{"duration without unit", "[proxy]\ndial_timeout = 5\n", nil, []string{"proxy.dial_timeout"}},
		{"zero timeout", "[shadow]\ntimeout = \"0s\"\n", nil, []string{"shadow.timeout"}},
		{"negative duration", "[proxy]\nread_timeout = \"-1s\"\n", nil, []string{"proxy.read_timeout"}},
		{"bad logging", "logging = \"xml\"\n", nil, []string{"logging"}},
		{"bad log level", "log_level = \"trace\"\n", nil, []string{"log_level"}},
		{"bad type", "port = \"abc\"\n", nil, []string{`port: "abc" is not a valid integer`}},
		{"unknown MIFFY_ variable", "", []string{"MIFFY_PORTT=1"}, []string{`MIFFY_PORTT: unknown key "portt"`}},
		{"unknown MIFFY_ section key", "", []string{"MIFFY_SHADOW__TIMOUT=1s"}, []string{`MIFFY_SHADOW__TIMOUT: unknown key "shadow.timout"; did you mean "shadow.timeout"?`}},
		{"unsupported KAFKA_ property", "", []string{"KAFKA_GROUP_ID=x", "KAFKA_SESSION_TIMEOUT_MS=1"},
			[]string{`KAFKA_GROUP_ID: kafka."group.id": not supported by miffy`, `KAFKA_SESSION_TIMEOUT_MS: kafka."session.timeout.ms": not supported by miffy`}},
		{"unsupported property in the file", "[kafka]\n\"bootstrap.server\" = \"a:1\"\n", nil,
			[]string{`kafka."bootstrap.server": not supported by miffy; did you mean "bootstrap.servers"?`}},
		{"fractional integer", "[shadow]\nmax_in_flight = 1.5\n", nil, []string{"shadow.max_in_flight: 1.5 is not a whole number"}},
		{"integer out of range", "[shadow]\nmax_in_flight = 1e30\n", nil, []string{"shadow.max_in_flight: 1e+30 is out of range"}},
		{"boolean for an integer", "[proxy]\nmax_header_bytes = true\n", nil, []string{"proxy.max_header_bytes: true is not a valid integer"}},
		{"fractional integer from the environment", "", []string{"MIFFY_SHADOW__MAX_IN_FLIGHT=1.5"}, []string{"MIFFY_SHADOW__MAX_IN_FLIGHT: shadow.max_in_flight"}},
		{"bad MIFFY_ value", "", []string{"MIFFY_SHADOW__TIMEOUT=fast"}, []string{"MIFFY_SHADOW__TIMEOUT: shadow.timeout: "}},
		{"bad MIFFY_ value found by Validate", "", []string{"MIFFY_PORT=70000"}, []string{"MIFFY_PORT: port: 70000"}},
		{"bad KAFKA_ value", "", []string{"KAFKA_MAX_BUFFERED_RECORDS=many"}, []string{"KAFKA_MAX_BUFFERED_RECORDS: kafka.max_buffered_records: "}},
		{"bad MIFFY_ROUTES", "", []string{"MIFFY_ROUTES=/api"}, []string{"MIFFY_ROUTES"}},
		{"port conflict", "port = 9000\n", nil, []string{"port and management.port"}},
		{"port out of range", "port = 70000\n", nil, []string{"port: 70000"}},
		{"management_port and management.port differ", "management_port = 9001\n[management]\nport = 9002\n", nil,
			[]string{"management_port (9001)", "management.port (9002)"}},
		{"log_json and logging differ", "log_json = true\nlogging = \"human\"\n", nil, []string{"log_json", "logging"}},
		{"brokers and bootstrap.servers differ", "[kafka]\nbrokers = [\"a:1\"]\n\"bootstrap.servers\" = \"b:1\"\n", nil,
			[]string{"kafka.brokers", "bootstrap.servers"}},
		{"property and alias differ", "[kafka]\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.mechanisms\" = \"SCRAM-SHA-256\"\n", nil,
			[]string{`kafka."sasl.mechanism"`, `kafka."sasl.mechanisms"`}},
		{"non-scalar property", "[kafka]\n\"client.id\" = [\"a\"]\n", nil, []string{`kafka."client.id"`}},
		{"kafka not a table", "kafka = 1\n", nil, []string{"kafka: must be a table"}},
		{"bad topic", "[kafka]\ntopic = \"a b\"\n", nil, []string{"kafka.topic"}},
		{"empty topic", "", []string{"KAFKA_TOPIC="}, []string{"kafka.topic: required"}},
		{"max_in_flight zero", "[shadow]\nmax_in_flight = 0\n", nil, []string{"shadow.max_in_flight"}},
		{"noise out of range", "[noise]\nrelative = 1.5\n", nil, []string{"noise.relative"}},
		{"bad comparison rules", "[compare]\ncanonicalize = \"del(\"\n[[routes]]\npath = \"/a\"\nignore = [\"$.[\"]\n", nil,
			[]string{"compare.canonicalize: ", "routes[0].ignore[0]: "}},
		{"empty management host", "[management]\nhost = \"\"\n", nil, []string{"management.host"}},
		{"negative jq timeout", "[compare]\ncanonicalize_timeout = \"-1s\"\n", nil, []string{"compare.canonicalize_timeout: must be > 0"}},
		{"bad route jq timeout", "[[routes]]\npath = \"/a\"\ncanonicalize_timeout = \"soon\"\n", nil, []string{"routes[0].canonicalize_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.file, tt.environ...)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadGathersErrors(t *testing.T) {
	_, err := load(t, "portt = 1\nlogging = \"xml\"\n[shadow]\ntimout = 1\nsample = 2\n", "MIFFY_NOPE=1")
	if err == nil {
		t.Fatal("Load succeeded")
	}
	// Decoding problems come first (logging and sample are checked once
	// the file decodes); all of them are reported at once.
	for _, w := range []string{`unknown key "portt"`, `unknown key "shadow.timout"`, "MIFFY_NOPE"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestLoadMalformedTOML(t *testing.T) {
	tests := []struct {
		name, file, line string
	}{
		{"unclosed table header", "port = 8080\n\n[shadow\ntimeout = \"1s\"\n", "line 3, column 8"},
		{"key defined twice", "port = 8080\nlogging = \"json\"\nport = 8081\n", "line 3:"},
		{"table defined twice", "[shadow]\ntimeout = \"1s\"\n\n[proxy]\n[shadow]\nsample = 1\n", "line 5:"},
		{"inline routes then [[routes]]", "routes = [\n  { path = \"/a\" },\n]\n\n[[routes]]\npath = \"/b\"\n", "line 5:"},
		{"unterminated string", "reference = \"http://x\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "broken.toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(defaults(t), path, nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range []string{path, tt.line} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadPaths(t *testing.T) {
	def := defaults(t)
	t.Run("missing explicit path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.toml")
		_, err := Load(defaults(t), path, nil)
		if err == nil || !strings.Contains(err.Error(), "nope.toml") {
			t.Fatalf("got %v, want an error naming the file", err)
		}
	})
	t.Run("missing ./config.toml", func(t *testing.T) {
		t.Chdir(t.TempDir())
		c, err := Load(def, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Port != 8080 {
			t.Errorf("port %d, want the default 8080", c.Port)
		}
	})
	t.Run("./config.toml is read", func(t *testing.T) {
		t.Chdir(t.TempDir())
		if err := os.WriteFile("config.toml", []byte("port = 8090\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(def, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Port != 8090 {
			t.Errorf("port %d, want 8090 from ./config.toml", c.Port)
		}
	})
	t.Run("malformed ./config.toml", func(t *testing.T) {
		t.Chdir(t.TempDir())
		if err := os.WriteFile("config.toml", []byte("port = = 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(def, "", nil)
		if err == nil || !strings.Contains(err.Error(), "config.toml") || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("got %v, want an error naming config.toml and line 1", err)
		}
	})
}

// TestFastServerRemoved: a config that still sets [proxy] fast_server is
// refused, naming the key.
func TestFastServerRemoved(t *testing.T) {
	for _, v := range []string{"true", "false"} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte("[proxy]\nfast_server = "+v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(defaults(t), path, nil)
		if err == nil || !strings.Contains(err.Error(), "proxy.fast_server") {
			t.Errorf("fast_server = %s: error %v, want one naming proxy.fast_server", v, err)
		}
	}
}
