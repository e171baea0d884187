package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/miffy-proxy/miffy/internal/httpsyntax"
)

// RoundTripper sends a Request through an http.RoundTripper (NewTransport),
// so that the code that sends Requests need not know which protocol a
// side speaks. It is safe for concurrent use.
type RoundTripper struct{ http.RoundTripper }

// Do sends req as the Client would: the same header (less hop-by-hop
// fields, Fields replacing Header's; "TE: trailers" is kept), the same
// Host, the body with its length, req.HeaderTimeout bounding the wait for
// the head. The caller must close the response's body.
func (t RoundTripper) Do(ctx context.Context, req *Request) (*http.Response, error) {
	hr, err := req.httpRequest(ctx)
	if err != nil {
		return nil, err
	}
	if req.HeaderTimeout > 0 {
		hctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(req.HeaderTimeout, func() { cancel(errHeaderTimeout) })
		resp, err := t.RoundTrip(hr.WithContext(hctx))
		switch {
		case !timer.Stop() && err == nil:
			// The timer fired as the head came: the body is cut off.
			resp.Body.Close()
			cancel(nil)
			return nil, errHeaderTimeout
		case err != nil:
			if context.Cause(hctx) == errHeaderTimeout {
				err = fmt.Errorf("%w (%v)", errHeaderTimeout, err)
			}
			cancel(nil)
			return nil, err
		}
		resp.Body = cancelBody{resp.Body, func() { cancel(nil) }}
		return t.checked(resp)
	}
	resp, err := t.RoundTrip(hr)
	if err != nil {
		return nil, err
	}
	return t.checked(resp)
}

// errHeaderTimeout is a Request's HeaderTimeout passed: a timeout to
// net.Error's eyes, as on the Client's connections.
var errHeaderTimeout error = headerTimeoutError{}

type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "timeout awaiting response headers" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return true }

// checked refuses what the Client refuses too: a 101 (Do does not
// upgrade), and what CheckStatus refuses.
func (RoundTripper) checked(resp *http.Response) (*http.Response, error) {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return nil, ErrUpgrade
	}
	if err := CheckStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckStatus refuses, closing its body, a response whose status is
// outside 100..599, which net/http's Transport takes (any three digits)
// and net/http's server cannot pass on (a status below 100 panics).
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		resp.Body.Close()
		return malformed("status %d outside 100..599", resp.StatusCode)
	}
	return nil
}

// cancelBody calls done when the body is closed.
type cancelBody struct {
	io.ReadCloser
	done func()
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// httpRequest builds the net/http request that carries req.
func (req *Request) httpRequest(ctx context.Context) (*http.Request, error) {
	target := req.Target
	if target == "" {
		target = "/"
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("parsing the request target: %w", err)
	}
	u.Scheme, u.Host = req.Scheme, req.Addr
	h := make(http.Header, len(req.Header)+len(req.Fields))
	for name, values := range req.Header {
		if skipHeader(name) || replaced(name, req.Fields) {
			continue
		}
		h[name] = values
	}
	for _, f := range req.Fields {
		h.Add(f.Name, f.Value)
	}
	for _, v := range req.Header["Te"] {
		if httpsyntax.HasToken(v, "trailers") {
			// The one TE an HTTP/2 request may carry; gRPC needs it.
			h.Set("Te", "trailers")
		}
	}
	hr := &http.Request{
		Method:     req.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       req.Host,
	}
	if req.Stream != nil {
		hr.Body, hr.ContentLength = req.Stream, req.StreamLength
	} else if len(req.Body) > 0 || bodyExpected(req.Method) {
		body := req.Body
		hr.ContentLength = int64(len(body))
		hr.Body = http.NoBody
		hr.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		if len(body) > 0 {
			hr.Body = io.NopCloser(bytes.NewReader(body))
			hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	return hr.WithContext(ctx), nil
}
