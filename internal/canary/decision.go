package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// ErrUndecided is returned when the decision service answers something
// other than 200 or 204.
var ErrUndecided = errors.New("decision service answered neither 200 nor 204")

// TruncatedHeader is set on a decision request whose body was cut at the
// cap.
const TruncatedHeader = "X-Miffy-Body-Truncated"

// decider asks an external service where a request goes, as Canary
// Router's sidecar does: the request (method, headers, query, body) is sent
// to the decision URL with the request's path appended; 200 means the
// candidate, 204 the reference.
type decider struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	maxBody int64
	cache   *decisionCache // nil without caching
}

// decide asks for a decision on r. fwdPath is the escaped path as the
// upstreams see it; body is r's body as far as the caller read it (see
// Router.BodyLimit): more than maxBody bytes of it are cut there.
func (d *decider) decide(r *http.Request, fwdPath string, body []byte) (Side, error) {
	cut := int64(len(body)) > d.maxBody
	if cut {
		body = body[:d.maxBody]
	}
	ctx := r.Context()
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	u := *d.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + strings.TrimPrefix(unescape(fwdPath), "/")
	u.RawPath = ""
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return Reference, fmt.Errorf("building the decision request: %w", err)
	}
	req.Header = r.Header.Clone()
	httpsyntax.RemoveHopHeaders(req.Header)
	if cut {
		req.Header.Set(TruncatedHeader, "true")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return Reference, fmt.Errorf("asking the decision service: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return Candidate, nil
	case http.StatusNoContent:
		return Reference, nil
	}
	return Reference, fmt.Errorf("%w: %d", ErrUndecided, resp.StatusCode)
}

func unescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

func newDecisionClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxCached bounds the decision cache.
const maxCached = 100_000

// decisionCache keeps decisions per sticky key for a while.
type decisionCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	side    Side
	expires time.Time
}

func (c *decisionCache) get(key string) (Side, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !c.now().Before(e.expires) {
		return Reference, false
	}
	return e.side, true
}

func (c *decisionCache) put(key string, s Side) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCached {
			clear(c.m)
		}
	}
	c.m[key] = cached{side: s, expires: now.Add(c.ttl)}
}
