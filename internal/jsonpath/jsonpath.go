// Package jsonpath is miffy's one grammar of JSON paths: the paths of the
// comparison rules ([compare] ignore and unordered), of redaction
// ([publish] redact_json_paths) and of the differences package compare
// reports, which redaction reads back. A path means the same everywhere.
//
//	path = "$" { "." name | "." "*" | "[" digits "]" | "[" "*" "]" | "[" json-string "]" }
//
// A name is one or more bytes other than . [ ] " ' * and white space. "*"
// is a wildcard, any one member or element, only as a whole step: "$.*x"
// and "$.a*" are errors (a member whose name holds "*" is written quoted:
// `$["*x"]`), so that a path cannot silently mean a literal name where a
// pattern was meant, or the other way round.
package jsonpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of one step.
type Kind uint8

const (
	Key   Kind = iota // an object member, by name
	Index             // an array element, by index
	Any               // a wildcard: any member or element
)

// Step is one step of a path.
type Step struct {
	Kind  Kind
	Key   string // the member's name, for Key
	Index int    // the element's index, for Index
}

// Matches reports whether the pattern step s matches the concrete step c
// (a Key or an Index).
func (s Step) Matches(c Step) bool {
	switch s.Kind {
	case Any:
		return true
	case Key:
		return c.Kind == Key && c.Key == s.Key
	default:
		return c.Kind == Index && c.Index == s.Index
	}
}

// ErrSyntax is wrapped by every error of Parse.
var ErrSyntax = errors.New("invalid path")

// Parse parses a path (see the package comment) into its steps after "$".
// White space around the path is ignored.
func Parse(p string) ([]Step, error) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("%w %q: must start with $", ErrSyntax, p)
	}
	var steps []Step
	for i := 1; i < len(p); {
		var st Step
		var n int
		var err error
		switch p[i] {
		case '.':
			st, n, err = parseDotted(p[i:])
		case '[':
			st, n, err = parseBracket(p[i:])
		default:
			err = fmt.Errorf("unexpected %q", p[i])
		}
		if err != nil {
			return nil, fmt.Errorf("%w %q: at offset %d: %w", ErrSyntax, p, i, err)
		}
		steps = append(steps, st)
		i += n
	}
	return steps, nil
}

// parseDotted parses ".name" or ".*" at the start of s and returns the step
// and its length in bytes.
func parseDotted(s string) (Step, int, error) {
	j := 1
	for j < len(s) && !endsName(s[j]) {
		j++
	}
	switch name := s[1:j]; {
	case name == "*":
		return Step{Kind: Any}, j, nil
	case name == "":
		return Step{}, 0, errors.New("empty member name")
	case strings.IndexByte(name, '*') >= 0:
		return Step{}, 0, fmt.Errorf("%q: * is a wildcard only as a whole step; quote a name holding it: [%s]", name, strconv.Quote(name))
	default:
		return Step{Kind: Key, Key: name}, j, nil
	}
}

// endsName reports whether c ends an unquoted member name. A "*" does not
// end one, so that parseDotted sees (and refuses) a name holding it.
func endsName(c byte) bool {
	switch c {
	case '.', '[', ']', '"', '\'', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// parseBracket parses "[...]" at the start of s and returns the step and
// its length in bytes.
func parseBracket(s string) (Step, int, error) {
	if len(s) > 1 && s[1] == '"' {
		// A JSON string, which may itself hold ']'.
		dec := json.NewDecoder(strings.NewReader(s[1:]))
		var name string
		if err := dec.Decode(&name); err != nil {
			return Step{}, 0, fmt.Errorf("reading quoted name: %w", err)
		}
		end := 1 + int(dec.InputOffset())
		if end >= len(s) || s[end] != ']' {
			return Step{}, 0, errors.New("missing ] after quoted name")
		}
		return Step{Kind: Key, Key: name}, end + 1, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return Step{}, 0, errors.New("missing ]")
	}
	inner := s[1:end]
	if inner == "*" {
		return Step{Kind: Any}, end + 1, nil
	}
	if inner == "" || strings.Trim(inner, "0123456789") != "" {
		return Step{}, 0, fmt.Errorf("index %q is not *, a non-negative integer or a quoted name", inner)
	}
	n, err := strconv.Atoi(inner)
	if err != nil {
		return Step{}, 0, fmt.Errorf("index %q: %w", inner, err)
	}
	return Step{Kind: Index, Index: n}, end + 1, nil
}

// AppendKey renders the step to the member name onto b: ".name" when the
// name is an identifier, else `["name"]` (a JSON string). Parse reads it
// back as that name.
func AppendKey(b []byte, name string) []byte {
	if isIdent(name) {
		b = append(b, '.')
		return append(b, name...)
	}
	b = append(b, '[')
	b = AppendJSONString(b, name)
	return append(b, ']')
}

// AppendIndex renders the step to an array element onto b: "[i]".
func AppendIndex(b []byte, i int) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(i), 10)
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

// AppendJSONString appends s as a JSON string literal, escaped like
// encoding/json (invalid UTF-8 becomes U+FFFD) except that <, > and & are
// left alone: what miffy writes is not embedded in HTML.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = AppendStringContents(b, s, false)
	return append(b, '"')
}

// AppendStringContents appends s escaped for a JSON string, without the
// quotes; lower maps ASCII upper case to lower case (header names).
func AppendStringContents(b []byte, s string, lower bool) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!lower || c < 'A' || c > 'Z') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
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
			default: // upper-case letter, lower-casing
				b = append(b, c+('a'-'A'))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			// Valid JSON, but not valid JavaScript; escaped like encoding/json.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
