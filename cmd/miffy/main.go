// Command miffy is a shadow-testing proxy: clients are answered by the
// reference while a copy of each request goes to the candidate, and every
// difference is published to Kafka. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hard, stopHard := secondSignal(ctx)
	err := run(withHardStop(ctx, hard), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stopHard()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "miffy:", err)
		os.Exit(exitCode(err))
	}
}

// secondSignal returns a context that a SIGINT or SIGTERM arriving after
// ctx is done (the first one) cancels: shutdown then stops waiting.
func secondSignal(ctx context.Context) (context.Context, func()) {
	hard, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-hard.Done():
			return
		}
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sig:
			cancel()
		case <-hard.Done():
		}
	}()
	return hard, func() { cancel(); signal.Stop(sig) }
}
