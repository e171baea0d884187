package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

// mask replaces secret values in Masked.
const mask = "********"

// secretWords mark a key whose value is a secret.
var secretWords = []string{"password", "secret", "token"}

// fileWords, as the last word of a key, mark a value that names a file:
// a path is no secret, whatever the rest of the key says
// ("admin_token_file"), and check-config shows it.
var fileWords = []string{"file", "location", "path"}

// Masked returns the effective config as TOML, in the order of
// config.default.toml, with secrets masked: values of keys and [kafka]
// properties whose name contains password, secret or token
// ("sasl.password", "ssl.key.password") unless they name a file
// ("admin_token_file": the path is shown, the token is not in the config),
// and passwords inside URLs. The
// legacy spellings (management_port, log_json, brokers) are shown as what
// they were folded into. Loading the text again gives the same config,
// secrets aside.
func (c *Config) Masked() string {
	var w tomlWriter
	w.line("# miffy: effective configuration (secrets masked)")

	cv := reflect.ValueOf(c).Elem()
	ct := cv.Type()
	var sections []int
	for i := range ct.NumField() {
		f := ct.Field(i)
		name := tagName(f)
		switch {
		case name == "" || name == "management_port" || name == "log_json" || name == "routes":
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]():
			sections = append(sections, i)
		default:
			w.keyValue(name, cv.Field(i), false)
		}
	}
	if len(c.Routes) == 0 {
		w.line("routes = []")
	}
	for _, i := range sections {
		name := tagName(ct.Field(i))
		w.line("")
		w.line("[" + name + "]")
		w.fields(cv.Field(i), false)
		w.tables(name, cv.Field(i))
		if name == "publish" {
			// [kafka] is not tagged for the decoder; it follows [publish]
			// as in config.default.toml.
			w.kafka(c.Kafka)
		}
	}
	for _, r := range c.Routes {
		w.line("")
		w.line("[[routes]]")
		w.fields(reflect.ValueOf(r), true)
	}
	return w.b.String()
}

// tomlWriter writes TOML text.
type tomlWriter struct{ b strings.Builder }

func (w *tomlWriter) line(s string) {
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

// fields writes the tagged fields of a struct (squashed structs inline).
// With omitZero, unset values (nil, "", 0, false) are left out.
func (w *tomlWriter) fields(v reflect.Value, omitZero bool) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && strings.Contains(f.Tag.Get("koanf"), ",squash") {
			w.fields(v.Field(i), omitZero)
			continue
		}
		name := tagName(f)
		if name == "" || f.Type.Kind() == reflect.Struct {
			continue // a table: see tables
		}
		w.keyValue(name, v.Field(i), omitZero)
	}
}

// tables writes a section's tables ([upstream.reference]), with the keys
// they set.
func (w *tomlWriter) tables(section string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if name := tagName(f); name != "" && f.Type.Kind() == reflect.Struct {
			w.line("")
			w.line("[" + section + "." + name + "]")
			w.fields(v.Field(i), true)
		}
	}
}

func (w *tomlWriter) keyValue(key string, v reflect.Value, omitZero bool) {
	if omitZero && v.IsZero() {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if (v.Kind() == reflect.Slice || v.Kind() == reflect.Interface) && v.IsNil() {
		return
	}
	w.line(tomlKey(key) + " = " + tomlValue(key, v))
}

// kafka writes the [kafka] section: miffy's keys, then the properties.
func (w *tomlWriter) kafka(k Kafka) {
	w.line("")
	w.line("[kafka]")
	w.fields(reflect.ValueOf(k), false)
	for _, name := range slices.Sorted(maps.Keys(k.Properties)) {
		w.line(tomlKey(name) + " = " + tomlString(maskValue(name, k.Properties[name])))
	}
}

// tomlValue renders a value of one of the config's field types.
func tomlValue(key string, v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return tomlString(formatDuration(d))
	}
	switch v.Kind() {
	case reflect.String:
		return tomlString(maskValue(key, v.String()))
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float32, reflect.Float64:
		return tomlFloat(v.Float())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = tomlValue(key, v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return tomlString(fmt.Sprint(v.Interface()))
}

// maskValue hides the value of a secret key, and a password inside a URL.
func maskValue(key, s string) string {
	if s == "" {
		return s
	}
	lower := strings.ToLower(key)
	if !namesFile(lower) {
		for _, word := range secretWords {
			if strings.Contains(lower, word) {
				return mask
			}
		}
	}
	return upstream.RedactURL(s)
}

// namesFile reports whether a (lower-case) key's last word, after its last
// "_" or ".", is one of fileWords.
func namesFile(key string) bool {
	last := key[strings.LastIndexAny(key, "_.")+1:]
	return slices.Contains(fileWords, last)
}

// tomlKey quotes a key unless it is a bare TOML key.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return tomlString(k)
		}
	}
	return k
}

// tomlString renders a TOML basic string.
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlFloat renders a TOML float (always with a '.' or an exponent).
func tomlFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// formatDuration is time.Duration's String without the zero tails:
// "1m" rather than "1m0s", "1h" rather than "1h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
