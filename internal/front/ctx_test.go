package front

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestReqCtx: the request context behaves as a canceled context.WithCancel
// would, for its own methods, context.AfterFunc and derived contexts.
func TestReqCtx(t *testing.T) {
	c := new(reqCtx)
	if c.Err() != nil {
		t.Fatalf("Err before cancel = %v", c.Err())
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a deadline")
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed before cancel")
	default:
	}
	ran := make(chan string, 4)
	stopFirst := c.AfterFunc(func() { ran <- "first" })
	stopSecond := c.AfterFunc(func() { ran <- "second" })
	stopped := c.AfterFunc(func() { ran <- "stopped" })
	if !stopped() {
		t.Fatal("stop before cancel = false; want true")
	}
	viaPackage := make(chan struct{})
	context.AfterFunc(c, func() { close(viaPackage) })
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()

	c.cancel()
	c.cancel() // a second time does nothing
	receive(t, done, "Done after cancel")
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(context.Cause(c), context.Canceled) {
		t.Fatalf("Err, Cause = %v, %v; want context.Canceled", c.Err(), context.Cause(c))
	}
	got := map[string]bool{receive(t, ran, "an AfterFunc"): true, receive(t, ran, "an AfterFunc"): true}
	if !got["first"] || !got["second"] {
		t.Fatalf("AfterFunc callbacks run: %v; want first and second", got)
	}
	receive(t, viaPackage, "context.AfterFunc's callback")
	receive(t, child.Done(), "the derived context's Done")
	if stopFirst() || stopSecond() {
		t.Fatal("stop after the callback started = true; want false")
	}
	receive(t, c.Done(), "Done asked for after cancel")
	late := make(chan struct{})
	if c.AfterFunc(func() { close(late) })() {
		t.Fatal("stop of an AfterFunc put on a canceled context = true; want false")
	}
	receive(t, late, "an AfterFunc put on a canceled context")
	select {
	case s := <-ran:
		t.Fatalf("%s ran", s)
	default:
	}
}

// TestReqCtxRace: stop and cancel at once: the callback runs exactly when
// stop reports false.
func TestReqCtxRace(t *testing.T) {
	for range 500 {
		c := new(reqCtx)
		var mu sync.Mutex
		runs := 0
		ran := make(chan struct{}, 1)
		stop := c.AfterFunc(func() {
			mu.Lock()
			runs++
			mu.Unlock()
			ran <- struct{}{}
		})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); c.cancel() }()
		stoppedIt := stop()
		wg.Wait()
		if !stoppedIt {
			receive(t, ran, "the callback stop did not stop")
		}
		mu.Lock()
		if (runs == 1) == stoppedIt || runs > 1 {
			t.Fatalf("stop() = %v and the callback ran %d times", stoppedIt, runs)
		}
		mu.Unlock()
	}
}
