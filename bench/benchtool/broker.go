package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/broker"
)

// runBroker runs miffy's embedded Kafka-protocol broker until stopped and
// writes its address to a file once it listens.
func runBroker(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	addrFile := fs.String("addr-file", "", "file to write the broker's host:port to")
	retention := fs.Duration("retention", time.Minute, "how long records are kept")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *addrFile == "" {
		return fmt.Errorf("%w: -addr-file is required", errUsage)
	}
	b, err := broker.Start(broker.Config{Addr: *addr, Retention: *retention}, zerolog.Nop())
	if err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	defer b.Close()
	tmp := *addrFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.Addr()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing the address: %w", err)
	}
	if err := os.Rename(tmp, *addrFile); err != nil {
		return fmt.Errorf("writing the address: %w", err)
	}
	<-ctx.Done()
	return nil
}
