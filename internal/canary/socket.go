package canary

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// SocketConfig is the maxwells-daemon decision socket.
type SocketConfig struct {
	// Path of the unix socket, e.g. /tmp/maxwells-daemon.sock. A stale
	// socket file there is replaced.
	Path string
	// Mode is the socket file's permission bits. If zero, 0666 (any local
	// user, nginx's worker included, may ask).
	Mode fs.FileMode
	// Timeout bounds one exchange. If zero, 1s.
	Timeout time.Duration
}

// maxLine bounds what a client may send before its newline.
const maxLine = 1024

// Socket serves the maxwells-daemon protocol on a unix socket for other
// proxies (nginx with Lua): one exchange per connection. The client writes
// its stored assignment (or nothing) and "\n"; the socket answers the
// assignment to keep (a new random number in [0,1) when none or an invalid
// one was sent), "\n", then "canary" when assignment < weight/100, else
// "master", and "\n". The weight is the router's, read live; the router
// is looked up for every exchange, so that a rebuilt routing table is
// followed. Without a router the answer is "master" (fail-safe).
type Socket struct {
	ln      *net.UnixListener
	router  func() *Router
	stats   *Statsd
	log     zerolog.Logger
	timeout time.Duration
	wg      sync.WaitGroup
	once    sync.Once
}

// ListenSocket starts serving decisions of the router that router returns
// (nil: none) on the socket. stats may be nil.
func ListenSocket(cfg SocketConfig, router func() *Router, stats *Statsd, log zerolog.Logger) (*Socket, error) {
	if cfg.Mode == 0 {
		cfg.Mode = 0o666
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if fi, err := os.Lstat(cfg.Path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		if c, err := net.Dial("unix", cfg.Path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: another process is serving it", cfg.Path)
		}
		os.Remove(cfg.Path) // stale, left by a process that died
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Path, err)
	}
	if err := os.Chmod(cfg.Path, cfg.Mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting the mode of %s: %w", cfg.Path, err)
	}
	s := &Socket{ln: ln, router: router, stats: stats, log: log.With().Str("component", "canary-socket").Logger(), timeout: cfg.Timeout}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the socket's path.
func (s *Socket) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, waits for the exchanges in flight (each bounded by
// the timeout) and removes the socket file.
func (s *Socket) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close() // also unlinks the file
		s.wg.Wait()
	})
	return err
}

func (s *Socket) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.stats.Count("maxwellsdaemon.server.failure", 1)
			s.log.Warn().Err(err).Msg("accepting a connection")
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.wg.Add(1)
		go s.exchange(conn)
	}
}

// exchange answers one connection.
func (s *Socket) exchange(conn net.Conn) {
	start := time.Now()
	defer s.wg.Done()
	defer conn.Close()
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Interface("panic", v).Bytes("stack", debug.Stack()).Msg("decision socket exchange panicked")
		}
	}()
	conn.SetDeadline(start.Add(s.timeout))
	line, err := readLine(conn)
	if err != nil {
		s.stats.Count("maxwellsdaemon.server.failure", 1)
		s.log.Debug().Err(err).Msg("reading the assignment")
		return
	}
	a, side, valid := assign(s.router(), line)
	loc := "master"
	if side == Candidate {
		loc = "canary"
	}
	if valid {
		s.stats.Count("maxwellsdaemon.handler.success", 1, "location:"+loc)
	} else if line != "" {
		s.stats.Count("maxwellsdaemon.handler.failure", 1, "location:"+loc)
	} else {
		s.stats.Count("maxwellsdaemon.handler.success", 1, "location:"+loc)
	}
	if _, err := io.WriteString(conn, FormatAssignment(a)+"\n"+loc+"\n"); err != nil {
		s.stats.Count("maxwellsdaemon.server.failure", 1, "location:"+loc)
		s.log.Debug().Err(err).Msg("writing the answer")
		return
	}
	s.stats.Count("maxwellsdaemon.server.success", 1, "location:"+loc)
	s.stats.Timing("maxwellsdaemon.server.delay", time.Since(start), "location:"+loc)
}

// readLine reads up to the first newline (not included); a line longer
// than maxLine is an error.
func readLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxLine+1), 64)
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if err == nil {
			return string(b[:len(b)-1]), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(b) > maxLine {
			return "", errors.New("assignment line too long")
		}
		return "", fmt.Errorf("reading: %w", err)
	}
}

// assign is Router.Assign, or the fail-safe answer without a router.
func assign(r *Router, stored string) (float64, Side, bool) {
	if r == nil {
		a, ok := ParseAssignment(stored)
		if !ok {
			a = drawAssignment(true, 1)
		}
		return a, Reference, ok
	}
	return r.Assign(stored)
}
