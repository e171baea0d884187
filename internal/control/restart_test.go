package control

import (
	"testing"
	"time"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/config"
)

// TestRestartOnly: a reload names the settings it cannot apply, and only
// those.
func TestRestartOnly(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   string
	}{
		{"nothing", func(c *config.Config) {}, ""},
		{"routes and upstreams", func(c *config.Config) {
			c.Routes = []config.Route{{Path: "/a", Name: "/a"}}
			c.Reference, c.Candidate = "http://127.0.0.1:1", "http://127.0.0.1:2"
		}, ""},
		{"comparison rules and sampling", func(c *config.Config) {
			c.Compare.Ignore = []string{"$.ts"}
			c.Shadow.Sample, c.Publish.Mode = 0.5, "all"
		}, ""},
		{"canary route defaults", func(c *config.Config) { c.Canary.Cooldown = time.Minute }, ""},
		{"served-by header", func(c *config.Config) { c.Canary.ServedByHeader = "X-Side" }, "Canary"},
		{"decision socket", func(c *config.Config) { c.Canary.Socket = "/tmp/x.sock" }, "Canary"},
		{"listener", func(c *config.Config) { c.Port++ }, "Port"},
		{"shadow limits", func(c *config.Config) { c.Shadow.Timeout = time.Hour }, "Shadow"},
		{"Kafka", func(c *config.Config) { c.Kafka.Topic = "other" }, "Kafka"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := config.LoadDefaults(miffy.DefaultConfig, nil)
			if err != nil {
				t.Fatal(err)
			}
			next, err := config.LoadDefaults(miffy.DefaultConfig, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(next)
			if got := RestartOnly(old, next); got != tt.want {
				t.Errorf("RestartOnly = %q, want %q", got, tt.want)
			}
		})
	}
}
