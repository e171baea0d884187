package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
)

// Auto sends requests with Client (which must have Config.OfferHTTP2) over
// HTTP/1.1, and with H2 (NewTransport with ProtoAuto) to the https
// upstreams whose TLS handshake chose HTTP/2: the first request to such an
// upstream learns it (ErrHTTP2, nothing sent) and goes to H2, as do the
// later ones. HTTP/1.1 over TLS thus keeps the Client's strict reading.
// It is safe for concurrent use.
type Auto struct {
	Client *Client
	H2     RoundTripper
	h2     sync.Map // Addr of https upstreams that speak HTTP/2
}

// Do sends req over HTTP/1.1 or HTTP/2, as its upstream speaks.
func (a *Auto) Do(ctx context.Context, req *Request) (*http.Response, error) {
	if req.Scheme == "https" {
		if _, ok := a.h2.Load(req.Addr); ok {
			return a.H2.Do(ctx, req)
		}
	}
	resp, err := a.Client.Do(ctx, req)
	if errors.Is(err, ErrHTTP2) {
		a.h2.Store(req.Addr, true)
		return a.H2.Do(ctx, req)
	}
	return resp, err
}
