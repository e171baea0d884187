package compare

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// mediaType returns the lower-cased type/subtype of a Content-Type, without
// parameters.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// IsJSON reports whether a Content-Type is JSON: application/json or any
// type/subtype ending in +json (application/problem+json), with or without
// parameters such as charset, in any case.
func IsJSON(contentType string) bool {
	mt := mediaType(contentType)
	if mt == "application/json" {
		return true
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && typ != "" && strings.HasSuffix(sub, "+json") && !strings.ContainsAny(sub, " /")
}

// isText reports whether a Content-Type is textual but not JSON: text/*,
// XML, JavaScript, YAML, form data and a few others.
func isText(contentType string) bool {
	mt := mediaType(contentType)
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/xml", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/x-www-form-urlencoded",
		"application/yaml", "application/x-yaml", "application/toml",
		"application/graphql", "application/sql", "application/x-ndjson",
		"application/jsonl", "application/csv", "image/svg+xml":
		return true
	}
	return strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+yaml")
}

// textDiff compares two text bodies line by line (lines end with "\n";
// "\r" is part of a line). Equal bodies give nil. Otherwise it reports one
// diff for the region between the longest common run of leading lines and
// the longest common run of trailing lines:
//
//	Path      "body:line:N", N the first differing line (1-based, as numbered in the reference)
//	Kind      Changed; Added when the candidate only inserts lines; Removed when it only drops lines
//	Reference the reference's lines of the region, joined by "\n" and capped
//	Candidate the candidate's lines of the region, likewise
func textDiff(a, b []byte) []Diff {
	if bytes.Equal(a, b) {
		return nil
	}
	// Common leading lines.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	start := bytes.LastIndexByte(a[:p], '\n') + 1
	// Common trailing lines, not overlapping the leading ones.
	s := 0
	for s < len(a)-start && s < len(b)-start && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	if !lineStart(a, len(a)-s) || !lineStart(b, len(b)-s) {
		// Keep only the complete lines of the common tail.
		tail := a[len(a)-s:]
		if k := bytes.IndexByte(tail, '\n'); k >= 0 {
			s -= k + 1
		} else {
			s = 0
		}
	}
	ra, rb := a[start:len(a)-s], b[start:len(b)-s]
	kind := Changed
	switch {
	case len(ra) == 0:
		kind = Added
	case len(rb) == 0:
		kind = Removed
	}
	line := bytes.Count(a[:start], []byte{'\n'}) + 1
	d := Diff{Path: "body:line:" + strconv.Itoa(line), Kind: kind}
	if len(ra) > 0 {
		d.Reference = regionText(ra)
	}
	if len(rb) > 0 {
		d.Candidate = regionText(rb)
	}
	return []Diff{d}
}

// lineStart reports whether offset i of b begins a line (or is its end).
func lineStart(b []byte, i int) bool {
	return i == 0 || i == len(b) || b[i-1] == '\n'
}

// regionText renders the lines of a text region, without its final
// newline, capped in size.
func regionText(r []byte) string {
	r = bytes.TrimSuffix(r, []byte{'\n'})
	if len(r) > maxValueBytes {
		return truncate(string(r[:min(len(r), maxValueBytes+utf8.UTFMax)]), len(r))
	}
	return string(r)
}

// bytesDiff compares two bodies as opaque bytes: nil when equal, else one
// diff at "body" whose values are {"length": n, "sha256": hex} per side.
func bytesDiff(a, b []byte) []Diff {
	if bytes.Equal(a, b) {
		return nil
	}
	return []Diff{{Path: "body", Kind: Changed, Reference: digest(a), Candidate: digest(b)}}
}

// digest summarises a body by its length and SHA-256.
func digest(b []byte) map[string]any {
	sum := sha256.Sum256(b)
	return map[string]any{"length": len(b), "sha256": hex.EncodeToString(sum[:])}
}

// summary describes one side's body for a diff that cannot be more
// precise: the body itself when it is short valid UTF-8, else its digest.
func summary(b []byte) any {
	if len(b) <= maxValueBytes && utf8.Valid(b) {
		return string(b)
	}
	if utf8.Valid(b) {
		return truncate(string(b[:min(len(b), maxValueBytes+utf8.UTFMax)]), len(b))
	}
	return digest(b)
}
