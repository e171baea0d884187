package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
	"github.com/miffy-proxy/miffy/internal/route"
	"github.com/miffy-proxy/miffy/internal/upstream"
)

var (
	loggingFormats = []string{"human", "json", "stackdriver"}
	logLevels      = []string{"debug", "info", "warn", "error"}
	publishModes   = []string{"mismatches", "all", "none"}
	routeModes     = []string{ModeShadow, ModeCanary}
)

// unroutedName is the route label of requests that match no route (in
// metrics), so no route may be called so.
const unroutedName = "unrouted"

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

// Validate checks the whole config and returns every problem found, joined;
// each error names its key, e.g.
// `routes[1].reference: "htp:/x" is not an absolute http(s) URL`.
// Load calls it; call it again after changing a Config.
//
// A key whose zero would mean something else downstream is refused here
// at zero, so that no zero is quietly replaced by a default: see
// config.default.toml for what each zero means.
func (c *Config) Validate() error {
	v := &validator{}
	v.topLevel(c)
	v.routes(c.Routes)
	v.proxy(c.Proxy)
	v.tlsFiles("management", c.Management.TLSCertFile, c.Management.TLSKeyFile, c.Management.TLSClientCAFile)
	v.upstream(c)
	v.shadow(c.Shadow)
	v.prefixed("compare.", c.Compare.Validate())
	if c.Compare.CanonicalizeTimeout == 0 {
		// compare would read zero as its own default; a route's zero
		// takes this value (compare.Rules.Merge).
		v.errorf("compare.canonicalize_timeout: must be more than 0s (there is no unbounded setting)")
	}
	// compare.NewJudge reads a zero threshold as its own default: refused.
	v.positiveShare("noise.relative", c.Noise.Relative)
	v.positiveShare("noise.absolute", c.Noise.Absolute)
	v.positive("noise.window", c.Noise.Window)
	v.oneOf("publish.mode", c.Publish.Mode, publishModes)
	v.atLeast("publish.max_body_bytes", int64(c.Publish.MaxBodyBytes), 0)
	v.kafka(c)
	v.report(c)
	if strings.TrimSpace(c.Management.Host) == "" {
		v.errorf("management.host: required (e.g. \"127.0.0.1\")")
	}
	v.canary(c)
	v.rollout(c)
	if c.Metrics.Statsd != "" {
		v.hostPort("metrics.statsd", c.Metrics.Statsd)
	}
	return errors.Join(v.errs...)
}

// topLevel checks the top-level keys but routes.
func (v *validator) topLevel(c *Config) {
	v.port("port", c.Port)
	v.port("management.port", c.Management.Port)
	if c.Port == c.Management.Port && c.Port != 0 {
		v.errorf("port and management.port: both are %d; the proxy and the management listener need different ports", c.Port)
	}
	if c.ManagementPort != 0 && c.ManagementPort != c.Management.Port {
		v.errorf("management_port (%d) and management.port (%d) differ; set only management.port", c.ManagementPort, c.Management.Port)
	}
	v.oneOf("logging", c.Logging, loggingFormats)
	if c.LogJSON && c.Logging != "json" {
		v.errorf("log_json (true) and logging (%q) differ; set only logging", c.Logging)
	}
	v.oneOf("log_level", c.LogLevel, logLevels)
	v.positive("shutdown_timeout", c.ShutdownTimeout)
	v.baseURL("reference", c.Reference, true)
	v.baseURL("candidate", c.Candidate, true)
	v.baseURL("secondary", c.Secondary, false)
}

// proxy checks the [proxy] section. read_header_timeout and idle_timeout
// must be more than 0s: net/http would read a zero as read_timeout's value.
func (v *validator) proxy(p Proxy) {
	v.positive("proxy.read_header_timeout", p.ReadHeaderTimeout)
	v.nonNegative("proxy.read_timeout", p.ReadTimeout)
	v.positive("proxy.idle_timeout", p.IdleTimeout)
	v.nonNegative("proxy.write_timeout", p.WriteTimeout)
	if p.FastServer != nil {
		v.errorf("proxy.fast_server: removed; miffy serves every client connection with Go's net/http server (HTTP/1.1, HTTP/2, TLS): delete the key")
	}
	v.tlsFiles("proxy", p.TLSCertFile, p.TLSKeyFile, p.TLSClientCAFile)
	for _, tok := range p.AllowUpgrades {
		switch {
		case !httpsyntax.ValidToken(tok):
			v.errorf("proxy.allow_upgrades: %q is not a protocol token", tok)
		case strings.EqualFold(tok, "h2c"):
			v.errorf("proxy.allow_upgrades: h2c cannot be allowed: the HTTP/2 requests inside such a tunnel would bypass routing (clients can speak h2c to miffy directly)")
		}
	}
	v.atLeast("proxy.max_header_bytes", int64(p.MaxHeaderBytes), 1)
	v.atLeast("proxy.max_response_header_bytes", int64(p.MaxResponseHeaderBytes), 1)
	v.atLeast("proxy.max_request_body_bytes", p.MaxRequestBodyBytes, 0)
	v.positive("proxy.dial_timeout", p.DialTimeout)
	v.nonNegative("proxy.reference_timeout", p.ReferenceTimeout)
	v.atLeast("proxy.max_idle_conns_per_host", int64(p.MaxIdleConnsPerHost), 1)
	v.nonNegative("proxy.upstream_idle_timeout", p.UpstreamIdleTimeout)
}

