//go:build !unix

package upstream

import "net"

// quietCheck cannot look at the socket here; a stale connection shows when
// it is used.
func quietCheck(net.Conn) func() bool { return func() bool { return true } }

// awaitReadable is not available here: connections keep their read
// buffer.
func awaitReadable(net.Conn) func() error { return nil }
