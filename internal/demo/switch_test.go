package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSwitchSpoilsItsShare(t *testing.T) {
	for _, tc := range []struct {
		name  string
		share float64
		n     int
		want  int
	}{
		{"off", 0, 100, 0},
		{"a third", 0.3, 100, 30},
		{"a quarter", 0.25, 8, 2},
		{"all", 1, 10, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Switch
			if err := s.Set(tc.share); err != nil {
				t.Fatal(err)
			}
			got := 0
			for range tc.n {
				if s.spoil() {
					got++
				}
			}
			if got != tc.want {
				t.Errorf("%d of %d spoiled, want %d", got, tc.n, tc.want)
			}
		})
	}
	var s Switch
	for _, bad := range []float64{-0.1, 1.5} {
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%v) took it", bad)
		}
	}
}

// TestCandidateSwitchOverHTTP: the candidate agrees with the reference on
// /api/3 until POST /demo/bad; then a share of its answers carry a wrong
// square, still 200; POST /demo/good ends it. The reference has no switch.
func TestCandidateSwitchOverHTTP(t *testing.T) {
	ref, cand := httptest.NewServer(Reference()), httptest.NewServer(Candidate())
	t.Cleanup(ref.Close)
	t.Cleanup(cand.Close)
	call := func(method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wrong := func(n int) int {
		t.Helper()
		got := 0
		for range n {
			code, body := call("GET", cand.URL+"/api/3")
			var v struct{ Square int }
			if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
				t.Fatalf("/api/3: %d %s", code, body)
			}
			if v.Square != 9 {
				got++
			}
		}
		return got
	}
	if got := wrong(10); got != 0 {
		t.Errorf("off: %d of 10 wrong", got)
	}
	if code, body := call("POST", cand.URL+"/demo/bad?share=0.5"); code != 200 || !strings.Contains(body, `"share":0.5`) {
		t.Fatalf("POST /demo/bad: %d %s", code, body)
	}
	if _, body := call("GET", cand.URL+"/demo/bad"); !strings.Contains(body, `"share":0.5`) {
		t.Errorf("GET /demo/bad: %s", body)
	}
	if got := wrong(10); got != 5 {
		t.Errorf("at 0.5: %d of 10 wrong, want 5", got)
	}
	if code, body := call("POST", cand.URL+"/demo/bad?share=2"); code != 400 {
		t.Errorf("share 2: %d %s, want 400", code, body)
	}
	if code, _ := call("POST", cand.URL+"/demo/good"); code != 200 {
		t.Errorf("POST /demo/good: %d", code)
	}
	if got := wrong(10); got != 0 {
		t.Errorf("good again: %d of 10 wrong", got)
	}
	if code, _ := call("POST", cand.URL+"/demo/bad"); code != 200 {
		t.Errorf("POST /demo/bad: %d", code)
	}
	if got := wrong(10); got != int(DefaultBadShare*10) {
		t.Errorf("default share: %d of 10 wrong", got)
	}
	if code, body := call("POST", ref.URL+"/demo/bad"); code == 200 && strings.Contains(body, "share") {
		t.Errorf("the reference took the switch: %s", body)
	}
}

func TestTraffic(t *testing.T) {
	seen := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.URL.Path:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan [2]int, 1)
	go func() { a, f := Traffic(ctx, srv.URL, 200); done <- [2]int{a, f} }()
	var got []string
	for len(got) < 4 {
		got = append(got, <-seen)
	}
	cancel()
	res := <-done
	if diff := cmp.Diff([]string{"/api/1", "/api/2", "/api/3", "/api/1"}, got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	// The fourth may have been cut by the cancel.
	if res[0] < 3 || res[0]+res[1] < 4 {
		t.Errorf("answered %d, failed %d; want at least 3 answered of 4", res[0], res[1])
	}
}
