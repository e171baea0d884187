//go:build unix

package upstream

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"syscall"
)

// quietCheck returns a function that reports whether an idle connection
// is still open and has sent nothing since its last answer. Bytes waiting
// there (the rest of a body longer than its Content-Length, a TLS alert)
// or a closed connection make it unfit to carry another request: its next
// "answer" would be stale. One non-blocking peek, no read; made once per
// connection so that a check does not allocate.
func quietCheck(nc net.Conn) func() bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return func() bool { return true }
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() bool { return false }
	}
	var (
		open bool
		buf  [1]byte
	)
	peek := func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	}
	return func() bool {
		open = false
		return raw.Read(peek) == nil && open
	}
}

// sendAwait returns a function that writes a request and then waits until
// the connection has something to read (the answer, a close, an error, or
// the read deadline), in one pass through the poller and without a read
// buffer. The poller's readiness is reset before the write, so the answer,
// which cannot come before the request, always wakes the wait: the read
// that finds nothing, which a write and then a read cost, is saved, and a
// connection waiting on a slow upstream holds no buffer.
//
// It reports how much of b went out: where the socket takes less than all
// of it (a full send buffer), it stops there without waiting, and the
// caller writes the rest and reads as usual. Where all of it went out,
// sent is called before the wait, and b is not touched again: its buffer
// can go back to its pool rather than wait with the request. A write
// error is returned as werr, a failed wait as err. Nil where the socket
// cannot be reached (TLS, whose records go through the tls.Conn).
func sendAwait(nc net.Conn, sent func()) func(b []byte) (n int, werr, err error) {
	if _, ok := nc.(*tls.Conn); ok {
		return nil
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var (
		msg     []byte
		done    int
		werr    error
		written bool
	)
	f := func(fd uintptr) bool {
		if written {
			return true // woken: there is something to read
		}
		written = true
		for done < len(msg) {
			n, err := syscall.Write(int(fd), msg[done:])
			if n > 0 {
				done += n
			}
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				return true // the caller writes the rest
			case err != nil:
				werr = os.NewSyscallError("write", err)
				return true
			case n <= 0:
				werr = io.ErrShortWrite
				return true
			}
		}
		// All sent: the kernel has it, the buffer may go; wait for the
		// answer.
		msg = nil
		sent()
		return false
	}
	return func(b []byte) (int, error, error) {
		msg, done, werr, written = b, 0, nil, false
		err := raw.Read(f)
		msg = nil
		if werr != nil {
			return done, &net.OpError{Op: "write", Net: "tcp", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: werr}, nil
		}
		if done < len(b) {
			// Not all of it went out (or the poller refused at once, a
			// deadline already passed: then nothing did).
			if !written {
				return 0, nil, err
			}
			return done, nil, nil
		}
		return done, nil, err
	}
}
