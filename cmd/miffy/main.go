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
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "miffy:", err)
		os.Exit(exitCode(err))
	}
}
