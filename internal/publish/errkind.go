package publish

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Error kinds reported by ErrorKind, in records ("error_kind") and metric
// labels.
const (
	KindTimeout  = "timeout"
	KindRefused  = "refused"
	KindReset    = "reset"
	KindCanceled = "canceled"
	KindOther    = "other"
	// KindHeaderTooLarge: the upstream's response head passed
	// [proxy] max_response_header_bytes.
	KindHeaderTooLarge = "response_header_too_large"
	// KindMalformed: the upstream's response broke HTTP/1.1's rules (a
	// bare LF, a status outside 100..599, a bad Content-Length).
	KindMalformed = "malformed_response"
)

// kinded is an error that names its own kind (the upstream client's
// response errors: KindHeaderTooLarge, KindMalformed).
type kinded interface{ ErrorKind() string }

// ErrorKind classifies why an upstream gave no (complete) response: timeout,
// refused, reset, canceled, response_header_too_large, malformed_response
// or other. It returns "" for a nil error.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var k kinded
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// net/http's Transport past MaxResponseHeaderBytes, which it
		// reports with no error value of its own.
		return KindHeaderTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return KindReset
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindOther
}
