package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// bodies is how many distinct values /api/{value} answers without
// computing anything: bodies are made once, so that the upstream costs the
// same under every configuration and as little as possible.
const bodies = 1000

// upstream answers GET /api/{value} with a small JSON document. A candidate
// can answer late (delay) and differently for every differEvery-th value,
// so that miffy has mismatches to publish.
type upstream struct {
	delay time.Duration
	body  [][]byte // answered by value modulo len(body)
	count atomic.Int64
	conns atomic.Int64 // connections accepted
}

func runUpstream(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	role := fs.String("role", "reference", "reference or candidate")
	delay := fs.Duration("delay", 0, "wait this long before answering /api/ (the candidate's slowness)")
	every := fs.Int("differ-every", 10, "candidate only: values divisible by this answer with a changed field; 0 = never")
	size := fs.Int("body-size", 0, "answer JSON documents of about this many bytes (16 distinct ones); 0 = the small ~150-byte documents")
	reorder := fs.Bool("reorder", false, "with -body-size: write every object's members in reverse order (equal JSON, other bytes)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *role != "reference" && *role != "candidate" {
		return fmt.Errorf("%w: -role must be reference or candidate, got %q", errUsage, *role)
	}
	u := newUpstream(*role == "candidate", *delay, *every)
	if *size > 0 {
		u.body = sizedBodies(*size, *reorder)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				u.conns.Add(1)
			}
		}}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

func newUpstream(candidate bool, delay time.Duration, every int) *upstream {
	u := &upstream{delay: delay, body: make([][]byte, bodies)}
	for n := range bodies {
		doc := map[string]any{
			"id":       n,
			"name":     "item " + strconv.Itoa(n),
			"price":    float64(n) + 0.99,
			"currency": "EUR",
			"tags":     []string{"bench", "miffy", "shadow"},
			"stock":    map[string]any{"warehouse": "north", "count": n * 7},
		}
		if candidate && every > 0 && n%every == 0 {
			doc["price"] = float64(n) + 0.49
		}
		u.body[n], _ = json.Marshal(doc)
	}
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_stats" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"requests":%d,"connections":%d}`, u.count.Load(), u.conns.Load())
		return
	}
	u.count.Add(1)
	v, ok := strings.CutPrefix(r.URL.Path, "/api/")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	if u.delay > 0 {
		t := time.NewTimer(u.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	b := u.body[n%len(u.body)]
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}

// sizedBodies returns 16 JSON documents of about size bytes each: an object
// with a list of items. reorder writes the members of every object in
// reverse order, so that the documents are equal as JSON but not as bytes.
func sizedBodies(size int, reorder bool) [][]byte {
	object := func(members ...string) string {
		if reorder {
			slices.Reverse(members)
		}
		return "{" + strings.Join(members, ",") + "}"
	}
	out := make([][]byte, 16)
	for n := range out {
		var items []string
		used := 0
		for i := 0; i == 0 || used < size-120; i++ {
			item := object(
				`"id":`+strconv.Itoa(n*100000+i),
				`"name":"item `+strconv.Itoa(i)+` of list `+strconv.Itoa(n)+`"`,
				`"price":`+strconv.Itoa(i%500)+"."+strconv.Itoa(10+i%90),
				`"tags":["bench","miffy"]`,
				`"stock":`+object(`"warehouse":"north"`, `"count":`+strconv.Itoa(i*7)),
			)
			items = append(items, item)
			used += len(item) + 1
		}
		out[n] = []byte(object(`"list":`+strconv.Itoa(n), `"currency":"EUR"`, `"items":[`+strings.Join(items, ",")+"]"))
	}
	return out
}
