package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

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
	// CanonicalizeTimeout bounds one run of a canonicalize filter on one
	// body; a run that takes longer is stopped and the pair is reported as a
	// difference on "body". If zero, DefaultCanonicalizeTimeout.
	CanonicalizeTimeout time.Duration `koanf:"canonicalize_timeout"`
}

// DefaultCanonicalizeTimeout is CanonicalizeTimeout when unset. It is
// wall-clock time, so it is set far above what a sane filter needs (well
// under a millisecond on a typical body): on a loaded machine a comparison
// can be descheduled for tens of milliseconds, and a tighter bound would turn
// that into a false difference.
const DefaultCanonicalizeTimeout = time.Second

// Validate checks the rules (paths parse, jq filters compile). An error names
// the key it is about, e.g. `canonicalize: ...` or `ignore[1]: ...`, so that
// the caller can prefix the section ("routes[2].").
func (r Rules) Validate() error {
	_, err := compileRules(r)
	return err
}

// Merge returns the rules for a route: r (the global rules) with route's
// added or overriding. Ignore and Unordered are unions (global first,
// duplicates dropped); CompareHeaders of the route replaces the global list
// when it is non-nil; FloatTolerance, CanonicalizeTimeout and each
// Canonicalize* filter of the route replace the global value when non-zero or
// non-empty. Neither r nor route is modified.
func (r Rules) Merge(route Rules) Rules {
	out := r
	out.Ignore = union(r.Ignore, route.Ignore)
	out.Unordered = union(r.Unordered, route.Unordered)
	if route.CompareHeaders != nil {
		out.CompareHeaders = append([]string{}, route.CompareHeaders...)
	} else if r.CompareHeaders != nil {
		out.CompareHeaders = append([]string{}, r.CompareHeaders...)
	}
	if route.FloatTolerance != 0 {
		out.FloatTolerance = route.FloatTolerance
	}
	if route.Canonicalize != "" {
		out.Canonicalize = route.Canonicalize
	}
	if route.CanonicalizeReference != "" {
		out.CanonicalizeReference = route.CanonicalizeReference
	}
	if route.CanonicalizeCandidate != "" {
		out.CanonicalizeCandidate = route.CanonicalizeCandidate
	}
	if route.CanonicalizeTimeout != 0 {
		out.CanonicalizeTimeout = route.CanonicalizeTimeout
	}
	return out
}

// union returns a new slice with the elements of a then b, without
// duplicates; nil when both are empty.
func union(a, b []string) []string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ruleAction says what a compiled path rule does to the values it matches.
type ruleAction uint8

const (
	actIgnore    ruleAction = iota // skip the value
	actUnordered                   // compare an array as a multiset
	actByKey                       // sort arrays of objects by a member, then pair them
)

// pathRule is one compiled entry of Ignore or Unordered.
type pathRule struct {
	steps  []step
	action ruleAction
	key    string // the member for actByKey
}

// compiled is Rules made ready for comparing.
type compiled struct {
	rules     []pathRule
	headers   []string // canonical header names, sorted, without duplicates
	tolerance float64
	canonRef  *jqFilter // nil when the reference is not canonicalized
	canonCand *jqFilter // nil when the candidate is not canonicalized
}

// compileRules checks and compiles r. Errors name the key they are about.
func compileRules(r Rules) (*compiled, error) {
	c := &compiled{tolerance: r.FloatTolerance}
	if math.IsNaN(r.FloatTolerance) || math.IsInf(r.FloatTolerance, 0) || r.FloatTolerance < 0 {
		return nil, fmt.Errorf("float_tolerance: must be a finite number >= 0, got %v", r.FloatTolerance)
	}
	timeout := r.CanonicalizeTimeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("canonicalize_timeout: must be > 0 (or unset for %v), got %v", DefaultCanonicalizeTimeout, timeout)
	case timeout == 0:
		timeout = DefaultCanonicalizeTimeout
	}
	for i, p := range r.Ignore {
		steps, err := parsePath(p)
		if err != nil {
			return nil, fmt.Errorf("ignore[%d]: %w", i, err)
		}
		c.rules = append(c.rules, pathRule{steps: steps, action: actIgnore})
	}
	for i, u := range r.Unordered {
		pr, err := parseUnordered(u)
		if err != nil {
			return nil, fmt.Errorf("unordered[%d]: %w", i, err)
		}
		c.rules = append(c.rules, pr)
	}
	c.headers = headerNames(r.CompareHeaders)
	for i, h := range c.headers {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("compare_headers[%d]: invalid header name %q", i, h)
		}
	}
	refKey, refSrc := sideFilter("canonicalize_reference", r.CanonicalizeReference, r.Canonicalize)
	candKey, candSrc := sideFilter("canonicalize_candidate", r.CanonicalizeCandidate, r.Canonicalize)
	if refSrc != "" {
		f, err := compileJQ(refSrc, timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", refKey, err)
		}
		c.canonRef = f
	}
	switch {
	case candSrc == "":
	case candSrc == refSrc:
		c.canonCand = c.canonRef // one filter: equal bodies stay equal
	default:
		f, err := compileJQ(candSrc, timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", candKey, err)
		}
		c.canonCand = f
	}
	return c, nil
}

// sideFilter picks the filter for one side: own when set, else shared
// (reported under the "canonicalize" key). It returns "" for no filter.
func sideFilter(key, own, shared string) (string, string) {
	if strings.TrimSpace(own) != "" {
		return key, own
	}
	if strings.TrimSpace(shared) != "" {
		return "canonicalize", shared
	}
	return key, ""
}

// parseUnordered parses "$.items" (a multiset) or "$.items by id" (sorted
// by the member id, which may also be a JSON string: `$.items by "the id"`).
func parseUnordered(u string) (pathRule, error) {
	u = strings.TrimSpace(u)
	path, key, keyed := u, "", false
	if i := strings.LastIndex(u, " by "); i >= 0 {
		path, key, keyed = strings.TrimSpace(u[:i]), strings.TrimSpace(u[i+4:]), true
	}
	steps, err := parsePath(path)
	if err != nil {
		return pathRule{}, err
	}
	if !keyed {
		return pathRule{steps: steps, action: actUnordered}, nil
	}
	if strings.HasPrefix(key, `"`) {
		var k string
		if err := json.Unmarshal([]byte(key), &k); err != nil {
			return pathRule{}, fmt.Errorf("parsing key %s in %q: %w", key, u, err)
		}
		key = k
	} else if key == "" || strings.ContainsAny(key, " \t\r\n") {
		return pathRule{}, fmt.Errorf("%w: want \"<path> by <member>\" in %q", errBadKey, u)
	}
	return pathRule{steps: steps, action: actByKey, key: key}, nil
}

// errBadKey is wrapped when an unordered rule's "by" part is malformed.
var errBadKey = errors.New("invalid sort key")
