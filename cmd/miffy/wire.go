package main

import (
	"fmt"
	"net/url"

	"github.com/miffy-proxy/miffy"
	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/publish"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

var (
	_ shadow.Publisher = (*publish.Kafka)(nil)
	_ shadow.Publisher = (*publish.Console)(nil)
)

// loadConfig loads the embedded defaults, the user's file and the
// environment. path "" means $MIFFY_CONFIG, else ./config.toml if present.
func loadConfig(path string, environ []string) (*config.Config, error) {
	if path == "" {
		path = lookupEnv(environ, "MIFFY_CONFIG")
	}
	cfg, err := config.Load(miffy.DefaultConfig, path, environ)
	if err != nil {
		return nil, err
	}
	if _, err := publish.ClientOptions(cfg.Kafka.Properties); err != nil {
		return nil, err
	}
	return cfg, nil
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if len(kv) > len(key) && kv[len(key)] == '=' && kv[:len(key)] == key {
			return kv[len(key)+1:]
		}
	}
	return ""
}

func shadowConfig(cfg *config.Config) shadow.Config {
	return shadow.Config{
		ForwardedHeaders:    cfg.Proxy.ForwardedHeaders,
		DialTimeout:         cfg.Proxy.DialTimeout,
		ReferenceTimeout:    cfg.Proxy.ReferenceTimeout,
		MaxIdleConnsPerHost: cfg.Proxy.MaxIdleConnsPerHost,
		UpstreamIdleTimeout: cfg.Proxy.UpstreamIdleTimeout,
		MaxRequestBodyBytes: cfg.Proxy.MaxRequestBodyBytes,
		MaxBodyBytes:        cfg.Shadow.MaxBodyBytes,
		MaxResponseBytes:    cfg.Shadow.MaxResponseBytes,
		Timeout:             cfg.Shadow.Timeout,
		MaxInFlight:         cfg.Shadow.MaxInFlight,
		MaxInFlightBytes:    cfg.Shadow.MaxInFlightBytes,
		AccessLog:           cfg.AccessLog,
	}
}

// buildTable turns the configured routes into a routing table.
func buildTable(cfg *config.Config) (*shadow.Table, error) {
	upstream, err := parseURL("reference", cfg.Reference)
	if err != nil {
		return nil, err
	}
	routes := make([]*shadow.Route, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		cmp, err := compare.New(cfg.Compare.Merge(rc.Rules))
		if err != nil {
			return nil, fmt.Errorf("%s.%w", key, err)
		}
		r := &shadow.Route{
			Name:             rc.Name,
			Pattern:          rc.Path,
			Key:              rc.Key,
			Methods:          rc.Methods,
			AllowSideEffects: cfg.Shadow.AllowSideEffects,
			Sample:           cfg.Shadow.Sample,
			Publish:          shadow.PublishMode(cfg.Publish.Mode),
			PublishNoise:     cfg.Noise.PublishNoise,
			Comparer:         cmp,
		}
		if rc.AllowSideEffects != nil {
			r.AllowSideEffects = *rc.AllowSideEffects
		}
		if rc.Sample != nil {
			r.Sample = *rc.Sample
		}
		if rc.Publish != "" {
			r.Publish = shadow.PublishMode(rc.Publish)
		}
		if rc.PublishNoise != nil {
			r.PublishNoise = *rc.PublishNoise
		}
		if r.Reference, err = parseURL(key+".reference", rc.Reference); err != nil {
			return nil, err
		}
		if r.Candidate, err = parseURL(key+".candidate", rc.Candidate); err != nil {
			return nil, err
		}
		if rc.Secondary != "" {
			if r.Secondary, err = parseURL(key+".secondary", rc.Secondary); err != nil {
				return nil, err
			}
		}
		routes = append(routes, r)
	}
	return shadow.NewTable(upstream, routes)
}

func parseURL(key, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not an absolute http(s) URL", key, raw)
	}
	return u, nil
}
