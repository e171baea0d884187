package mgmt

import (
	"context"
	"errors"
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
