// Package config loads miffy's configuration: the embedded defaults, then the
// user's TOML file, then MIFFY_ and KAFKA_ environment variables. It is
// unmarshalled and validated once; errors name the key.
package config

import (
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// Config is the whole configuration, as in config.default.toml.
type Config struct {
	Port           int    `koanf:"port"`
	ManagementPort int    `koanf:"management_port"` // folded into Management.Port by Load
	Logging        string `koanf:"logging"`         // human | json | stackdriver
	LogJSON        bool   `koanf:"log_json"`        // legacy: true means Logging = "json"
	LogLevel       string `koanf:"log_level"`
	AccessLog      bool   `koanf:"access_log"`
	// ShutdownTimeout bounds the whole shutdown: draining client requests,
	// waiting for replays and flushing the publisher.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	Reference       string        `koanf:"reference"`
	Candidate       string        `koanf:"candidate"`
	Secondary       string        `koanf:"secondary"`
	Routes          []Route       `koanf:"routes"`

	Proxy      Proxy          `koanf:"proxy"`
	Upstream   Upstream       `koanf:"upstream"`
	Shadow     Shadow         `koanf:"shadow"`
	Compare    compare.Rules  `koanf:"compare"`
	Noise      Noise          `koanf:"noise"`
	Publish    Publish        `koanf:"publish"`
	Kafka      Kafka          `koanf:"-"` // [kafka] is decoded by hand, see kafka.go
	Management Management     `koanf:"management"`
	Canary     Canary         `koanf:"canary"`
	Control    Control        `koanf:"control"`
	Metrics    Metrics        `koanf:"metrics"`
	Report     Report         `koanf:"report"`
	Verdict    verdict.Limits `koanf:"verdict"`
	Rollout    Rollout        `koanf:"rollout"`
}

// Report is the [report] section: the tallies every instance publishes,
// and the report server.
type Report struct {
	TallyTopic    string        `koanf:"tally_topic"`
	TallyInterval time.Duration `koanf:"tally_interval"`
	LatencyTie    time.Duration `koanf:"latency_tie"`
	// TokenFile holds the bearer token the report server requires; empty:
	// none.
	TokenFile string `koanf:"token_file"`
}

// Route is one entry of routes. Pointer fields are nil when unset, so that
// the global default applies.
type Route struct {
	Path             string   `koanf:"path"`
	Key              string   `koanf:"key"`
	Name             string   `koanf:"name"` // Load sets it to Path when empty
	Methods          []string `koanf:"methods"`
	Reference        string   `koanf:"reference"` // Load fills in the top-level value when empty
	Candidate        string   `koanf:"candidate"` // likewise
	Secondary        string   `koanf:"secondary"` // likewise
	AllowSideEffects *bool    `koanf:"allow_side_effects"`
	Sample           *float64 `koanf:"sample"`
	Publish          string   `koanf:"publish"`
	PublishNoise     *bool    `koanf:"publish_noise"`

	// Forwarding, on every route.
	TrimPrefix          string `koanf:"trim_prefix"`
	ReferenceHostHeader string `koanf:"reference_host_header"`
	CandidateHostHeader string `koanf:"candidate_host_header"`

	// Per-side protocol of this route's upstreams; empty: [upstream]'s.
	ReferenceProtocol string `koanf:"reference_protocol"`
	CandidateProtocol string `koanf:"candidate_protocol"`
	SecondaryProtocol string `koanf:"secondary_protocol"`

	// Mode is "shadow" (the reference answers, the candidate is compared)
	// or "canary" (the side the decision picks answers). Load sets it to
	// "shadow" when empty. The keys below are for canary routes only; a
	// zero duration or count takes the [canary] default.
	Mode             string        `koanf:"mode"`
	Weight           float64       `koanf:"weight"` // percent, 0..100
	StickyKey        string        `koanf:"sticky_key"`
	StickyCookie     string        `koanf:"sticky_cookie"`
	OverrideHeader   string        `koanf:"override_header"`
	CanaryHeader     string        `koanf:"canary_header"`
	DecisionURL      string        `koanf:"decision_url"`
	DecisionTimeout  time.Duration `koanf:"decision_timeout"`
	DecisionCacheTTL time.Duration `koanf:"decision_cache_ttl"`
	MaxErrors        int           `koanf:"max_errors"`
	MaxErrorRate     float64       `koanf:"max_error_rate"`
	Window           time.Duration `koanf:"window"`
	MaxRequests      int           `koanf:"max_requests"`
	MaxRPS           float64       `koanf:"max_rps"`
	Cooldown         time.Duration `koanf:"cooldown"`
	Probes           int           `koanf:"probes"`
	Shadow           bool          `koanf:"shadow"`

	// Verdict overrides [verdict] keys for this route.
	Verdict verdict.Override `koanf:"verdict"`
	// Rollout, on a canary route, is its rollout ([routes.rollout]).
	Rollout *RouteRollout `koanf:"rollout"`

	compare.Rules `koanf:",squash"`
}

// Route modes.
const (
	ModeShadow = "shadow"
	ModeCanary = "canary"
)

// Canary is the [canary] section: defaults of canary routes, and the
// decision services for other proxies.
type Canary struct {
	OverrideHeader       string        `koanf:"override_header"`
	ServedByHeader       string        `koanf:"served_by_header"`
	DecisionTimeout      time.Duration `koanf:"decision_timeout"`
	DecisionCacheTTL     time.Duration `koanf:"decision_cache_ttl"`
	DecisionMaxBodyBytes int64         `koanf:"decision_max_body_bytes"`
	Window               time.Duration `koanf:"window"`
	MinRequests          int           `koanf:"min_requests"`
	Cooldown             time.Duration `koanf:"cooldown"`
	Probes               int           `koanf:"probes"`
	Socket               string        `koanf:"socket"`
	SocketRoute          string        `koanf:"socket_route"`
	// Events is where canary events go as JSON lines: "" (off), "stdout",
	// "stderr" or a file (appended).
	Events string `koanf:"events"`
}

// Metrics is the [metrics] section.
type Metrics struct {
	Statsd string `koanf:"statsd"` // host:port of a DogStatsD agent; empty: off
}

// Proxy is the [proxy] section.
type Proxy struct {
	Host              string        `koanf:"host"`
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	ReadTimeout       time.Duration `koanf:"read_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	WriteTimeout      time.Duration `koanf:"write_timeout"`
	MaxHeaderBytes    int           `koanf:"max_header_bytes"`
	// FastServer is a removed key: set at all, it is an error that says so.
	FastServer          any           `koanf:"fast_server"`
	TLSCertFile         string        `koanf:"tls_cert_file"`
	TLSKeyFile          string        `koanf:"tls_key_file"`
	TLSClientCAFile     string        `koanf:"tls_client_ca_file"`
	AllowUpgrades       []string      `koanf:"allow_upgrades"`
	MaxRequestBodyBytes int64         `koanf:"max_request_body_bytes"`
	DialTimeout         time.Duration `koanf:"dial_timeout"`
	ReferenceTimeout    time.Duration `koanf:"reference_timeout"`
	MaxIdleConnsPerHost int           `koanf:"max_idle_conns_per_host"`
	UpstreamIdleTimeout time.Duration `koanf:"upstream_idle_timeout"`
	ForwardedHeaders    bool          `koanf:"forwarded_headers"`
	DebugRequests       bool          `koanf:"debug_requests"`
	DebugBodies         bool          `koanf:"debug_bodies"`

	// MaxResponseHeaderBytes bounds an upstream's response head.
	MaxResponseHeaderBytes int `koanf:"max_response_header_bytes"`
}

// Shadow is the [shadow] section.
type Shadow struct {
	MaxBodyBytes     int64         `koanf:"max_body_bytes"`
	MaxResponseBytes int64         `koanf:"max_response_bytes"`
	Timeout          time.Duration `koanf:"timeout"`
	MaxInFlight      int           `koanf:"max_in_flight"`
	MaxInFlightBytes int64         `koanf:"max_in_flight_bytes"`
	CompareQueue     int           `koanf:"compare_queue"`
	AllowSideEffects bool          `koanf:"allow_side_effects"`
	Sample           float64       `koanf:"sample"`
}

// Noise is the [noise] section.
type Noise struct {
	Relative     float64       `koanf:"relative"`
	Absolute     float64       `koanf:"absolute"`
	Window       time.Duration `koanf:"window"`
	PublishNoise bool          `koanf:"publish_noise"`
}

// Publish is the [publish] section.
type Publish struct {
	Mode            string   `koanf:"mode"` // mismatches | all | none
	Console         bool     `koanf:"console"`
	MaxBodyBytes    int      `koanf:"max_body_bytes"`
	RedactHeaders   []string `koanf:"redact_headers"`
	RedactJSONPaths []string `koanf:"redact_json_paths"`
	// RedactQueryParams are query parameters whose values are redacted in
	// records and logs (case-insensitive).
	RedactQueryParams []string `koanf:"redact_query_params"`
	// RedactJSONKeys are JSON member names whose values are redacted at
	// any depth (case-insensitive, "_" and "-" ignored).
	RedactJSONKeys []string `koanf:"redact_json_keys"`
}

// Kafka is the [kafka] section: miffy's own keys, and the librdkafka-style
// properties (every other key, e.g. "bootstrap.servers") in Properties.
type Kafka struct {
	Topic              string        `koanf:"topic"`
	Brokers            []string      `koanf:"brokers"` // legacy; merged into Properties["bootstrap.servers"] (and cleared) by Load
	MaxBufferedRecords int           `koanf:"max_buffered_records"`
	MaxBufferedBytes   int64         `koanf:"max_buffered_bytes"`
	DeliveryTimeout    time.Duration `koanf:"delivery_timeout"`
	RequireBroker      bool          `koanf:"require_broker"`
	// Properties holds the librdkafka-style properties as strings, after
	// KAFKA_ environment overrides (e.g. "sasl.password").
	Properties map[string]string `koanf:"-"`
}

// Management is the [management] section.
type Management struct {
	Port  int    `koanf:"port"`
	Host  string `koanf:"host"`
	PProf bool   `koanf:"pprof"`
	// TLS of the management listener, as [proxy]'s.
	TLSCertFile     string `koanf:"tls_cert_file"`
	TLSKeyFile      string `koanf:"tls_key_file"`
	TLSClientCAFile string `koanf:"tls_client_ca_file"`
	// AdminTokenFile holds the admin API's bearer token (MIFFY_ADMIN_TOKEN
	// wins). Neither set: the admin API is off.
	AdminTokenFile string `koanf:"admin_token_file"`
}

// Control is the [control] section: fleet control through Kafka.
type Control struct {
	// Topic is the compacted control topic every instance follows; empty
	// means off.
	Topic string `koanf:"topic"`
	// StaleAfter: when set and the topic has not been read for this long,
	// canary routes fall back to weight 0 until it is read again.
	StaleAfter time.Duration `koanf:"stale_after"`
}
