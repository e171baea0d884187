package shadow

import (
	"strings"
)

// hasDotSegment reports whether an escaped path has a "." or ".." segment,
// counting "%2e" as "." (an unreserved character, RFC 3986 section 6.2.2;
// "%2f" stays data, so "..%2f" is no segment of its own).
func hasDotSegment(p string) bool {
	if !strings.Contains(p, ".") && !strings.Contains(p, "%2") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) == 0 || len(seg) > 6 {
			continue
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "%2e", "."), "%2E", ".")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
