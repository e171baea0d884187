package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := func(t *testing.T) *Config {
		t.Helper()
		c, err := load(t, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // each must appear; nil means valid
	}{
		{"loaded defaults", func(c *Config) {}, nil},
		{"route without URLs uses the top-level ones", func(c *Config) {
			c.Routes = []Route{{Path: "/a"}}
		}, nil},
		{"all problems at once", func(c *Config) {
			c.Port = c.Management.Port
			c.Shadow.Timeout = 0
			c.Kafka.Topic = strings.Repeat("t", 250)
			c.Routes = []Route{{Path: "/a/{x}"}, {Path: "/a/{x}", Methods: []string{"GET"}}, {Path: "/b", Candidate: "ftp://x"}}
		}, []string{"port and management.port", "shadow.timeout", "kafka.topic: 250 characters", "routes[1]: duplicates routes[0]", "routes[2].candidate"}},
		{"methods on different routes do not conflict", func(c *Config) {
			c.Routes = []Route{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"POST"}}}
		}, nil},
		{"two routes with one name", func(c *Config) {
			c.Routes = []Route{{Path: "/a", Name: "shop"}, {Path: "/b", Name: "shop"}, {Path: "/c", Name: "c"}}
		}, []string{`routes[1].name: "shop" is also the name of routes[0]`}},
		{"one path for two methods needs names", func(c *Config) {
			c.Routes = []Route{{Path: "/a", Name: "/a", Methods: []string{"GET"}}, {Path: "/a", Name: "/a", Methods: []string{"POST"}}}
		}, []string{`routes[1].name: "/a" is also the name of routes[0]`}},
		{"one path for two methods with names", func(c *Config) {
			c.Routes = []Route{{Path: "/a", Name: "read", Methods: []string{"GET"}}, {Path: "/a", Name: "write", Methods: []string{"POST"}}}
		}, nil},
		{"reserved name", func(c *Config) {
			c.Routes = []Route{{Path: "/a", Name: "unrouted"}}
		}, []string{`routes[0].name: "unrouted" is reserved`}},
		{"catch-all conflict", func(c *Config) {
			c.Routes = []Route{{Path: "/s/{*rest}"}, {Path: "/s/{*other}"}}
		}, []string{`routes[1]: path "/s/{*other}" conflicts with routes[0]`}},
		{"legacy fields out of step", func(c *Config) {
			c.ManagementPort = 1234
			c.LogJSON = true
		}, []string{"management_port (1234)", "log_json"}},
		{"negative delivery timeout", func(c *Config) { c.Kafka.DeliveryTimeout = -time.Second }, []string{"kafka.delivery_timeout"}},
		{"URL with fragment", func(c *Config) { c.Secondary = "http://x/#frag" }, []string{"secondary", "fragment"}},
		{"URL with bad port", func(c *Config) { c.Reference = "http://x:99999" }, []string{"reference", "port"}},
		{"URL password is not shown", func(c *Config) { c.Reference = "ftp://u:hunter2@x" }, []string{"reference: \"ftp://u:********@x\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(t)
			tt.change(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestEnvKey(t *testing.T) {
	kt := newKeyTable()
	tests := []struct {
		env  string // the name after MIFFY_, lower-cased
		want string // the key path joined by "/", "" for unknown
	}{
		{"port", "port"},
		{"management_port", "management_port"},
		{"management__port", "management/port"},
		{"shadow__timeout", "shadow/timeout"},
		{"shadow__max_in_flight_bytes", "shadow/max_in_flight_bytes"},
		{"compare__ignore", "compare/ignore"},
		{"kafka__topic", "kafka/topic"},
		{"kafka__sasl_password", "kafka/sasl.password"},
		{"kafka__sasl_mechanisms", "kafka/sasl.mechanism"},
		{"kafka_topic", "kafka/topic"}, // miffy 1.0 spelling
		{"shadow_max_body_bytes", "shadow/max_body_bytes"},
		{"routes", "routes"},
		{"portt", ""},
		{"shadow__timout", ""},
		{"kafka__heap_opts", ""},
		{"shadow__timeout__x", ""},
		{"nosuch__key", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			path, _, ok := kt.envKey(tt.env)
			got := strings.Join(path, "/")
			if !ok {
				got = ""
			}
			if got != tt.want {
				t.Errorf("envKey(%q) = %q, want %q", tt.env, got, tt.want)
			}
		})
	}
}

func TestValidateReportAndVerdict(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"tally topic is the record topic", "[report]\ntally_topic = \"miffy\"\n", "report.tally_topic: must differ"},
		{"no interval", "[report]\ntally_interval = \"0s\"\n", "report.tally_interval: 0s must be more than 0s"},
		{"bad confidence", "[verdict]\nconfidence = 1.5\n", "verdict.confidence: 1.5 is not in [0.5, 1)"},
		{"route override", "routes = [{ path = \"/a\", verdict = { max_regression_rate = 2.0 } }]\n", "routes[0].verdict.max_regression_rate: 2 is not between 0 and 1"},
		{"unknown verdict key", "[verdict]\nmin_comapred = 5\n", "min_comapred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	c, err := load(t, "routes = [{ path = \"/a\", verdict = { min_compared = 50 } }]\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Verdict.With(c.Routes[0].Verdict).MinCompared; got != 50 {
		t.Errorf("route min_compared %d, want 50", got)
	}
}
