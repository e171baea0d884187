package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/upstream"
)

func TestErrorKind(t *testing.T) {
	// A real refused connection and a real client timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	_, refused := http.Get("http://" + closedAddr)

	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	_, timedOut := (&http.Client{Timeout: 10 * time.Millisecond}).Get(slow.URL)

	// A real head past net/http's Transport's bound.
	long := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Long", strings.Repeat("a", 8<<10))
	}))
	defer long.Close()
	_, tooLarge := (&http.Client{Transport: &http.Transport{MaxResponseHeaderBytes: 4 << 10}}).Get(long.URL)

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"deadline", fmt.Errorf("calling: %w", context.DeadlineExceeded), KindTimeout},
		{"os deadline", os.ErrDeadlineExceeded, KindTimeout},
		{"http client timeout", timedOut, KindTimeout},
		{"refused", syscall.ECONNREFUSED, KindRefused},
		{"real refused", refused, KindRefused},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KindReset},
		{"EOF mid-body", fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), KindReset},
		{"EOF", io.EOF, KindReset},
		{"canceled", context.Canceled, KindCanceled},
		{"head too large", fmt.Errorf("reading response: %w", upstream.ErrResponseHeaderTooLarge), KindHeaderTooLarge},
		{"transport head too large", tooLarge, KindHeaderTooLarge},
		{"malformed", fmt.Errorf("reading response: %w: bare LF", upstream.ErrMalformedResponse), KindMalformed},
		{"other", errors.New("no such host"), KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorKind(tt.err); got != tt.want {
				t.Errorf("ErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
