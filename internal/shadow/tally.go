package shadow

import "time"

// Tally counts the outcome of every request on a route under test, for the
// fleet-wide tallies (internal/tally): the denominators and latencies that
// the published records alone cannot give. (Compared requests reach it
// through the Publisher: publish.Outlet's Compared.) Its methods are called
// concurrently, from replays and from the request path, and must not block.
type Tally interface {
	// Skipped and Dropped count a request not replayed, by reason (the
	// labels of miffy_shadow_skipped_total and miffy_shadow_dropped_total).
	Skipped(route, reason string)
	Dropped(route, reason string)
	// Served counts a canary route's request answered by side (reference
	// or candidate) with status (0: no complete answer) after d.
	Served(route, side string, status int, d time.Duration)
}
