package shadow

import (
	"testing"
)

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/api/1", false},
		{"/api/v1.2/x", false},
		{"/api/..x", false},
		{"/api/..%2f..%2fadmin", false}, // %2f is data: one segment
		{"/files/.hidden", false},
		{"/api/../admin", true},
		{"/api/./x", true},
		{"/api/..", true},
		{"/api/%2e%2e/admin", true},
		{"/api/%2E./admin", true},
		{"/api/.%2e", true},
		{"/%2e/x", true},
	}
	for _, tt := range tests {
		if got := hasDotSegment(tt.path); got != tt.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
