package control

import (
	"reflect"
	"strings"

	"github.com/miffy-proxy/miffy/internal/config"
)

// RestartOnly names the settings that differ between two configs and that a
// reload does not apply (listeners, clients, limits), by their Config field;
// "" when none.
func RestartOnly(old, next *config.Config) string {
	strip := func(c config.Config) config.Config {
		// What a reload applies: the routing table and what it is built from.
		c.Routes, c.Reference, c.Candidate, c.Secondary = nil, "", "", ""
		c.Compare = next.Compare
		c.Shadow.AllowSideEffects, c.Shadow.Sample = false, 0
		c.Publish.Mode, c.Noise.PublishNoise = "", false
		// [canary] route defaults go into the table; the response header
		// and the decision socket are set up once, at start.
		canary := next.Canary
		canary.ServedByHeader, canary.Socket, canary.SocketRoute = c.Canary.ServedByHeader, c.Canary.Socket, c.Canary.SocketRoute
		c.Canary = canary
		// [verdict] and the report server's token are read by miffy
		// report only.
		c.Verdict, c.Report.TokenFile = next.Verdict, next.Report.TokenFile
		return c
	}
	a, b := strip(*old), strip(*next)
	var changed []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			changed = append(changed, va.Type().Field(i).Name)
		}
	}
	return strings.Join(changed, ", ")
}
