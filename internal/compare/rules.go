package compare

// Rules say what counts when two responses are compared. They come from the
// [compare] section of the config (global) and from each route (which adds to
// or overrides the global rules, see Merge). The zero value compares status,
// the Content-Type header and the whole body.
type Rules struct {
	// Ignore lists JSON paths that are skipped, with wildcards:
	// "$.meta.generated_at", "$.items[*].id". If empty, nothing is skipped.
	Ignore []string `koanf:"ignore"`
	// Unordered lists JSON paths of arrays compared as multisets ("$.items"),
	// or sorted by a key field before comparing ("$.items by id").
	Unordered []string `koanf:"unordered"`
	// CompareHeaders names the response headers that count (case-insensitive).
	// If nil, only Content-Type counts. An empty non-nil list means none.
	CompareHeaders []string `koanf:"compare_headers"`
	// FloatTolerance is the largest absolute difference between two JSON
	// numbers that still counts as equal. If zero, numbers must be equal by value.
	FloatTolerance float64 `koanf:"float_tolerance"`
	// Canonicalize is a jq filter applied to both JSON bodies before comparing.
	Canonicalize string `koanf:"canonicalize"`
	// CanonicalizeReference and CanonicalizeCandidate are jq filters for one
	// side only; when set they replace Canonicalize for that side.
	CanonicalizeReference string `koanf:"canonicalize_reference"`
	CanonicalizeCandidate string `koanf:"canonicalize_candidate"`
}

// Validate checks the rules (paths parse, jq filters compile). An error names
// the key it is about, e.g. `canonicalize: ...` or `ignore[1]: ...`, so that
// the caller can prefix the section ("routes[2].").
func (r Rules) Validate() error {
	return nil // TODO(compare): filled in by the comparison engine
}
