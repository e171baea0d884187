package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestZeroMeansNoLimit: the Client's and the Transport's limits take no
// defaults; a zero is no limit, as their fields say. IdleTimeout zero keeps
// an idle connection (package config hands it "0s" from
// [proxy] upstream_idle_timeout); a 1ns timeout does not.
func TestZeroMeansNoLimit(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	tests := []struct {
		name      string
		cfg       Config
		wantConns int64
	}{
		{"zero config", Config{}, 1},
		{"idle timeout zero", Config{IdleTimeout: 0, MaxIdlePerHost: 1}, 1},
		{"idle timeout 1ns", Config{IdleTimeout: time.Nanosecond, MaxIdlePerHost: 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := conns.Load()
			c := newClient(t, tt.cfg)
			for range 3 {
				if r, err := fetch(t.Context(), c, get(addr, "/")); err != nil || r.Body != "ok" {
					t.Fatalf("fetch = %+v, %v", r, err)
				}
			}
			if got := conns.Load() - before; got != tt.wantConns {
				t.Errorf("connections = %d, want %d", got, tt.wantConns)
			}
		})
	}
}
