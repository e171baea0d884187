// Command demo serves the demo reference on 127.0.0.1:3000 and the demo
// candidate on 127.0.0.1:3001 (see internal/demo for where they differ).
// `miffy demo` starts the same servers by itself; run this one when you
// run miffy and Kafka yourself (docker-compose.yml does).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/miffy-proxy/miffy/internal/demo"
)

func main() {
	ref := flag.String("reference", "127.0.0.1:3000", "address of the reference")
	cand := flag.String("candidate", "127.0.0.1:3001", "address of the candidate")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *ref, *cand); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, refAddr, candAddr string) error {
	servers := []*http.Server{
		{Addr: refAddr, Handler: demo.Reference(), ReadHeaderTimeout: 5 * time.Second},
		{Addr: candAddr, Handler: demo.Candidate(), ReadHeaderTimeout: 5 * time.Second},
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			fmt.Printf("serving on http://%s\n", s.Addr)
			if err := s.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(shut)
	}
	return nil
}
