package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/board"
	"github.com/miffy-proxy/miffy/internal/config"
)

// defaultServeAddr is where `miffy report --serve` listens without an
// address.
const defaultServeAddr = "127.0.0.1:8888"

// serveFlag is report's -serve: "--serve" alone means defaultServeAddr,
// "--serve=ADDR" (or "--serve ADDR") that address.
type serveFlag struct {
	set  bool
	addr string
}

func (f *serveFlag) String() string   { return f.addr }
func (f *serveFlag) IsBoolFlag() bool { return true }
func (f *serveFlag) Set(v string) error {
	f.set = true
	switch v {
	case "true":
		f.addr = defaultServeAddr
	case "false":
		f.set, f.addr = false, ""
	default:
		f.addr = v
	}
	return nil
}

// runningBoard is a report server started by startBoard.
type runningBoard struct {
	URL    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Close stops the server (ending its event streams) and the consumer.
func (b *runningBoard) Close() {
	b.cancel()
	<-b.done
}

// startBoard listens on addr and serves the report page over the record
// and tally topics (read from start, then followed, with the client
// options opts) and the rollout topic (from its start) until ctx is done
// or Close.
func startBoard(ctx context.Context, cfg *config.Config, opts []kgo.Opt, addr, topic, tallyTopic string, start kgo.Offset, log zerolog.Logger) (*runningBoard, error) {
	token, err := tokenFile("report.token_file", cfg.Report.TokenFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-serve: listening: %w", err)
	}
	st := board.NewStore(board.StoreConfig{})
	h := board.NewServer(board.Config{
		Topic:  topic,
		Client: opts,
		Limits: routeLimits(cfg),
		Token:  token,
		// Without a token, a loopback listener answers only to local
		// names (DNS rebinding).
		LocalOnly: token == "" && isLoopback(ln.Addr()),
		Info:      board.Info{Reference: cfg.Reference, Candidate: cfg.Candidate, Secondary: cfg.Secondary},
	}, st)
	ctx, cancel := context.WithCancel(ctx)
	b := &runningBoard{URL: "http://" + ln.Addr().String() + "/", cancel: cancel, done: make(chan struct{})}
	// Requests live in ctx, so that cancelling it ends the event streams.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	followed := make(chan struct{}, 2)
	go func() {
		defer func() { followed <- struct{}{} }()
		if err := board.Follow(ctx, st, opts, topic, tallyTopic, start, cfg.Report.LatencyTie, log); err != nil {
			log.Error().Err(err).Msg("report server: reading the topics")
		}
	}()
	go func() {
		defer func() { followed <- struct{}{} }()
		if err := board.FollowRollouts(ctx, st, opts, cfg.Rollout.Topic, log); err != nil {
			log.Error().Err(err).Msg("report server: reading the rollout topic")
		}
	}()
	go func() {
		defer close(b.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("report server")
		}
		cancel()
		<-followed
		<-followed
	}()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}()
	return b, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
