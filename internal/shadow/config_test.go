package shadow

import "time"

// testConfig is cfg completed as the config layer completes it: each field
// cfg leaves zero takes config.default.toml's value. Tests that build a
// Config by hand go through it; the proxy itself fills nothing in.
func testConfig(cfg Config) Config {
	set := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&cfg.DialTimeout, 5*time.Second)
	setInt(&cfg.MaxIdleConnsPerHost, 512)
	setDur(&cfg.UpstreamIdleTimeout, 90*time.Second)
	setInt(&cfg.MaxResponseHeaderBytes, 1<<20)
	set(&cfg.MaxBodyBytes, 1<<20)
	set(&cfg.MaxResponseBytes, 4<<20)
	setDur(&cfg.Timeout, 5*time.Second)
	setInt(&cfg.MaxInFlight, 10000)
	set(&cfg.MaxInFlightBytes, 256<<20)
	if cfg.ServedByHeader == "" {
		cfg.ServedByHeader = "X-Miffy-Served-By"
	}
	return cfg
}
