package publish

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(10*time.Second, func() time.Time { return now })
	type line struct {
		Count int64
		OK    bool
	}
	steps := []struct {
		name    string
		advance time.Duration
		n       int64
		want    line
	}{
		{"first event logs at once", 0, 1, line{1, true}},
		{"within the period: counted", time.Second, 1, line{}},
		{"still within", 8 * time.Second, 3, line{}},
		{"period over: reports all since the last line", time.Second, 1, line{5, true}},
		{"quiet again", 9 * time.Second, 2, line{}},
		{"next line", 2 * time.Second, 1, line{3, true}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now = now.Add(s.advance)
			c, ok := l.event(s.n)
			if diff := cmp.Diff(s.want, line{c, ok}); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}
