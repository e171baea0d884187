package upstream

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseBaseURL parses the base URL of an upstream (reference, candidate,
// secondary, a decision service): absolute http or https with a host,
// optionally a path prefix, no query or fragment. It is miffy's one check
// of such URLs, for the config, the admin API and the control topic alike.
// Its errors show the URL with any password hidden (see RedactURL).
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	var why string
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		why = "is not an absolute http(s) URL"
	case u.RawQuery != "" || u.ForceQuery:
		why = "has a query; a base URL may have a path prefix only"
	case u.Fragment != "" || strings.Contains(s, "#"):
		why = "has a fragment; a base URL may have a path prefix only"
	case u.Port() != "" && !validPort(u.Port()):
		why = "has an invalid port"
	default:
		return u, nil
	}
	return nil, fmt.Errorf("%q %s", RedactURL(s), why)
}

func validPort(p string) bool {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return false
		}
	}
	return n >= 1
}

// passwordMask replaces a password in what RedactURL returns.
const passwordMask = "********"

// RedactURL replaces the password of a URL's userinfo with "********" (a
// user name without a password too, as it is often a token);
// other text is returned as it is. A URL-like text that does not parse
// has everything between "scheme://" and the last "@" of its authority
// hidden.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "://"); i >= 0 {
			rest := s[i+3:]
			end := strings.IndexAny(rest, "/?#")
			if end < 0 {
				end = len(rest)
			}
			if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
				return s[:i+3] + passwordMask + rest[at:]
			}
		}
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), passwordMask)
	} else {
		u.User = url.User(passwordMask) // a user name alone is often a token
	}
	return strings.Replace(u.String(), url.PathEscape(passwordMask), passwordMask, 1)
}
