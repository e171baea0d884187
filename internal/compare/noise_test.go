package compare

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a settable clock for a Judge.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }

func classes(diffs []Diff) []string {
	var out []string
	for _, d := range diffs {
		out = append(out, d.Path+"="+string(d.Class))
	}
	return out
}

func TestJudgeSecondary(t *testing.T) {
	j := NewJudge(NoiseConfig{}, newClock().now)
	cand := []Diff{
		{Path: "$.generated_at", Kind: Changed},
		{Path: "$.items[1].price", Kind: Changed},
	}
	sec := []Diff{{Path: "$.generated_at", Kind: Changed}}
	got, allNoise := j.Classify("GET /items", cand, sec, true)
	want := []string{"$.generated_at=noise", "$.items[1].price=regression"}
	if diff := cmp.Diff(want, classes(got)); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	if allNoise {
		t.Error("allNoise = true, want false")
	}
	if &got[0] != &cand[0] {
		t.Error("Classify did not set classes in place")
	}
}

func TestJudgeRules(t *testing.T) {
	type req struct {
		cand, sec []string
		hasSec    bool
	}
	diffs := func(paths []string) []Diff {
		var out []Diff
		for _, p := range paths {
			out = append(out, Diff{Path: p, Kind: Changed})
		}
		return out
	}
	tests := []struct {
		name         string
		history      []req // classified first, one bucket apart
		last         req
		want         []string
		wantAllNoise bool
	}{
		{
			name: "fresh path without secondary is a regression",
			last: req{cand: []string{"$.a"}},
			want: []string{"$.a=regression"},
		},
		{
			name: "status is always a regression",
			last: req{cand: []string{"status"}, sec: []string{"status"}, hasSec: true},
			want: []string{"status=regression"},
		},
		{
			name: "noisy in the window, not in this request's secondary",
			history: []req{
				{cand: []string{"$.ts"}, sec: []string{"$.ts"}, hasSec: true},
				{cand: []string{"$.ts"}, sec: []string{"$.ts"}, hasSec: true},
				{cand: []string{"$.ts"}, sec: []string{"$.ts"}, hasSec: true},
			},
			last:         req{cand: []string{"$.ts"}, hasSec: true},
			want:         []string{"$.ts=noise"},
			wantAllNoise: true,
		},
		{
			name: "array indexes are counted together",
			history: []req{
				{cand: []string{"$.items[3].ts"}, sec: []string{"$.items[0].ts"}, hasSec: true},
				{cand: []string{"$.items[7].ts"}, sec: []string{"$.items[2].ts"}, hasSec: true},
			},
			last:         req{cand: []string{"$.items[9].ts"}, sec: []string{}, hasSec: true},
			want:         []string{"$.items[9].ts=noise"},
			wantAllNoise: true,
		},
		{
			name: "secondary noise on another index counts for rule (a)",
			last: req{cand: []string{"$.items[1].ts"}, sec: []string{"$.items[4].ts"}, hasSec: true},
			want: []string{"$.items[1].ts=noise"}, wantAllNoise: true,
		},
		{
			name: "often in candidate, rarely in secondary is a regression",
			history: []req{
				{cand: []string{"$.p"}, sec: []string{"$.p"}, hasSec: true},
				{cand: []string{"$.p"}, hasSec: true},
				{cand: []string{"$.p"}, hasSec: true},
				{cand: []string{"$.p"}, hasSec: true},
			},
			last: req{cand: []string{"$.p"}, hasSec: true},
			want: []string{"$.p=regression"},
		},
		{
			name: "rare in the window is noise per Absolute",
			history: func() []req {
				var h []req
				for range 5000 {
					h = append(h, req{cand: []string{"$.other"}})
				}
				return h
			}(),
			last:         req{cand: []string{"$.rare"}},
			want:         []string{"$.rare=noise"},
			wantAllNoise: true,
		},
		{
			name: "no diffs",
			last: req{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			j := NewJudge(NoiseConfig{}, clock.now)
			for _, r := range tt.history {
				j.Classify("ep", diffs(r.cand), diffs(r.sec), r.hasSec)
				clock.advance(time.Millisecond)
			}
			got, allNoise := j.Classify("ep", diffs(tt.last.cand), diffs(tt.last.sec), tt.last.hasSec)
			if diff := cmp.Diff(tt.want, classes(got)); diff != "" {
				t.Errorf("classes (-want +got):\n%s", diff)
			}
			if allNoise != tt.wantAllNoise {
				t.Errorf("allNoise = %v, want %v", allNoise, tt.wantAllNoise)
			}
		})
	}
}

func TestJudgeWindowSlides(t *testing.T) {
	clock := newClock()
	j := NewJudge(NoiseConfig{Window: 10 * time.Minute}, clock.now)
	noisy := []Diff{{Path: "$.ts"}}
	for range 3 {
		j.Classify("ep", noisy, noisy, true)
	}
	if got, _ := j.Classify("ep", []Diff{{Path: "$.ts"}}, nil, true); got[0].Class != Noise {
		t.Fatalf("within the window: class %q, want noise", got[0].Class)
	}
	clock.advance(11 * time.Minute)
	if got, _ := j.Classify("ep", []Diff{{Path: "$.ts"}}, nil, true); got[0].Class != Regression {
		t.Errorf("after the window: class %q, want regression", got[0].Class)
	}
}

func TestJudgeEndpointsAreSeparate(t *testing.T) {
	j := NewJudge(NoiseConfig{}, newClock().now)
	for range 3 {
		j.Classify("a", []Diff{{Path: "$.ts"}}, []Diff{{Path: "$.ts"}}, true)
	}
	if got, _ := j.Classify("b", []Diff{{Path: "$.ts"}}, nil, true); got[0].Class != Regression {
		t.Errorf("class on another endpoint %q, want regression", got[0].Class)
	}
}

func TestJudgeBoundedMemory(t *testing.T) {
	clock := newClock()
	j := NewJudge(NoiseConfig{}, clock.now)
	for i := range maxPaths + 500 {
		j.Classify(fmt.Sprintf("ep%d", i%(maxEndpoints+50)), []Diff{{Path: fmt.Sprintf("$.p%d", i)}}, nil, false)
	}
	j.mu.Lock()
	paths, eps := j.paths, len(j.endpoints)
	j.mu.Unlock()
	if paths > maxPaths || eps > maxEndpoints {
		t.Fatalf("tracking %d paths in %d endpoints, limits %d and %d", paths, eps, maxPaths, maxEndpoints)
	}
	// Untracked paths still obey rule (a).
	got, _ := j.Classify("ep1", []Diff{{Path: "$.untracked"}}, []Diff{{Path: "$.untracked"}}, true)
	if got[0].Class != Noise {
		t.Errorf("untracked path seen in secondary: class %q, want noise", got[0].Class)
	}
	// Once the window has passed, stale entries make room again.
	clock.advance(time.Hour)
	j.Classify("fresh", []Diff{{Path: "$.new"}}, nil, false)
	j.mu.Lock()
	_, tracked := j.endpoints["fresh"]
	paths = j.paths
	j.mu.Unlock()
	if !tracked || paths != 1 {
		t.Errorf("after the window: fresh tracked %v, %d paths; want true, 1", tracked, paths)
	}
}

func TestJudgeConcurrent(t *testing.T) {
	j := NewJudge(NoiseConfig{}, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				cand := []Diff{{Path: fmt.Sprintf("$.items[%d].ts", i)}, {Path: "status"}}
				j.Classify(fmt.Sprintf("ep%d", g%3), cand, cand[:1], i%2 == 0)
			}
		})
	}
	wg.Wait()
}
