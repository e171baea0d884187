package shadow

import (
	"time"

	"github.com/miffy-proxy/miffy/internal/publish"
)

// Tally counts the outcome of every request on a route under test, for the
// fleet-wide tallies (internal/tally): the denominators and latencies that
// the published records alone cannot give. Its methods are called
// concurrently, from replays and from the request path, and must not block.
type Tally interface {
	// Compared sees every compared request's record, equal or not and
	// whatever is published, with its differences classed.
	Compared(r *publish.Record)
	// Skipped and Dropped count a request not replayed, by reason (the
	// labels of miffy_shadow_skipped_total and miffy_shadow_dropped_total).
	Skipped(route, reason string)
	Dropped(route, reason string)
	// Served counts a canary route's request answered by side (reference
	// or candidate) with status (0: no complete answer) after d.
	Served(route, side string, status int, d time.Duration)
}
