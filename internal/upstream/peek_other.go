//go:build !unix

package upstream

import "net"

// quietCheck cannot look at the socket here; a stale connection shows when
// it is used.
func quietCheck(net.Conn) func() bool { return func() bool { return true } }

// sendAwait is not available here: requests are written, and answers
// read, through the net.Conn, and connections keep their read buffer.
func sendAwait(net.Conn, func()) func([]byte) (int, error, error) { return nil }
