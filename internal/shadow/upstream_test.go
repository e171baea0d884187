package shadow

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/publish"
)

// rawUpstream answers every request on its connections with answer,
// written by hand, and then keeps the connection open until the test
// ends.
func rawUpstream(t *testing.T, answer func(w io.Writer)) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					answer(nc)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// endlessHead streams one header field until the connection fails.
func endlessHead(w io.Writer) {
	io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Endless: ")
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func writeAnswer(s string) func(io.Writer) { return func(w io.Writer) { io.WriteString(w, s) } }

// TestUpstreamHeadRefused: a reference whose head is endless or breaks
// HTTP/1.1's rules gets the client a 502 at once (not a wait for
// reference_timeout, not a panic), whether the request went through
// miffy's upstream client or, streamed, through net/http's Transport.
func TestUpstreamHeadRefused(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(io.Writer)
		streamed bool // also through net/http's Transport
	}{
		{"endless head", endlessHead, true},
		{"bare LF", writeAnswer("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"), false},
		{"status below 100", writeAnswer("HTTP/1.1 042 Low\r\nContent-Length: 2\r\n\r\nhi"), false},
		{"Content-Length -0", writeAnswer("HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := rawUpstream(t, tt.answer)
			cand := newUpstream(t, jsonHandler(`{}`))
			cfg := Config{MaxResponseHeaderBytes: 64 << 10, MaxBodyBytes: 16, ReferenceTimeout: time.Minute}
			f := newFixture(t, cfg, ref, cand.url(), nil)
			bodies := []io.Reader{nil}
			if tt.streamed {
				// Larger than MaxBodyBytes: streamed, not replayed.
				bodies = append(bodies, strings.NewReader(strings.Repeat("x", 100)))
			}
			for _, body := range bodies {
				method := http.MethodGet
				if body != nil {
					method = http.MethodPost
				}
				req, err := http.NewRequestWithContext(t.Context(), method, f.front.URL+"/api/1", body)
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				var resp *http.Response
				go func() {
					defer close(done)
					resp, err = http.DefaultClient.Do(req)
				}()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: no answer after 10s", method)
				}
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("%s: status %d, want 502", method, resp.StatusCode)
				}
			}
		})
	}
}

// TestCandidateHeadTooLarge: a candidate whose head passes the bound is
// recorded with error_kind "response_header_too_large".
func TestCandidateHeadTooLarge(t *testing.T) {
	ref := newUpstream(t, jsonHandler(`{"a":1}`))
	cand := rawUpstream(t, endlessHead)
	f := newFixture(t, Config{MaxResponseHeaderBytes: 64 << 10}, ref.url(), cand, nil)
	if resp, body := f.get(t, "/api/1"); resp.StatusCode != 200 || body != `{"a":1}` {
		t.Errorf("client got %d %q", resp.StatusCode, body)
	}
	rec := f.sink.next(t)
	if got := publish.ErrorKind(rec.Candidate.Err); got != publish.KindHeaderTooLarge {
		t.Errorf("error kind %q (%v), want %q", got, rec.Candidate.Err, publish.KindHeaderTooLarge)
	}
}

// TestTransportHeadBound: the Transport for streamed requests and
// upgrades holds the same bound as miffy's own client.
func TestTransportHeadBound(t *testing.T) {
	ref := rawUpstream(t, endlessHead)
	f := newFixture(t, Config{MaxResponseHeaderBytes: 64 << 10}, ref, ref, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ref.String()+"/", nil)
	resp, err := f.proxy.tr.roundTripper(nil, "reference", "http", true).RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if publish.ErrorKind(err) != publish.KindHeaderTooLarge || !strings.Contains(err.Error(), "65536") {
		t.Errorf("err = %v, want the head cut off at 65536 bytes", err)
	}
}