// shadow checks the [shadow] section.
func (v *validator) shadow(s Shadow) {
	v.atLeast("shadow.max_body_bytes", s.MaxBodyBytes, 1)
	v.atLeast("shadow.max_response_bytes", s.MaxResponseBytes, 1)
	v.positive("shadow.timeout", s.Timeout)
	v.atLeast("shadow.max_in_flight", int64(s.MaxInFlight), 1)
	v.atLeast("shadow.max_in_flight_bytes", s.MaxInFlightBytes, 1)
	v.atLeast("shadow.compare_queue", int64(s.CompareQueue), 0)
	v.share("shadow.sample", s.Sample)
}

// kafka checks the [kafka] and [control] sections.
func (v *validator) kafka(c *Config) {
	k := c.Kafka
	v.topic("kafka.topic", k.Topic)
	v.nonNegative("control.stale_after", c.Control.StaleAfter)
	if c.Control.Topic != "" {
		v.topic("control.topic", c.Control.Topic)
		if c.Control.Topic == k.Topic {
			v.errorf("control.topic: must differ from kafka.topic (%q)", k.Topic)
		}
	}
	if len(k.Brokers) > 0 && strings.Join(k.Brokers, ",") != normalizeServers(k.Properties["bootstrap.servers"]) {
		v.errorf("kafka.brokers and kafka.\"bootstrap.servers\" differ; set only \"bootstrap.servers\"")
	}
	v.kafkaProperties(k.Properties)
	v.atLeast("kafka.max_buffered_records", int64(k.MaxBufferedRecords), 1)
	v.atLeast("kafka.max_buffered_bytes", k.MaxBufferedBytes, 1)
	if d := k.DeliveryTimeout; d < 0 || d > 0 && d < time.Second {
		v.errorf("kafka.delivery_timeout: want 0s (no limit) or at least 1s, got %s", d)
	}
}

// report checks the [report] and [verdict] sections, and the routes'
// verdict overrides.
func (v *validator) report(c *Config) {
	v.topic("report.tally_topic", c.Report.TallyTopic)
	if c.Report.TallyTopic == c.Kafka.Topic || c.Report.TallyTopic == c.Control.Topic {
		v.errorf("report.tally_topic: must differ from kafka.topic and control.topic (%q)", c.Report.TallyTopic)
	}
	v.positive("report.tally_interval", c.Report.TallyInterval)
	v.nonNegative("report.latency_tie", c.Report.LatencyTie)
	if err := c.Verdict.Validate("verdict."); err != nil {
		v.prefixed("", err)
		return
	}
	for i, r := range c.Routes {
		v.prefixed("", c.Verdict.With(r.Verdict).Validate(fmt.Sprintf("routes[%d].verdict.", i)))
	}
}

// routes checks each route and that no two routes overlap.
func (v *validator) routes(routes []Route) {
	var table route.Table[int]
	added := make([]bool, len(routes))
	names := make(map[string]int, len(routes))
	for i, r := range routes {
		key := fmt.Sprintf("routes[%d]", i)
		// Metrics, reports, the admin API and the control topic know a
		// route by its name (by default its path).
		if r.Name != "" {
			if j, ok := names[r.Name]; ok {
				v.errorf("%s.name: %q is also the name of routes[%d] (a name defaults to the path); give each route its own name", key, r.Name, j)
			} else {
				names[r.Name] = i
			}
			if r.Name == unroutedName {
				v.errorf("%s.name: %q is reserved for requests that match no route", key, r.Name)
			}
		}
		pathOK := true
		if _, err := route.Parse(r.Path); err != nil {
			pathOK = false
			if r.Path == "" {
				v.errorf("%s.path: required", key)
			} else {
				v.errorf("%s.path: %v", key, err)
			}
		}
		methodsOK := true
		for j, m := range r.Methods {
			if !isToken(m) {
				methodsOK = false
				v.errorf("%s.methods[%d]: %q is not an HTTP method", key, j, m)
			}
		}
		v.baseURL(key+".reference", r.Reference, false)
		v.baseURL(key+".candidate", r.Candidate, false)
		v.baseURL(key+".secondary", r.Secondary, false)
		if r.Sample != nil {
			v.share(key+".sample", *r.Sample)
		}
		if r.Publish != "" {
			v.oneOf(key+".publish", r.Publish, publishModes)
		}
		v.prefixed(key+".", r.Rules.Validate())
		v.routeCanary(key, r, pathOK)

		if !pathOK || !methodsOK {
			continue
		}
		if err := table.Add(r.Path, r.Methods, i); err != nil {
			if j := firstConflict(routes[:i], added, r); j >= 0 {
				if routes[j].Path == r.Path {
					v.errorf("%s: duplicates routes[%d] (path %q, overlapping methods)", key, j, r.Path)
				} else {
					v.errorf("%s: path %q conflicts with routes[%d] (path %q): they match the same requests", key, r.Path, j, routes[j].Path)
				}
			} else {
				v.errorf("%s: %v", key, err)
			}
			continue
		}
		added[i] = true
	}
}

