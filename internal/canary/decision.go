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
// upstreams see it. r's body is read up to the cap and put back, whole, for
// the real upstream.
func (d *decider) decide(r *http.Request, fwdPath string) (Side, error) {
	body, cut, err := bufferBody(r, d.maxBody)
	if err != nil {
		return Reference, fmt.Errorf("reading the request body: %w", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.timeout)
	defer cancel()
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

// bufferBody reads r's body up to limit bytes and puts it back for the
// next reader: whole (and replayable through GetBody) when it fits, else
// what was read followed by the rest. cut reports a body over the limit.
func bufferBody(r *http.Request, limit int64) (body []byte, cut bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false, nil
	}
	if r.GetBody != nil { // already buffered
		rc, err := r.GetBody()
		if err == nil {
			defer rc.Close()
			buf, err := io.ReadAll(io.LimitReader(rc, limit+1))
			if err == nil && int64(len(buf)) <= limit {
				return buf, false, nil
			}
			if err == nil {
				return buf[:limit], true, nil
			}
		}
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		rest := r.Body
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rest), rest}
		if err != nil {
			return nil, false, err
		}
		return buf[:limit], true, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	return buf, false, nil
}

// BufferBody reads r's body into memory when it is at most limit bytes and
// sets r.GetBody so that it can be sent again (for a retry); a larger body
// is left to stream (ok is false). An error is the client's: its body could
// not be read.
func BufferBody(r *http.Request, limit int64) (ok bool, err error) {
	_, cut, err := bufferBody(r, limit)
	return err == nil && !cut, err
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
