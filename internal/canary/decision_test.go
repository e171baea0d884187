package canary

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// sidecar is a decision service: it answers by the last path segment
// ("/ok" 200, "/no" 204, "/boom" 500, "/slow" never) and records what it got.
type sidecar struct {
	*httptest.Server
	mu   sync.Mutex
	got  []seen
	stop chan struct{}
}

type seen struct {
	method, path, query, body, header, truncated string
}

func newSidecar(t *testing.T) *sidecar {
	s := &sidecar{stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("X-User"), r.Header.Get(TruncatedHeader)})
		s.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/ok"):
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(r.URL.Path, "/no"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/slow"):
			select {
			case <-r.Context().Done():
			case <-s.stop:
			}
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(func() { close(s.stop); s.Close() })
	return s
}

func (s *sidecar) calls() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.got...)
}

func TestDecisionURL(t *testing.T) {
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL + "/sidecar/")
	tests := []struct {
		path string
		side Side
		rule Rule
	}{
		{"/api/ok", Candidate, RuleDecisionURL},
		{"/api/no", Reference, RuleDecisionURL},
		{"/api/boom", Reference, RuleFailsafe},
		{"/api/slow", Reference, RuleFailsafe},
	}
	r := newRouter(t, Config{Weight: 100, DecisionURL: base, DecisionTimeout: 200 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			body := "payload for " + tt.path
			req := httptest.NewRequest(http.MethodPost, tt.path+"?a=1&b=2", strings.NewReader(body))
			req.Header.Set("X-User", "u7")
			d := r.Decide(req, nil, tt.path, func() []byte { return []byte(body) })
			if d.Side != tt.side || d.Rule != tt.rule {
				t.Errorf("Decide = %v/%s, want %v/%s", d.Side, d.Rule, tt.side, tt.rule)
			}
			// The request's own body is left unread, for the real upstream.
			if b, _ := io.ReadAll(req.Body); string(b) != body {
				t.Errorf("body after the decision: %q, want %q", b, body)
			}
			calls := sc.calls()
			got := calls[len(calls)-1]
			want := seen{"POST", "/sidecar" + tt.path, "a=1&b=2", body, "u7", ""}
			if got != want {
				t.Errorf("sidecar saw %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecisionURLDown(t *testing.T) {
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL)
	sc.Close() // connection refused
	r := newRouter(t, Config{Weight: 100, DecisionURL: base})
	if d := r.Decide(get(t), nil, "/ok", nil); d.Side != Reference || d.Rule != RuleFailsafe {
		t.Errorf("decision service down: %v/%s, want reference/failsafe", d.Side, d.Rule)
	}
}

func TestDecisionBodyCap(t *testing.T) {
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL)
	r := newRouter(t, Config{DecisionURL: base, DecisionMaxBodyBytes: 4})
	req := httptest.NewRequest(http.MethodPut, "/ok", strings.NewReader("0123456789"))
	if d := r.Decide(req, nil, "/ok", func() []byte { return []byte("0123456789") }); d.Side != Candidate {
		t.Errorf("side %v", d.Side)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != "0123456789" {
		t.Errorf("body after the decision: %q", b)
	}
	if got := sc.calls()[0]; got.body != "0123" || got.truncated != "true" {
		t.Errorf("sidecar got body %q truncated %q, want 0123 true", got.body, got.truncated)
	}
}

func TestDecisionCache(t *testing.T) {
	clk := newClock()
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL)
	r := newRouter(t, Config{DecisionURL: base, StickyKey: "header:X-User", DecisionCacheTTL: time.Minute, Now: clk.now})
	ask := func(path, user string) Side {
		return r.Decide(get(t, "X-User", user), nil, path, nil).Side
	}
	if ask("/ok", "u1") != Candidate || ask("/no", "u1") != Candidate {
		t.Error("second question for u1 was not answered from the cache")
	}
	if ask("/no", "u2") != Reference {
		t.Error("u2 has its own entry")
	}
	if n := len(sc.calls()); n != 2 {
		t.Errorf("sidecar asked %d times, want 2", n)
	}
	clk.add(time.Minute)
	if ask("/no", "u1") != Reference {
		t.Error("expired entry still used")
	}
	// Failures are not cached.
	ask("/boom", "u3")
	ask("/boom", "u3")
	if n := len(sc.calls()); n != 5 {
		t.Errorf("sidecar asked %d times, want 5", n)
	}
}

// TestDecisionBodyReadOnlyWhenAsked: the body is read (the callback
// called) only for a request the decision service is asked about, not for
// one the override header settles.
func TestDecisionBodyReadOnlyWhenAsked(t *testing.T) {
	sc := newSidecar(t)
	base, _ := url.Parse(sc.URL)
	r := newRouter(t, Config{DecisionURL: base, OverrideHeader: "X-Canary"})
	read := 0
	body := func() []byte { read++; return []byte("0123456789") }
	if d := r.Decide(get(t, "X-Canary", "false"), nil, "/ok", body); d.Rule != RuleOverride || read != 0 {
		t.Errorf("override: rule %s, body read %d times, want override and 0", d.Rule, read)
	}
	if d := r.Decide(get(t), nil, "/ok", body); d.Rule != RuleDecisionURL || read != 1 {
		t.Errorf("asked: rule %s, body read %d times, want decision_url and 1", d.Rule, read)
	}
}
