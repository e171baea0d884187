// Package server serves miffy's clients with Go's net/http server: HTTP/1.1
// behind a request guard that fails closed (guard.go), HTTP/2 over TLS
// (ALPN), and unencrypted HTTP/2 with prior knowledge (h2c). TLS
// certificates are read from files and reloaded when they change.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"time"
)

// Config tunes a Server. The timeouts mean what they mean for
// net/http.Server; zero is no limit.
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds a request head. If zero, net/http's 1 MiB.
	MaxHeaderBytes int
	// TLS, when its CertFile is set, serves TLS (1.2 at least) with HTTP/2
	// and HTTP/1.1 offered by ALPN; else plain TCP with HTTP/1.1 and h2c.
	TLS TLSFiles
	// HandshakeTimeout bounds a TLS handshake. If zero, 10s.
	HandshakeTimeout time.Duration
	// ErrorLog gets net/http's own log lines. If nil, the log package's.
	ErrorLog *log.Logger
	// Rejected, if set, hears of each request the guard refused, with the
	// reason (a short snake_case word).
	Rejected func(reason string)
}

// Server is an http.Server with miffy's guard in front. Make it with New.
type Server struct {
	cfg   Config
	srv   *http.Server
	g     *guard
	certs *certStore // nil without TLS
}

// guard is what every guarded connection of a server shares.
type guard struct {
	maxUnit  int // largest head, chunk line or trailer block held
	rejected func(reason string)
}

// New returns a server for h. It reads the TLS files, if any, at once.
func New(cfg Config, h http.Handler) (*Server, error) {
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	maxHead := cfg.MaxHeaderBytes
	if maxHead == 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	s := &Server{cfg: cfg, g: &guard{
		// net/http's own bound is MaxHeaderBytes and 4 KiB of slack: past it
		// it answers 431 itself.
		maxUnit:  maxHead + 4096 + 1,
		rejected: cfg.Rejected,
	}}
	if s.g.rejected == nil {
		s.g.rejected = func(string) {}
	}
	if cfg.TLS.CertFile != "" {
		certs, err := newCertStore(cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.certs = certs
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(s.certs != nil)
	protos.SetUnencryptedHTTP2(s.certs == nil)
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          cfg.ErrorLog,
		Protocols:         &protos,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			switch gc := c.(type) {
			case *guardConn:
				ctx = context.WithValue(ctx, connKey{}, gc)
			case tlsGuardConn:
				ctx = context.WithValue(ctx, connKey{}, gc.guardConn)
			}
			return ctx
		},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.certs != nil {
		tl := newTLSListener(ln, s.certs.config(), s.cfg.HandshakeTimeout)
		return s.srv.Serve(&guardListener{Listener: tl, g: s.g})
	}
	return s.srv.Serve(&guardListener{Listener: ln, g: s.g, h2c: true})
}

// Shutdown stops accepting, then waits for the requests in flight (up to
// ctx), as http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// ReloadTLS reads the TLS files again. On an error the files in use stay.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.load()
}

// WatchTLS reloads the TLS files whenever one of them changes, until ctx
// is done; errors go to onErr, successful reloads to onReload.
func (s *Server) WatchTLS(ctx context.Context, onReload func(), onErr func(error)) error {
	if s.certs == nil {
		return nil
	}
	return s.certs.watch(ctx, onReload, onErr)
}

type connKey struct{}

// Tunnel tells the guard of the request's connection that its bytes are
// no longer HTTP/1 requests: the upstream switched protocols (101) for a
// request that passed every check. It is a no-op on HTTP/2 connections.
func Tunnel(ctx context.Context) {
	if gc, ok := ctx.Value(connKey{}).(*guardConn); ok {
		gc.Tunnel()
	}
}

// guardListener puts every HTTP/1 connection behind the guard. A TLS
// connection that negotiated HTTP/2 is handed on as it is: net/http's
// HTTP/2 server frames it.
type guardListener struct {
	net.Listener
	g   *guard
	h2c bool
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &guardConn{Conn: c, g: l.g, h2c: l.h2c}
	if tc, ok := c.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return tc, nil
		}
		return tlsGuardConn{gc, tc}, nil
	}
	return gc, nil
}

// tlsListener does each connection's TLS handshake on a goroutine of its
// own, so that a slow client holds up nobody, and hands on the connections
// whose handshake completed in time.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	conns   chan net.Conn
	errs    chan error
	done    chan struct{}
}

func newTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration) *tlsListener {
	l := &tlsListener{Listener: ln, cfg: cfg, timeout: timeout,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		raw.Close()
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return l.Listener.Close()
}
