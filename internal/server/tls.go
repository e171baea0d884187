package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
)

// TLSFiles names the PEM files of a TLS listener.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate chain and key.
	CertFile, KeyFile string
	// ClientCAFile, if set, requires clients to present a certificate
	// signed by one of its CAs.
	ClientCAFile string
}

// certStore holds the TLS configuration built from the files, swapped
// whole on each reload; a handshake takes the one in use when it starts.
type certStore struct {
	files TLSFiles
	cur   atomic.Pointer[tls.Config]
}

func newCertStore(files TLSFiles) (*certStore, error) {
	s := &certStore{files: files}
	return s, s.load()
}

// load reads the files and, if they make a usable configuration, puts it
// in use.
func (s *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(s.files.CertFile, s.files.KeyFile)
	if err != nil {
		return fmt.Errorf("reading tls_cert_file and tls_key_file: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if s.files.ClientCAFile != "" {
		pem, err := os.ReadFile(s.files.ClientCAFile)
		if err != nil {
			return fmt.Errorf("reading tls_client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("tls_client_ca_file: no PEM certificate in it")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.cur.Store(cfg)
	return nil
}

// config is the listener's configuration: it hands each handshake the
// configuration in use at that moment.
func (s *certStore) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
}

// watch reloads when a file changes (written in place, or replaced as
// config managers and cert-manager do), until ctx is done.
func (s *certStore) watch(ctx context.Context, onReload func(), onErr func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, f := range []string{s.files.CertFile, s.files.KeyFile, s.files.ClientCAFile} {
		if f == "" {
			continue
		}
		names[filepath.Clean(f)] = true
		if err := w.Add(filepath.Dir(f)); err != nil {
			w.Close()
			return err
		}
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if names[filepath.Clean(ev.Name)] && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					if err := s.load(); err != nil {
						onErr(err)
					} else {
						onReload()
					}
				}
			case err, ok := <-w.Errors:
				if ok {
					onErr(err)
				}
			}
		}
	}()
	return nil
}
