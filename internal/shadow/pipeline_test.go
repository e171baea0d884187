package shadow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/canary"
)

// TestInboundRequestUntouched: whatever the path (a replayed body, one
// too big to replay, a canary retry on the reference, a correlation id
// made up), the client's request is read, never written to: its body,
// GetBody, ContentLength and header are as they came.
func TestInboundRequestUntouched(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}
	dead, _ := url.Parse("http://127.0.0.1:1") // refused
	tests := []struct {
		name   string
		cfg    Config
		cand   bool // a live candidate (else refused)
		mod    func(*testing.T) func(*Route)
		method string
		body   string
		want   string
	}{
		{"replayed body", Config{}, true, func(*testing.T) func(*Route) { return func(r *Route) { r.AllowSideEffects = true } }, "POST", "payload", "POST payload"},
		{"body over max_body_bytes", Config{MaxBodyBytes: 3}, true, func(*testing.T) func(*Route) { return func(r *Route) { r.AllowSideEffects = true } }, "POST", "payload", "POST payload"},
		{"canary retry", Config{CanaryEvents: func(canary.Event) {}}, false, func(t *testing.T) func(*Route) {
			return canaryRoute(t, canary.Config{Weight: 100, Breaker: canary.BreakerConfig{MaxErrors: 100}})
		}, "PUT", "payload", "PUT payload"},
		{"debug bodies", Config{DebugBodies: true}, true, nil, "GET", "", "GET "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := newUpstream(t, echo)
			cand := newUpstream(t, echo).url()
			if !tt.cand {
				cand = dead
			}
			var mod func(*Route)
			if tt.mod != nil {
				mod = tt.mod(t)
			}
			f := newFixture(t, tt.cfg, ref.url(), cand, mod)
			r := httptest.NewRequest(tt.method, "http://miffy.test/api/1", strings.NewReader(tt.body))
			r.Header.Set("Connection", "x-private")
			r.Header.Set("X-Private", "1")
			body, header, length := r.Body, r.Header.Clone(), r.ContentLength
			rec := httptest.NewRecorder()
			f.proxy.ServeHTTP(rec, r)
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("answer %d %q, want %q", rec.Code, got, tt.want)
			}
			if r.Body != body || r.GetBody != nil || r.ContentLength != length {
				t.Errorf("request written to: Body %v (was %v), GetBody set %v, ContentLength %d (was %d)",
					r.Body, body, r.GetBody != nil, r.ContentLength, length)
			}
			if diff := cmp.Diff(header, r.Header); diff != "" {
				t.Errorf("request header changed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusOf: the one map from an upstream error to the client's status.
func TestStatusOf(t *testing.T) {
	live := httptest.NewRequest("GET", "/", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := live.WithContext(ctx)
	tests := []struct {
		name string
		r    *http.Request
		err  error
		want int
	}{
		{"refused", live, errors.New("connection refused"), http.StatusBadGateway},
		{"timeout", live, fmt.Errorf("awaiting the head: %w", context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"net timeout", live, errHeaderTimeoutForTest{}, http.StatusGatewayTimeout},
		{"client gone", gone, context.Canceled, statusClientGone},
		{"body too large", live, fmt.Errorf("sending: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{"bad status", live, fmt.Errorf("%w: 42", ErrBadStatus), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.r, tt.err); got != tt.want {
				t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

type errHeaderTimeoutForTest struct{}

func (errHeaderTimeoutForTest) Error() string   { return "timeout" }
func (errHeaderTimeoutForTest) Timeout() bool   { return true }
func (errHeaderTimeoutForTest) Temporary() bool { return true }

// TestReqBodyFill: each stage reads to its own limit, once; what is read
// stays, the rest streams after it.
func TestReqBodyFill(t *testing.T) {
	b := reqBody{rc: io.NopCloser(strings.NewReader("0123456789"))}
	if whole, err := b.fill(3); whole || err != nil || string(b.buf) != "0123" {
		t.Fatalf("fill(3) = %v, %v, buf %q; want false, nil, 0123", whole, err, b.buf)
	}
	if whole, _ := b.fill(2); whole || string(b.buf) != "0123" {
		t.Errorf("fill(2) after fill(3) read again: buf %q", b.buf)
	}
	if b.bytes() != nil || !b.has() {
		t.Errorf("a part read: bytes %q, has %v", b.bytes(), b.has())
	}
	if whole, err := b.fill(10); !whole || err != nil || string(b.bytes()) != "0123456789" {
		t.Errorf("fill(10) = %v, %v, bytes %q; want the whole body", whole, err, b.bytes())
	}

	s := reqBody{rc: io.NopCloser(strings.NewReader("0123456789"))}
	s.fill(4)
	if got, _ := io.ReadAll(s.stream()); string(got) != "0123456789" {
		t.Errorf("stream after a part was read = %q, want all of it", got)
	}
	none := reqBody{whole: true}
	if none.has() {
		t.Error("no body: has = true")
	}
}
