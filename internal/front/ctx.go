package front

import (
	"context"
	"sync"
	"time"
)

// reqCtx is a request's context. It is canceled when the handler returns,
// when the client goes away (the watch) and when writing the answer fails,
// as net/http's request contexts are. It costs one allocation where
// context.WithCancel, plus the context.AfterFunc an upstream call puts on
// it, cost several: its Done channel is made only when asked for, and
// AfterFunc callbacks are kept here rather than in a child context.
type reqCtx struct {
	mu    sync.Mutex
	done  chan struct{} // made by Done
	err   error         // context.Canceled once canceled
	first afterEntry    // the first AfterFunc, kept inline
	more  []*afterEntry
}

type afterEntry struct {
	f       func()
	pending bool // registered, neither run nor stopped
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *reqCtx) Value(any) any { return nil }

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *reqCtx) String() string { return "front.requestContext" }

// AfterFunc is what context.AfterFunc does, for this context: f runs in
// its own goroutine once the context is canceled, unless stop comes first
// (then stop reports true). The context package uses it too, for the
// contexts derived from this one.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &c.first
	if e.f != nil {
		e = &afterEntry{}
		c.more = append(c.more, e)
	}
	e.f = f
	if c.err != nil {
		go f()
	} else {
		e.pending = true
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := e.pending
		e.pending = false
		return was
	}
}

// cancel cancels the context: Done is closed, Err is context.Canceled and
// the pending AfterFunc callbacks start. Later calls do nothing.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	if c.first.pending {
		c.first.pending = false
		go c.first.f()
	}
	for _, e := range c.more {
		if e.pending {
			e.pending = false
			go e.f()
		}
	}
}
