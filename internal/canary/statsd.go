package canary

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Statsd sends metrics to a statsd agent over UDP in the DogStatsD format
// (tags as "|#name:value"). A nil *Statsd sends nothing. Sends never block
// and their errors are ignored: metrics must not hold up traffic.
type Statsd struct {
	conn net.Conn
}

// DialStatsd returns a client for the agent at addr ("127.0.0.1:8125").
func DialStatsd(addr string) (*Statsd, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing statsd: %w", err)
	}
	return &Statsd{conn: conn}, nil
}

// Count adds n to a counter.
func (s *Statsd) Count(name string, n int64, tags ...string) {
	s.send(name, strconv.FormatInt(n, 10), "c", tags)
}

// Timing records a duration in milliseconds as a histogram sample.
func (s *Statsd) Timing(name string, d time.Duration, tags ...string) {
	s.send(name, strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64), "h", tags)
}

func (s *Statsd) send(name, value, typ string, tags []string) {
	if s == nil {
		return
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(':')
	b.WriteString(value)
	b.WriteByte('|')
	b.WriteString(typ)
	if len(tags) > 0 {
		b.WriteString("|#")
		b.WriteString(strings.Join(tags, ","))
	}
	b.WriteByte('\n')
	s.conn.Write([]byte(b.String()))
}

// Close closes the client; a nil *Statsd is fine.
func (s *Statsd) Close() error {
	if s == nil {
		return nil
	}
	return s.conn.Close()
}
