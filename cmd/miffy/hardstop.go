package main

import "context"

// hardStopKey carries, in run's context, a context whose end means "stop
// waiting": main cancels it on a second SIGINT or SIGTERM, during the
// shutdown the first one started.
type hardStopKey struct{}

// withHardStop returns ctx carrying hard; see hardStopKey.
func withHardStop(ctx context.Context, hard context.Context) context.Context {
	return context.WithValue(ctx, hardStopKey{}, hard)
}

// hardStop returns the context withHardStop put in ctx, or one that never
// ends.
func hardStop(ctx context.Context) context.Context {
	if hard, ok := ctx.Value(hardStopKey{}).(context.Context); ok {
		return hard
	}
	return context.Background()
}
