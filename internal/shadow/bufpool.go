package shadow

import (
	"io"
	"sync"
)

// copyBufSize is the size of the buffers that carry response bodies: to the
// client (respond, and the upgrade proxy), and from the candidate and secondary
// into their captures.
const copyBufSize = 32 << 10

// bufPool lends copy buffers, so that a request does not allocate (and the
// collector does not sweep) a fresh 32 KiB buffer for each body it moves.
// It is an httputil.BufferPool.
type bufPool struct{ p sync.Pool }

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}}
}

func (b *bufPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufPool) put(p *[]byte) { b.p.Put(p) }

// rpPool adapts bufPool to httputil.BufferPool, whose Get and Put take the
// slice itself (Put costs one small allocation for the slice header).
type rpPool struct{ pool *bufPool }

func (r rpPool) Get() []byte { return *r.pool.get() }

func (r rpPool) Put(b []byte) {
	if cap(b) >= copyBufSize {
		b = b[:copyBufSize]
		r.pool.put(&b)
	}
}

// copyTo copies src into dst with a pooled buffer.
func (b *bufPool) copyTo(dst io.Writer, src io.Reader) (int64, error) {
	buf := b.get()
	defer b.put(buf)
	// Hide any ReaderFrom or WriterTo so that the pooled buffer is used.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *buf)
}
