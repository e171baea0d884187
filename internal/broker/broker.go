// Package broker runs an embedded Kafka-protocol broker (franz-go's kfake)
// for `miffy demo` and for tests: one node, topics created on first use,
// data in memory or in a directory, old records removed after a retention
// time so that a long demo does not grow without bound.
package broker

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the address to listen on, host:port. Port 0 picks a free
	// port (see Broker.Addr). Required.
	Addr string
	// DataDir keeps the topics on disk, reloaded by the next Start with the
	// same directory. If empty, data lives in memory and dies with Close.
	DataDir string
	// Retention is how long records are kept; older ones are removed every
	// Retention/10 (between 100ms and 1m). If zero, they are kept until
	// Close (or, with DataDir, for good).
	Retention time.Duration
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Start listens on cfg.Addr and serves the Kafka protocol until Close.
// Topics are created on first use (by a producer or consumer that allows
// it, as franz-go and kcat do) with one partition, so a reader sees records
// in the order they were written.
func Start(cfg Config, log zerolog.Logger) (*Broker, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("addr: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("addr: port %q is not a number from 0 to 65535", port)
	}
	retention := cfg.Retention
	if retention < 0 {
		return nil, fmt.Errorf("retention: must not be negative, got %s", cfg.Retention)
	}

	// kfake listens on 127.0.0.1 only; our own listen function binds the
	// configured address instead, port 0 included.
	var ln net.Listener
	listen := func(network, _ string) (net.Listener, error) {
		l, err := net.Listen(network, net.JoinHostPort(host, port))
		if err != nil {
			return nil, err
		}
		ln = advertised(l)
		return ln, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
		kfake.BrokerConfigs(map[string]string{
			"log.retention.ms": retentionMS(retention),
		}),
		kfake.WithLogger(logger{log}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	b := &Broker{
		c:    c,
		addr: c.ListenAddrs()[0],
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if retention > 0 {
		go b.applyRetention(min(max(retention/10, 100*time.Millisecond), time.Minute))
	} else {
		close(b.done) // nothing expires
	}
	log.Info().Str("addr", b.addr).Str("data_dir", cfg.DataDir).Dur("retention", retention).Msg("embedded Kafka broker started")
	return b, nil
}

// retentionMS is Kafka's log.retention.ms for retention: -1 (no limit)
// for zero.
func retentionMS(retention time.Duration) string {
	if retention == 0 {
		return "-1"
	}
	return strconv.FormatInt(retention.Milliseconds(), 10)
}

// Addr returns the host:port the broker listens on (and advertises).
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker; with a DataDir, its data is saved first.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.done
		b.c.Close()
	})
}

// applyRetention removes expired records every interval. kfake's own
// cleaner only runs for topics with a retention set on the topic itself,
// and only hourly.
func (b *Broker) applyRetention(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.c.ApplyRetention()
		}
	}
}

// advertised wraps a listener so that its address, which kfake advertises
// to clients in metadata, is one they can dial: an unspecified host
// (0.0.0.0, ::) becomes 127.0.0.1.
func advertised(l net.Listener) net.Listener {
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return l
	}
	return addrListener{l, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port}}
}

type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }
