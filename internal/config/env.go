package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/env/v2"
)

// delim separates the parts of a key path inside koanf. It cannot occur in
// an environment variable name and is not written in TOML keys, so the
// dotted [kafka] property names ("bootstrap.servers") are never split.
const delim = "\x1f"

// excludedEnv are MIFFY_ variables that are not configuration keys; they are
// left out of the MIFFY_ layer (MIFFY_CONFIG names the file, MIFFY_ADMIN_TOKEN
// is read by the management server). Every other MIFFY_ variable must name a
// key.
var excludedEnv = []string{"MIFFY_CONFIG", "MIFFY_ADMIN_TOKEN"}

// kafkaProperties are the librdkafka-style [kafka] properties miffy
// supports, as listed in config.default.toml. KAFKA_ variables are matched
// against them; the publish package checks the names in the file.
var kafkaProperties = []string{
	"bootstrap.servers",
	"client.id",
	"acks",
	"enable.idempotence",
	"compression.type",
	"linger.ms",
	"batch.size",
	"message.max.bytes",
	"retry.backoff.ms",
	"request.timeout.ms",
	"security.protocol",
	"sasl.mechanism",
	"sasl.username",
	"sasl.password",
	"ssl.ca.location",
	"ssl.certificate.location",
	"ssl.key.location",
	"ssl.key.password",
	"ssl.endpoint.identification.algorithm",
}

// kafkaAliases maps librdkafka's alternative names of supported properties
// to the names above, so that miffy 1.0 files (which passed every property
// to librdkafka, e.g. "sasl.mechanisms") keep working. Load renames them.
var kafkaAliases = map[string]string{
	"sasl.mechanisms":        "sasl.mechanism",
	"metadata.broker.list":   "bootstrap.servers",
	"compression.codec":      "compression.type",
	"queue.buffering.max.ms": "linger.ms",
	"request.required.acks":  "acks",
}

// keyTable lists the keys of the config that environment variables may set,
// with the Go type each decodes into.
type keyTable struct {
	top      map[string]reflect.Type            // top-level keys: port, routes, ...
	sections map[string]map[string]reflect.Type // [proxy] host, [kafka] topic, ...
}

// newKeyTable derives the key table from the koanf tags of Config.
func newKeyTable() keyTable {
	kt := keyTable{top: map[string]reflect.Type{}, sections: map[string]map[string]reflect.Type{}}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			kt.sections[name] = structKeys(f.Type)
			continue
		}
		kt.top[name] = f.Type
	}
	kt.sections["kafka"] = structKeys(reflect.TypeFor[Kafka]())
	return kt
}

// structKeys returns the tagged keys of a section struct.
func structKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && strings.Contains(f.Tag.Get("koanf"), ",squash") {
			maps.Copy(keys, structKeys(f.Type))
			continue
		}
		if name := tagName(f); name != "" {
			keys[name] = f.Type
		}
	}
	return keys
}

// tagName is the key of a struct field, or "" for a field that has none.
func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// envKey maps the rest of a MIFFY_ variable name (lower-cased, prefix
// stripped) to a key path. "__" separates a section from its key; a single
// "_" stays part of the key. For miffy 1.0 compatibility, where every "_"
// separated sections, a name without "__" that is not a top-level key is
// also tried as section_key (MIFFY_KAFKA_TOPIC -> [kafka] topic).
func (kt keyTable) envKey(name string) (path []string, typ reflect.Type, ok bool) {
	section, key, nested := strings.Cut(name, "__")
	if !nested {
		if t, ok := kt.top[name]; ok {
			return []string{name}, t, true
		}
		section, key, nested = strings.Cut(name, "_")
		if !nested {
			return nil, nil, false
		}
	}
	keys, ok := kt.sections[section]
	if !ok {
		return nil, nil, false
	}
	if table, sub, ok := strings.Cut(key, "__"); ok {
		// A section's table: MIFFY_UPSTREAM__REFERENCE__TLS_CA_FILE.
		if t, ok := keys[table]; ok && t.Kind() == reflect.Struct && !strings.Contains(sub, "__") {
			if t, ok := structKeys(t)[sub]; ok {
				return []string{section, table, sub}, t, true
			}
		}
		return nil, nil, false
	}
	if t, ok := keys[key]; ok && t.Kind() != reflect.Struct {
		return []string{section, key}, t, true
	}
	if section == "kafka" {
		if prop, ok := kafkaProperty(key); ok {
			return []string{section, prop}, reflect.TypeFor[string](), true
		}
	}
	return nil, nil, false
}

// kafkaProperty maps an environment spelling of a property ("sasl_password")
// to its supported name ("sasl.password"), resolving aliases.
func kafkaProperty(name string) (string, bool) {
	prop := strings.ReplaceAll(name, "_", ".")
	if alias, ok := kafkaAliases[prop]; ok {
		prop = alias
	}
	return prop, slices.Contains(kafkaProperties, prop)
}

// sources maps a key as errors name it ("shadow.timeout") to the variable
// that set it, so that Load can name the variable in the key's errors.
type sources map[string]string

// set records that variable set the key path. A [kafka] key is also
// recorded the way the Kafka client's errors name a property, always
// quoted: kafka."acks" as well as kafka.acks.
func (src sources) set(path []string, variable string) {
	src[joinKey(strings.Join(path[:len(path)-1], "."), path[len(path)-1])] = variable
	if len(path) == 2 && path[0] == "kafka" {
		src[fmt.Sprintf("kafka.%q", path[1])] = variable
	}
}

// NameVariables prefixes each error in err (one, or several joined) that is
// about a key set by a MIFFY_ or KAFKA_ variable of environ with the
// variable's name, as Load does for its own errors. It is for checks made
// after Load, such as the Kafka client's properties:
// `KAFKA_ACKS: kafka."acks": want all, 1 or 0, got "x"`. Other errors are
// returned as they are.
func NameVariables(environ []string, err error) error {
	if err == nil {
		return nil
	}
	src := sources{}
	miffyEnv(environ, src)
	kafkaEnv(environ, src)
	errs := src.attribute(unjoin(err))
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// miffyEnv reads the MIFFY_ variables into a nested map (the third layer).
// A variable that names no key is an error naming the variable.
func miffyEnv(environ []string, src sources) (map[string]any, []error) {
	kt := newKeyTable()
	var errs []error
	p := env.Provider(delim, env.Opt{
		Prefix:      "MIFFY_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(k, v string) (string, any) {
			if slices.Contains(excludedEnv, k) {
				return "", nil
			}
			name := strings.ToLower(strings.TrimPrefix(k, "MIFFY_"))
			path, typ, ok := kt.envKey(name)
			if !ok {
				parent, key, nested := strings.Cut(name, "__")
				if !nested {
					parent, key = "", name
				}
				errs = append(errs, fmt.Errorf("%s: %w", k, unknownKey(parent, strings.ReplaceAll(key, "__", "."))))
				return "", nil
			}
			val, err := envValue(v, typ)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				return "", nil
			}
			src.set(path, k)
			return strings.Join(path, delim), val
		},
	})
	m, err := p.Read()
	if err != nil {
		errs = append(errs, fmt.Errorf("reading MIFFY_ environment: %w", err))
	}
	return m, errs
}

// envValue converts a variable's text for a key of type t: lists are comma
// separated (items trimmed, empty items dropped), routes are a TOML array of
// inline tables, anything else stays text for the decoder.
func envValue(v string, t reflect.Type) (any, error) {
	switch {
	case t == reflect.TypeFor[[]string]():
		items := []any{}
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	case t == reflect.TypeFor[[]Route]():
		m, err := parseTOML([]byte("routes = "+v), "")
		if err != nil {
			return nil, fmt.Errorf("parsing routes (a TOML array of inline tables): %w", err)
		}
		return m["routes"], nil
	}
	return v, nil
}

// kafkaEnv reads the KAFKA_ variables (the last layer, [kafka] only):
// KAFKA_ + a miffy [kafka] key or a librdkafka property, upper case, with
// "_" for ".". A librdkafka property miffy does not support is read too, so
// that it fails validation as it would in the file. Other KAFKA_ variables
// (KAFKA_HEAP_OPTS, KAFKA_ADVERTISED_LISTENERS, ...) belong to other tools
// and are ignored.
func kafkaEnv(environ []string, src sources) map[string]any {
	keys := structKeys(reflect.TypeFor[Kafka]())
	p := env.Provider("", env.Opt{
		Prefix:      "KAFKA_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(k, v string) (string, any) {
			name := strings.ToLower(strings.TrimPrefix(k, "KAFKA_"))
			if t, ok := keys[name]; ok {
				val, err := envValue(v, t)
				if err != nil { // cannot happen: no Kafka key is a route list
					return "", nil
				}
				src.set([]string{"kafka", name}, k)
				return name, val
			}
			if prop, ok := kafkaProperty(name); ok {
				src.set([]string{"kafka", prop}, k)
				return prop, v
			}
			if prop := strings.ReplaceAll(name, "_", "."); slices.Contains(librdkafkaProperties, prop) {
				src.set([]string{"kafka", prop}, k)
				return prop, v
			}
			return "", nil
		},
	})
	m, _ := p.Read() // Read fails only for a missing environment function
	return m
}

// attribute prefixes each error about a key set by a variable with the
// variable's name: "MIFFY_SHADOW__TIMEOUT: shadow.timeout: ...".
func (src sources) attribute(errs []error) []error {
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = err
		msg := err.Error()
		for key, name := range src {
			if len(msg) > len(key) && strings.HasPrefix(msg, key) && strings.ContainsRune(":.[", rune(msg[len(key)])) {
				out[i] = fmt.Errorf("%s: %w", name, err)
				break
			}
		}
	}
	return out
}
