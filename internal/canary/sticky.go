package canary

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// stickyKind says where a request's sticky key comes from.
type stickyKind uint8

const (
	stickyNone stickyKind = iota
	stickyHeader
	stickyCookie
	stickyParam
	stickyClientIP
)

// StickyKey is a parsed sticky_key: "header:X-User", "cookie:session",
// "param:id" or "client_ip".
type StickyKey struct {
	kind stickyKind
	name string
}

// ParseStickyKey parses a sticky_key; "" means none.
func ParseStickyKey(s string) (StickyKey, error) {
	if s == "" {
		return StickyKey{}, nil
	}
	if s == "client_ip" {
		return StickyKey{kind: stickyClientIP}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return StickyKey{}, fmt.Errorf("%q is not header:NAME, cookie:NAME, param:NAME or client_ip", s)
	}
	switch kind {
	case "header":
		return StickyKey{kind: stickyHeader, name: http.CanonicalHeaderKey(name)}, nil
	case "cookie":
		return StickyKey{kind: stickyCookie, name: name}, nil
	case "param":
		return StickyKey{kind: stickyParam, name: name}, nil
	}
	return StickyKey{}, fmt.Errorf("%q is not header:NAME, cookie:NAME, param:NAME or client_ip", s)
}

// Param returns the path parameter a param: key names, or "".
func (s StickyKey) Param() string {
	if s.kind == stickyParam {
		return s.name
	}
	return ""
}

// Params gives a request's path parameters by name.
type Params interface {
	Get(name string) (string, bool)
}

// key returns the request's sticky key, or "" when it has none.
func (s StickyKey) key(r *http.Request, params Params) string {
	switch s.kind {
	case stickyHeader:
		return r.Header.Get(s.name)
	case stickyCookie:
		if c, err := r.Cookie(s.name); err == nil {
			return c.Value
		}
	case stickyParam:
		if params != nil {
			v, _ := params.Get(s.name)
			return v
		}
	case stickyClientIP:
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	return ""
}

// hashKey maps a sticky key to a fixed point in [0,1): 64-bit FNV-1a, whose
// high bits barely move between similar short keys ("user-1", "user-2"),
// mixed by a 64-bit finalizer (as MurmurHash3's), top 53 bits. The same key
// always lands on the same point, whatever the weight, so raising the
// weight only moves keys to the candidate.
func hashKey(key string) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return float64(x>>11) / (1 << 53)
}

// FormatAssignment writes an assignment as the maxwells-daemon protocol and
// the sticky cookie carry it (Go's %v of a float64).
func FormatAssignment(a float64) string { return fmt.Sprintf("%v", a) }

// ParseAssignment reads an assignment; ok is false unless it is a number in
// [0,1).
func ParseAssignment(s string) (a float64, ok bool) {
	a, err := strconv.ParseFloat(s, 64)
	if err != nil || !(a >= 0 && a < 1) {
		return 0, false
	}
	return a, true
}

// drawAssignment draws an assignment at random on the given side of the
// threshold t, so that a cookie set for a weight-counter decision keeps the
// client on the side the counter chose.
func drawAssignment(candidate bool, t float64) float64 {
	var a float64
	if candidate {
		a = rand.Float64() * t
	} else {
		a = t + rand.Float64()*(1-t)
	}
	if a >= 1 { // rounding at the top of the range
		a = 0.9999999999999999
	}
	return a
}
