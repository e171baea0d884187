package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormats(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{"json", func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("not JSON: %v: %s", err, out)
			}
			if m["level"] != "warn" || m["message"] != "hello" {
				t.Errorf("fields: %v", m)
			}
		}},
		{"stackdriver", func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("not JSON: %v: %s", err, out)
			}
			if m["severity"] != "WARNING" || m["message"] != "hello" || m["level"] != nil {
				t.Errorf("fields: %v", m)
			}
		}},
		{"human", func(t *testing.T, out string) {
			if !strings.Contains(out, "WRN") || !strings.Contains(out, "hello") {
				t.Errorf("line: %q", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, tt.format, "info")
			if err != nil {
				t.Fatal(err)
			}
			l.Debug().Msg("hidden")
			l.Warn().Msg("hello")
			tt.check(t, strings.TrimSpace(buf.String()))
		})
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := New(nil, "xml", "info"); err == nil || !strings.Contains(err.Error(), "logging") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := New(nil, "json", "loud"); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("bad level: %v", err)
	}
}