// firstConflict returns the index of the earlier route that r conflicts
// with, or -1.
func firstConflict(earlier []Route, added []bool, r Route) int {
	for j, e := range earlier {
		if !added[j] {
			continue
		}
		var t route.Table[int]
		if t.Add(e.Path, e.Methods, j) != nil {
			continue
		}
		if err := t.Add(r.Path, r.Methods, 0); errors.Is(err, route.ErrConflict) {
			return j
		}
	}
	return -1
}

// validator collects errors.
type validator struct{ errs []error }

func (v *validator) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

// prefixed adds the errors of a sub-validation (possibly joined), each
// prefixed with the section, e.g. "routes[2]." + "ignore[1]: ...".
func (v *validator) prefixed(prefix string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			v.prefixed(prefix, e)
		}
		return
	}
	v.errs = append(v.errs, fmt.Errorf("%s%w", prefix, err))
}

func (v *validator) port(key string, p int) {
	if p < 1 || p > 65535 {
		v.errorf("%s: %d is not a port (1..65535)", key, p)
	}
}

func (v *validator) oneOf(key, val string, allowed []string) {
	if !slices.Contains(allowed, val) {
		v.errorf("%s: %q is not one of %s", key, val, strings.Join(quoteAll(allowed), ", "))
	}
}

func (v *validator) atLeast(key string, n, lowest int64) {
	if n < lowest {
		v.errorf("%s: %d is less than %d", key, n, lowest)
	}
}

func (v *validator) nonNegative(key string, d time.Duration) {
	if d < 0 {
		v.errorf("%s: %s is negative", key, d)
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.errorf("%s: %s must be more than 0s", key, d)
	}
}

// positiveShare checks a fraction in (0, 1].
func (v *validator) positiveShare(key string, f float64) {
	if !(f > 0 && f <= 1) {
		v.errorf("%s: %v is not more than 0 and at most 1", key, f)
	}
}

// share checks a fraction in [0, 1] (NaN fails).
func (v *validator) share(key string, f float64) {
	if !(f >= 0 && f <= 1) || math.IsNaN(f) {
		v.errorf("%s: %v is not between 0 and 1", key, f)
	}
}

// baseURL checks an upstream base URL (see upstream.ParseBaseURL).
func (v *validator) baseURL(key, s string, required bool) {
	if s == "" {
		if required {
			v.errorf("%s: required, an absolute http(s) URL such as \"http://127.0.0.1:3000\"", key)
		}
		return
	}
	if _, err := upstream.ParseBaseURL(s); err != nil {
		v.errorf("%s: %v", key, err)
	}
}

// topic checks a Kafka topic name.
func (v *validator) topic(key, t string) {
	switch {
	case t == "":
		v.errorf("%s: required", key)
	case len(t) > maxTopicLen:
		v.errorf("%s: %d characters, Kafka allows at most %d", key, len(t), maxTopicLen)
	case t == "." || t == "..":
		v.errorf("%s: %q is not a legal Kafka topic name", key, t)
	default:
		for _, r := range t {
			if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				v.errorf("%s: %q is not a legal Kafka topic name (letters, digits, '.', '_' and '-' only)", key, t)
				return
			}
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as a
// method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// tlsFiles checks a listener's TLS keys: a certificate needs its key (and
// the other way round), and a client CA needs both.
func (v *validator) tlsFiles(section, cert, key, ca string) {
	switch {
	case (cert == "") != (key == ""):
		v.errorf("%s.tls_cert_file and %s.tls_key_file: set both or neither", section, section)
	case ca != "" && cert == "":
		v.errorf("%s.tls_client_ca_file needs %s.tls_cert_file and %s.tls_key_file", section, section, section)
	}
}
