package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Agreeing are the values the demo candidate answers like the reference
// (while its Switch is off).
var Agreeing = []int{1, 2, 3}

// Traffic sends GET base/api/{value}, value cycling over Agreeing, rate
// requests a second, one at a time, until ctx is done: the evidence the
// rollout demo judges. Requests that fail are counted, not retried; a
// slow answer delays the next one rather than piling requests up. It
// returns how many answers came back and how many failed.
func Traffic(ctx context.Context, base string, rate int) (answered, failed int) {
	if rate <= 0 {
		rate = 1
	}
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return answered, failed
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/%d", base, Agreeing[i%len(Agreeing)]), nil)
		if err != nil {
			return answered, failed
		}
		resp, err := client.Do(req)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		answered++
	}
}
