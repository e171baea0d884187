package shadow

import (
	"sync"
	"testing"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/config"
)

// defaults is config.default.toml as the config layer loads it.
var defaults = sync.OnceValues(func() (*config.Config, error) {
	return config.LoadDefaults(miffy.DefaultConfig, nil)
})

// testConfig is cfg completed as the config layer completes it: each field
// cfg leaves zero takes config.default.toml's value (read from the file,
// not copied here). Tests that build a Config by hand go through it; the
// proxy itself fills nothing in.
func testConfig(cfg Config) Config {
	d, err := defaults()
	if err != nil {
		panic("config.default.toml: " + err.Error())
	}
	or := func(v, def int64) int64 {
		if v == 0 {
			return def
		}
		return v
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = d.Proxy.DialTimeout
	}
	if cfg.MaxIdleConnsPerHost == 0 {
		cfg.MaxIdleConnsPerHost = d.Proxy.MaxIdleConnsPerHost
	}
	if cfg.UpstreamIdleTimeout == 0 {
		cfg.UpstreamIdleTimeout = d.Proxy.UpstreamIdleTimeout
	}
	if cfg.MaxResponseHeaderBytes == 0 {
		cfg.MaxResponseHeaderBytes = d.Proxy.MaxResponseHeaderBytes
	}
	cfg.MaxBodyBytes = or(cfg.MaxBodyBytes, d.Shadow.MaxBodyBytes)
	cfg.MaxResponseBytes = or(cfg.MaxResponseBytes, d.Shadow.MaxResponseBytes)
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Shadow.Timeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = d.Shadow.MaxInFlight
	}
	cfg.MaxInFlightBytes = or(cfg.MaxInFlightBytes, d.Shadow.MaxInFlightBytes)
	if cfg.ServedByHeader == "" {
		cfg.ServedByHeader = d.Canary.ServedByHeader
	}
	return cfg
}

// TestTestConfigIsTheDefaults: an empty Config completed by testConfig
// holds config.default.toml's values.
func TestTestConfigIsTheDefaults(t *testing.T) {
	c := testConfig(Config{})
	if c.DialTimeout <= 0 || c.MaxIdleConnsPerHost <= 0 || c.MaxResponseHeaderBytes <= 0 || c.MaxBodyBytes <= 0 ||
		c.MaxResponseBytes <= 0 || c.Timeout <= 0 || c.MaxInFlight <= 0 || c.MaxInFlightBytes <= 0 || c.ServedByHeader == "" {
		t.Errorf("testConfig(Config{}) = %+v: a default is missing", c)
	}
}
