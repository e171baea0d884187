package mgmt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "miffy_test_total", Help: "x"}).Inc()
	s := New(Config{CheckInterval: -1}, reg)
	var broken atomic.Bool
	s.AddCheck("broker", func(ctx context.Context) error {
		if broken.Load() {
			return errors.New("unreachable")
		}
		return nil
	})
	srv := httptest.NewServer(s)
	defer srv.Close()

	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/metrics"); code != 200 || !strings.Contains(body, "miffy_test_total 1") {
		t.Errorf("metrics: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 || !strings.Contains(body, `"broker":"ok"`) {
		t.Errorf("readyz ready: %d %q", code, body)
	}
	broken.Store(true)
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "unreachable") {
		t.Errorf("readyz broken: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof off by default, got %d", code)
	}
}

func TestPProfSwitch(t *testing.T) {
	srv := httptest.NewServer(New(Config{PProf: true}, prometheus.NewRegistry()))
	defer srv.Close()
	if code, _ := get(t, srv.URL+"/debug/pprof/"); code != 200 {
		t.Errorf("pprof on: %d", code)
	}
}

// warning is a check error that reports itself as degraded.
type warning struct{ msg string }

func (w warning) Error() string { return w.msg }
func (warning) Degraded() bool  { return true }

// TestReadyzDegraded: a check whose error says Degraded() keeps /readyz at
// 200 and shows "degraded: <error>"; any failing check still makes it 503.
func TestReadyzDegraded(t *testing.T) {
	tests := []struct {
		name     string
		checks   map[string]error
		wantCode int
		want     []string
	}{
		{"all ok", map[string]error{"control": nil, "broker": nil}, 200,
			[]string{`"ready":true`, `"control":"ok"`, `"broker":"ok"`}},
		{"degraded only", map[string]error{"control": warning{"topic unreachable"}, "broker": nil}, 200,
			[]string{`"ready":true`, `"control":"degraded: topic unreachable"`, `"broker":"ok"`}},
		{"degraded, wrapped", map[string]error{"control": fmt.Errorf("control topic: %w", warning{"refused"})}, 200,
			[]string{`"ready":true`, `"control":"degraded: control topic: refused"`}},
		{"degraded and failing", map[string]error{"control": warning{"stale"}, "broker": errors.New("unreachable")}, 503,
			[]string{`"ready":false`, `"control":"degraded: stale"`, `"broker":"unreachable"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{CheckInterval: -1}, prometheus.NewRegistry())
			for name, err := range tt.checks {
				s.AddCheck(name, func(context.Context) error { return err })
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			code, body := get(t, srv.URL+"/readyz")
			if code != tt.wantCode {
				t.Errorf("readyz: %d, want %d: %s", code, tt.wantCode, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("readyz body lacks %s: %s", w, body)
				}
			}
		})
	}
}
