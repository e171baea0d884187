package config

import (
	"fmt"
	"reflect"
	"strings"
)

// nearest returns the known name nearest to name (by edit distance,
// ignoring case), or "" when none is near enough to be the one meant.
func nearest(name string, known []string) string {
	best, bestD := "", len(name)/3+2 // a third of the name, plus a typo or two
	for _, k := range known {
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	if best == name {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// knownKeys returns the keys that may follow the key path prefix as errors
// name it: "" for the top level, "shadow" for [shadow], "routes[2]" for a
// route, "kafka" for [kafka] (miffy's keys and the supported properties).
func knownKeys(prefix string) []string {
	prefix = strings.TrimSuffix(prefix, ".")
	ct := reflect.TypeFor[Config]()
	if prefix == "" {
		return typeKeys(ct)
	}
	if strings.HasPrefix(prefix, "routes[") && strings.HasSuffix(prefix, "]") {
		return typeKeys(reflect.TypeFor[Route]())
	}
	if prefix == "kafka" {
		return append(typeKeys(reflect.TypeFor[Kafka]()), kafkaProperties...)
	}
	for i := range ct.NumField() {
		if f := ct.Field(i); tagName(f) == prefix && f.Type.Kind() == reflect.Struct {
			return typeKeys(f.Type)
		}
	}
	return nil
}

// typeKeys lists the keys of a struct type, squashed structs included.
func typeKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if strings.Contains(f.Tag.Get("koanf"), ",squash") && f.Type.Kind() == reflect.Struct {
			keys = append(keys, typeKeys(f.Type)...)
		} else if name := tagName(f); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

// unknownKey is the error for a key path that is not in the config, with
// the nearest known key as a hint: `unknown key "shadow.timout"; did you
// mean "shadow.timeout"?`. parent is the path above the key ("" at the top,
// "shadow", "routes[1]").
func unknownKey(parent, key string) error {
	full := joinKey(parent, key)
	if k := nearest(key, knownKeys(parent)); k != "" {
		return fmt.Errorf("unknown key %q; did you mean %q?", full, joinKey(parent, k))
	}
	return fmt.Errorf("unknown key %q", full)
}
