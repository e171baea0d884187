package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
)

// defaultFile is the file Load reads when it is given no path.
const defaultFile = "config.toml"

// layer numbers, in loading order: a later layer overrides an earlier one.
const (
	layerDefaults = iota
	layerFile
	layerMiffyEnv
	layerKafkaEnv
)

// layers are the raw maps of each source, kept to tell which keys the user
// set (and where) when two keys say the same thing (management_port and
// [management] port, log_json and logging, brokers and "bootstrap.servers").
type layers [layerKafkaEnv + 1]map[string]any

// Load builds the effective config: defaults (the embedded
// config.default.toml bytes, passed in), then the user's file, then the
// environment. path == "" means "./config.toml if it exists, else defaults
// only"; a non-empty path that doesn't exist is an error. environ is
// os.Environ()-style "K=V".
//
// Environment: MIFFY_ variables set keys (MIFFY_SHADOW__TIMEOUT=2s), then
// KAFKA_ variables set [kafka] keys and properties
// (KAFKA_SASL_PASSWORD=... -> "sasl.password"); see config.default.toml.
func Load(defaults []byte, path string, environ []string) (*Config, error) {
	return loadLayers(defaults, path, false, environ)
}

// LoadDefaults is Load without any file: the defaults and the environment
// only, whatever ./config.toml says (for `miffy demo`).
func LoadDefaults(defaults []byte, environ []string) (*Config, error) {
	return loadLayers(defaults, "", true, environ)
}

func loadLayers(defaults []byte, path string, noFile bool, environ []string) (*Config, error) {
	var ls layers
	var err error
	if ls[layerDefaults], err = parseTOML(defaults, "embedded defaults"); err != nil {
		return nil, err
	}
	if !noFile {
		if ls[layerFile], err = readFile(path); err != nil {
			return nil, err
		}
	}
	src := sources{}
	var errs []error
	ls[layerMiffyEnv], errs = miffyEnv(environ, src)
	if ke := kafkaEnv(environ, src); len(ke) > 0 {
		ls[layerKafkaEnv] = map[string]any{"kafka": ke}
	}
	for i := range ls[:layerKafkaEnv] {
		if err := normalizeKafka(ls[i]); err != nil {
			errs = append(errs, err)
		}
	}

	k := koanf.New(delim)
	for _, m := range ls[:layerKafkaEnv] {
		if err := k.Load(mapProvider(m), nil); err != nil {
			return nil, fmt.Errorf("merging config: %w", err)
		}
	}
	raw := k.Raw()
	kafkaRaw := raw["kafka"]
	delete(raw, "kafka")

	c := &Config{}
	var decodeErrs []error
	decodeErrs = append(decodeErrs, decode(raw, c, "")...)
	ke, _ := ls[layerKafkaEnv]["kafka"].(map[string]any)
	decodeErrs = append(decodeErrs, c.Kafka.decode(kafkaRaw, ke)...)
	if errs = append(errs, src.attribute(decodeErrs)...); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := c.fold(ls); err != nil {
		return nil, err
	}
	c.fillIn()
	if err := c.Validate(); err != nil {
		return nil, errors.Join(src.attribute(unjoin(err))...)
	}
	c.Resolve()
	return c, nil
}

// unjoin returns the errors joined in err.
func unjoin(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}

// readFile reads and parses the user's file; see Load for path.
func readFile(path string) (map[string]any, error) {
	if path == "" {
		if _, err := os.Stat(defaultFile); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		path = defaultFile
	}
	b, err := file.Provider(path).ReadBytes()
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return parseTOML(b, path)
}

// parseTOML parses a TOML document; errors name the source and the line.
func parseTOML(b []byte, source string) (map[string]any, error) {
	m, err := toml.Parser().Unmarshal(b)
	if err == nil {
		return m, nil
	}
	msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "toml: ")), " ")
	var de *gotoml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		err = fmt.Errorf("line %d, column %d: %s", line, col, msg)
	} else if line := errorLine(b); line > 0 {
		err = fmt.Errorf("line %d: %s", line, msg)
	} else {
		err = errors.New(msg)
	}
	if source == "" {
		return nil, err
	}
	return nil, fmt.Errorf("parsing %s: %w", source, err)
}

// errorLine finds the line of a TOML error that go-toml reports without a
// position (a key or table defined twice): the shortest prefix of whole
// lines that fails the same way ends with the offending expression.
// Prefixes that stop inside an expression fail with a positioned syntax
// error instead, so the search is a binary one.
func errorLine(b []byte) int {
	lines := bytes.SplitAfter(b, []byte("\n"))
	unpositioned := func(n int) bool {
		_, err := toml.Parser().Unmarshal(bytes.Join(lines[:n], nil))
		var de *gotoml.DecodeError
		return err != nil && !errors.As(err, &de)
	}
	if !unpositioned(len(lines)) {
		return 0
	}
	return sort.Search(len(lines), func(n int) bool { return unpositioned(n + 1) }) + 1
}

// mapProvider is a koanf.Provider for an already parsed map. Read returns a
// deep copy: koanf merges nested maps in place, and the layers must stay as
// they were read.
type mapProvider map[string]any

func (m mapProvider) ReadBytes() ([]byte, error) { return nil, errors.New("not supported") }
func (m mapProvider) Read() (map[string]any, error) {
	out, _ := deepCopy(map[string]any(m)).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// deepCopy copies the tables and arrays of a parsed TOML value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// decode decodes a raw map into out (a pointer to a struct) with miffy's
// rules: unknown keys are errors (ErrorUnused), keys match exactly (not
// case-insensitively), text converts to numbers and booleans
// (WeaklyTypedInput), durations (durationHook) and comma-separated lists
// (StringToSliceHookFunc). Errors name the
// full key, prefixed with prefix ("kafka.").
func decode(raw any, out any, prefix string) []error {
	dc := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			integerHook,
			mapstructure.StringToSliceHookFunc(","),
		),
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		TagName:          "koanf",
		MatchName:        func(mapKey, fieldName string) bool { return mapKey == fieldName },
		Result:           out,
	}
	d, err := mapstructure.NewDecoder(dc)
	if err != nil {
		return []error{err}
	}
	if err := d.Decode(raw); err != nil {
		return decodeErrors(err, prefix)
	}
	return nil
}

// durationHook reads durations: Go duration text ("250ms", "5s", "1m"), or
// a bare 0. It replaces mapstructure's StringToTimeDurationHookFunc, whose
// errors do not show the value, and refuses other bare numbers (which
// mapstructure would read as nanoseconds).
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		s := strings.TrimSpace(data.(string))
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (use a unit: \"250ms\", \"5s\", \"1m\")", s)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v is not a duration (use a unit: \"%vs\")", data, data)
	}
	return data, nil
}

// integerHook refuses what the weakly typed decoding would turn into an
// integer by losing part of it: a fractional number (1.5 would become 1),
// a number out of the integer's range, a boolean (true would become 1).
func integerHook(from, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	default:
		return data, nil
	}
	if to == reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Float32, reflect.Float64:
		f := reflect.ValueOf(data).Float()
		switch {
		case f != math.Trunc(f) || math.IsNaN(f):
			return nil, fmt.Errorf("%v is not a whole number", data)
		case f < math.MinInt64 || f >= math.MaxInt64 || reflect.Zero(to).OverflowInt(int64(f)):
			return nil, fmt.Errorf("%v is out of range", data)
		}
		return int64(f), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := reflect.ValueOf(data).Int(); reflect.Zero(to).OverflowInt(n) {
			return nil, fmt.Errorf("%d is out of range", n)
		}
	case reflect.Bool:
		return nil, fmt.Errorf("%v is not a valid integer", data)
	}
	return data, nil
}

const invalidKeys = "has invalid keys: "

// decodeErrors rewrites mapstructure's errors so that each names its full
// key: `unknown key "shadow.timout"`, `routes[1]: unknown key "pathh"` reads
// as `unknown key "routes[1].pathh"`, `shadow.timeout: invalid duration...`.
func decodeErrors(err error, prefix string) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, decodeErrors(e, prefix)...)
		}
		return out
	}
	de, ok := err.(*mapstructure.DecodeError)
	if !ok {
		if inner := errors.Unwrap(err); inner != nil {
			return decodeErrors(inner, prefix) // Decode wraps several errors in one
		}
		return []error{err}
	}
	inner := de.Unwrap()
	if _, ok := inner.(interface{ Unwrap() []error }); ok {
		return decodeErrors(inner, prefix)
	}
	name := prefix + de.Name()
	if rest, ok := strings.CutPrefix(inner.Error(), invalidKeys); ok {
		var out []error
		for key := range strings.SplitSeq(rest, ", ") {
			out = append(out, unknownKey(strings.TrimSuffix(name, "."), key))
		}
		return out
	}
	var pe *mapstructure.ParseError
	if errors.As(inner, &pe) {
		return []error{fmt.Errorf("%s: %s is not a valid %s", name, quoteValue(pe.Value), typeWord(pe.Expected.Type()))}
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(inner, &ue) {
		return []error{fmt.Errorf("%s: %s is not a valid %s", name, quoteValue(ue.Value), typeWord(ue.Expected.Type()))}
	}
	return []error{fmt.Errorf("%s: %v", strings.TrimSuffix(name, "."), inner)}
}

// joinKey appends a key to a path, quoting it when it is not a bare TOML key.
func joinKey(path, key string) string {
	key = tomlKey(key)
	if path == "" || strings.HasSuffix(path, ".") {
		return path + key
	}
	return path + "." + key
}

// quoteValue shows a value in an error message.
func quoteValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	}
	return fmt.Sprint(v)
}

// typeWord names a Go type the way a config file writer thinks of it.
func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64:
		if t == reflect.TypeFor[time.Duration]() {
			return "duration"
		}
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Slice:
		return "array"
	case reflect.Struct, reflect.Map:
		return "table"
	}
	return t.String()
}

// fold resolves the miffy 1.0 spellings into the current ones:
// management_port into [management] port, log_json into logging, and the
// [kafka] brokers list into "bootstrap.servers". When the user set both
// spellings, the one from the later layer wins (environment over file); both
// in the same layer with different values is an error naming both.
func (c *Config) fold(ls layers) error {
	var errs []error

	mp, p := ls.top("management_port"), ls.top("management", "port")
	switch {
	case mp == layerDefaults || mp < p:
	case mp > p:
		c.Management.Port = c.ManagementPort
	case c.ManagementPort != c.Management.Port:
		errs = append(errs, fmt.Errorf("management_port (%d) and management.port (%d) are both set and differ; set only management.port",
			c.ManagementPort, c.Management.Port))
	}
	c.ManagementPort = c.Management.Port

	if lj, lg := ls.top("log_json"), ls.top("logging"); lj > 0 && c.LogJSON {
		switch {
		case lj < lg:
		case lj > lg:
			c.Logging = "json"
		case c.Logging != "json":
			errs = append(errs, fmt.Errorf("log_json (true) and logging (%q) are both set and differ; set only logging", c.Logging))
		}
	}
	c.LogJSON = c.Logging == "json"

	if err := c.Kafka.foldBrokers(ls); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// top returns the last layer that sets the key path, or layerDefaults.
func (ls layers) top(path ...string) int {
	for i := len(ls) - 1; i > layerDefaults; i-- {
		if lookup(ls[i], path) {
			return i
		}
	}
	return layerDefaults
}

// lookup reports whether the nested map m has the key path.
func lookup(m map[string]any, path []string) bool {
	for i, p := range path {
		v, ok := m[p]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		if m, ok = v.(map[string]any); !ok {
			return false
		}
	}
	return false
}

// fillIn sets what a route leaves out from the top-level values, and trims
// URLs and methods.
func (c *Config) fillIn() {
	c.Reference = strings.TrimSpace(c.Reference)
	c.Candidate = strings.TrimSpace(c.Candidate)
	c.Secondary = strings.TrimSpace(c.Secondary)
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Name == "" {
			r.Name = r.Path
		}
		if r.Mode = strings.TrimSpace(r.Mode); r.Mode == "" {
			r.Mode = ModeShadow
		}
		r.DecisionURL = strings.TrimSpace(r.DecisionURL)
		r.Reference = orDefault(strings.TrimSpace(r.Reference), c.Reference)
		r.Candidate = orDefault(strings.TrimSpace(r.Candidate), c.Candidate)
		r.Secondary = orDefault(strings.TrimSpace(r.Secondary), c.Secondary)
		for j, m := range r.Methods {
			r.Methods[j] = strings.ToUpper(strings.TrimSpace(m))
		}
	}
}

// Resolve gives every route the values it leaves out: [shadow]
// allow_side_effects and sample, [publish] mode, [noise] publish_noise
// and, on canary routes, the [canary] defaults of the keys left at zero
// (a decision cache only where a sticky key keys it). Afterwards a route
// holds every value that applies to it, so nothing downstream picks a
// default. Load calls it after Validate; call it again after adding routes
// (it changes nothing twice).
func (c *Config) Resolve() {
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.AllowSideEffects == nil {
			r.AllowSideEffects = ptr(c.Shadow.AllowSideEffects)
		}
		if r.Sample == nil {
			r.Sample = ptr(c.Shadow.Sample)
		}
		r.Publish = orDefault(r.Publish, c.Publish.Mode)
		if r.PublishNoise == nil {
			r.PublishNoise = ptr(c.Noise.PublishNoise)
		}
		if r.Rollout != nil {
			r.Rollout = c.resolvedRollout(*r.Rollout)
		}
		if r.Mode != ModeCanary {
			continue
		}
		d := c.Canary
		r.OverrideHeader = orDefault(r.OverrideHeader, d.OverrideHeader)
		r.DecisionTimeout = orDefault(r.DecisionTimeout, d.DecisionTimeout)
		if r.StickyKey != "" {
			r.DecisionCacheTTL = orDefault(r.DecisionCacheTTL, d.DecisionCacheTTL)
		}
		r.Window = orDefault(r.Window, d.Window)
		r.Cooldown = orDefault(r.Cooldown, d.Cooldown)
		r.Probes = orDefault(r.Probes, d.Probes)
	}
}

func ptr[T any](v T) *T { return &v }

// orDefault is v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
