package shadow

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// idGen makes record ids unique across a fleet without coordination: a
// random per-process prefix and a counter.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen() idGen {
	var b [6]byte
	rand.Read(b[:])
	return idGen{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *idGen) next() string {
	var buf [32]byte
	out := append(buf[:0], g.prefix...)
	return string(strconv.AppendUint(out, g.n.Add(1), 10))
}
