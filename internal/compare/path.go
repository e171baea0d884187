package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// stepKind is the kind of one parsed path step.
type stepKind uint8

const (
	stepKey   stepKind = iota // an object member, by name
	stepIndex                 // an array element, by index
	stepAny                   // a wildcard: any member or element
)

// pathStep is one step of a parsed rule path.
type pathStep struct {
	kind  stepKind
	key   string
	index int
}

// matches reports whether the rule step s matches the concrete step c.
func (s pathStep) matches(c step) bool {
	switch s.kind {
	case stepAny:
		return true
	case stepKey:
		return !c.isIndex && c.key == s.key
	default:
		return c.isIndex && c.index == s.index
	}
}

// errPath is wrapped by every path syntax error.
var errPath = errors.New("invalid path")

// parsePath parses a rule path (see "Path syntax").
func parsePath(p string) ([]pathStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("%w %q: must start with $", errPath, p)
	}
	var steps []pathStep
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			if i < len(p) && p[i] == '*' {
				steps = append(steps, pathStep{kind: stepAny})
				i++
				continue
			}
			j := i
			for j < len(p) && !isNameStop(p[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("%w %q: empty member name at offset %d", errPath, p, i)
			}
			steps = append(steps, pathStep{kind: stepKey, key: p[i:j]})
			i = j
		case '[':
			st, n, err := parseBracket(p[i:])
			if err != nil {
				return nil, fmt.Errorf("%w %q: at offset %d: %w", errPath, p, i, err)
			}
			steps = append(steps, st)
			i += n
		default:
			return nil, fmt.Errorf("%w %q: unexpected %q at offset %d", errPath, p, p[i], i)
		}
	}
	return steps, nil
}

// isNameStop reports whether b ends an unquoted member name.
func isNameStop(b byte) bool {
	switch b {
	case '.', '[', ']', '"', '\'', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// parseBracket parses "[...]" at the start of s and returns the step and the
// number of bytes used.
func parseBracket(s string) (pathStep, int, error) {
	end := strings.IndexByte(s, ']')
	if len(s) > 1 && s[1] == '"' {
		// A JSON string, which may itself contain ']'.
		dec := json.NewDecoder(strings.NewReader(s[1:]))
		var key string
		if err := dec.Decode(&key); err != nil {
			return pathStep{}, 0, fmt.Errorf("parsing quoted name: %w", err)
		}
		n := 1 + int(dec.InputOffset())
		if n >= len(s) || s[n] != ']' {
			return pathStep{}, 0, errors.New("missing ] after quoted name")
		}
		return pathStep{kind: stepKey, key: key}, n + 1, nil
	}
	if end < 0 {
		return pathStep{}, 0, errors.New("missing ]")
	}
	inner := s[1:end]
	if inner == "*" {
		return pathStep{kind: stepAny}, end + 1, nil
	}
	if inner == "" || strings.TrimLeft(inner, "0123456789") != "" {
		return pathStep{}, 0, fmt.Errorf("index %q is not *, a non-negative integer or a quoted name", inner)
	}
	idx, err := strconv.Atoi(inner)
	if err != nil {
		return pathStep{}, 0, fmt.Errorf("index %q: %w", inner, err)
	}
	return pathStep{kind: stepIndex, index: idx}, end + 1, nil
}

// step is one concrete step of the path to a value being compared.
type step struct {
	key     string
	index   int
	isIndex bool
}

// appendPath renders steps as a path ("$.items[2].price") onto b.
func appendPath(b []byte, steps []step) []byte {
	b = append(b, '$')
	for _, s := range steps {
		b = appendStep(b, s)
	}
	return b
}

// appendStep renders one step onto b.
func appendStep(b []byte, s step) []byte {
	if s.isIndex {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(s.index), 10)
		return append(b, ']')
	}
	if isIdent(s.key) {
		b = append(b, '.')
		return append(b, s.key...)
	}
	b = append(b, '[')
	b = appendJSONString(b, s.key)
	return append(b, ']')
}

// isIdent reports whether a member name can be rendered after a dot.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string literal, replacing invalid
// UTF-8 with U+FFFD like encoding/json.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// normalizePath replaces every array index in a rendered diff path with
// [*], so that "$.items[3].ts" and "$.items[7].ts" count together. Quoted
// member names are left alone, and paths that are not JSON paths ("status",
// "header:Date", "body:line:4") are returned unchanged.
func normalizePath(p string) string {
	if !strings.HasPrefix(p, "$") || strings.IndexByte(p, '[') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		c := p[i]
		if c != '[' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(p) && p[i+1] == '"' {
			// Copy a quoted name through its closing quote.
			j := i + 2
			for j < len(p) && p[j] != '"' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(p))
			b.WriteString(p[i:j])
			i = j
			continue
		}
		j := i + 1
		for j < len(p) && '0' <= p[j] && p[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(p) && p[j] == ']' {
			b.WriteString("[*]")
			i = j + 1
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}
