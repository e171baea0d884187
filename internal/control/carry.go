package control

import (
	"reflect"
	"slices"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

// Carry builds the Manager's routing tables from a config, the runtime
// overrides on top, carrying over the live state (weight counter, breaker)
// of canary routes whose settings did not change. One Carry lives as long
// as the proxy: it remembers the routes it built last, across reloads.
type Carry struct {
	// Build makes a table from a config (the overrides applied to its
	// routes already).
	Build func(*config.Config) (*shadow.Table, error)

	last map[string]config.Route // routes as last built, overrides applied
}

// Builder returns the Builder for one config (a new one on each reload).
func (c *Carry) Builder(cfg *config.Config) Builder {
	return func(ov map[string]Desired, prev *shadow.Table) (*shadow.Table, error) {
		next := withUpstreams(cfg, ov)
		t, err := c.Build(next)
		if err != nil {
			return nil, err
		}
		before := map[string]*shadow.Route{}
		if prev != nil {
			for _, r := range prev.Routes() {
				before[r.Name] = r
			}
		}
		built := make(map[string]config.Route, len(next.Routes))
		for i, r := range t.Routes() {
			rc := next.Routes[i]
			built[r.Name] = rc
			if err := c.carry(r, before[r.Name], rc, ov[r.Name]); err != nil {
				return nil, err
			}
		}
		c.last = built
		return t, nil
	}
}

// withUpstreams is cfg with the overridden upstreams of its routes.
func withUpstreams(cfg *config.Config, ov map[string]Desired) *config.Config {
	c := *cfg
	c.Routes = slices.Clone(cfg.Routes)
	for i := range c.Routes {
		o := ov[c.Routes[i].Name]
		if o.Reference != nil {
			c.Routes[i].Reference = *o.Reference
		}
		if o.Candidate != nil {
			c.Routes[i].Candidate = *o.Candidate
		}
		if o.Secondary != nil {
			c.Routes[i].Secondary = *o.Secondary
		}
	}
	return &c
}

// carry applies a route's overrides to r, newly built from rc, and gives
// it prev's canary router where the route's settings are as they were.
func (c *Carry) carry(r, prev *shadow.Route, rc config.Route, o Desired) error {
	if o.Paused != nil {
		r.Paused = *o.Paused
	}
	if r.Canary == nil {
		return nil
	}
	if prev != nil && prev.Canary != nil && reflect.DeepEqual(c.last[r.Name], rc) {
		r.Canary.Close()
		r.Canary = prev.Canary // same settings: keep its counters and breaker
	}
	w := rc.Weight
	if o.Weight != nil {
		w = *o.Weight
	}
	if r.Canary.Weight() != w {
		return r.Canary.SetWeight(w)
	}
	return nil
}
