package shadow

import (
	"context"
	"fmt"
	"time"
)

// Close waits for the replays in flight, until ctx is done; then it cancels
// those left (they are counted as abandoned, not published) and waits for
// them to stop. Call it after the server stopped taking requests, and before
// the publisher is flushed.
func (p *Proxy) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		left := p.budget.count.Load()
		err = fmt.Errorf("waiting for %d replays in flight: %w", left, ctx.Err())
		p.cancel()
		select { // canceled replays end at once unless a client handler is stuck
		case <-done:
		case <-time.After(time.Second):
		}
	}
	p.cancel()
	p.tr.closeIdle()
	return err
}

// Replays returns how many replays are in flight.
func (p *Proxy) Replays() int64 { return p.budget.count.Load() }
