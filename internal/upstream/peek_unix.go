//go:build unix

package upstream

import (
	"crypto/tls"
	"net"
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

// awaitReadable returns a function that waits until the connection has
// something to read (or has been closed, or fails, or its deadline
// passes) without reading it, so that no buffer is held while an upstream
// takes its time. It costs what a read that finds nothing costs: one
// non-blocking peek, then the poller's wait; woken, it reads nothing more
// (a spurious wake-up is met by the buffered read after it, which waits
// again). Nil where the socket cannot be reached (TLS, whose records are
// read through the tls.Conn's own buffers): such connections keep their
// read buffer.
func awaitReadable(nc net.Conn) func() error {
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
		first bool
		buf   [1]byte
	)
	ready := func(fd uintptr) bool {
		if !first {
			return true
		}
		first = false
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	}
	return func() error {
		first = true
		return raw.Read(ready)
	}
}
