package main

import (
	"reflect"
	"slices"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/canary"
	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/control"
	"github.com/miffy-proxy/miffy/internal/shadow"
)

// live builds routing tables for the control manager: from a config, the
// runtime overrides on top, carrying over the live state (weight counter,
// breaker) of canary routes whose settings did not change.
type live struct {
	last   map[string]config.Route // routes as last built, overrides applied
	canary *canary.Metrics         // every canary router's (nil: none)
	log    zerolog.Logger          // the canary routers'
}

// builder returns the control.Builder for one config (a new one on reload).
func (l *live) builder(cfg *config.Config) control.Builder {
	return func(ov map[string]control.Desired, prev *shadow.Table) (*shadow.Table, error) {
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
		t, err := buildTable(&c, l.canary, l.log)
		if err != nil {
			return nil, err
		}
		before := map[string]*shadow.Route{}
		if prev != nil {
			for _, r := range prev.Routes() {
				before[r.Name] = r
			}
		}
		built := make(map[string]config.Route, len(c.Routes))
		for i, r := range t.Routes() {
			rc := c.Routes[i]
			built[r.Name] = rc
			o := ov[r.Name]
			if o.Paused != nil {
				r.Paused = *o.Paused
			}
			if r.Canary == nil {
				continue
			}
			if p := before[r.Name]; p != nil && p.Canary != nil && reflect.DeepEqual(l.last[r.Name], rc) {
				r.Canary.Close()
				r.Canary = p.Canary // same settings: keep its counters and breaker
			}
			w := rc.Weight
			if o.Weight != nil {
				w = *o.Weight
			}
			if r.Canary.Weight() != w {
				if err := r.Canary.SetWeight(w); err != nil {
					return nil, err
				}
			}
		}
		l.last = built
		return t, nil
	}
}
