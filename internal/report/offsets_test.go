package report

import (
	"testing"
	"time"
)

func TestParseFrom(t *testing.T) {
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "start", want: "start"},
		{in: "END", want: "end"},
		{in: "1h", want: "2026-05-06T11:00:00Z"},
		{in: "90m", want: "2026-05-06T10:30:00Z"},
		{in: "2026-05-01T08:00:00+02:00", want: "2026-05-01T06:00:00Z"},
		{in: "yesterday", err: true},
		{in: "-1h", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFrom(tt.in, now)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseFrom = %v, want an error", f)
				}
				return
			}
			if err != nil || f.String() != tt.want {
				t.Errorf("ParseFrom = %v, %v, want %s", f, err, tt.want)
			}
		})
	}
}
