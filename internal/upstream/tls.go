package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles is how an upstream's TLS is set up: the files to read, the
// name to expect. Its zero value is Go's defaults (the system's roots,
// the name of the URL's host, no client certificate).
type TLSFiles struct {
	// CAFile holds the PEM certificates of the authorities that sign the
	// upstream's certificate, instead of the system's roots.
	CAFile string
	// CertFile and KeyFile hold the PEM client certificate (chain) and
	// its key, for upstreams that require one (mutual TLS). Both or
	// neither.
	CertFile, KeyFile string
	// ServerName is the name the upstream's certificate must hold (and
	// the SNI sent). If empty, the URL's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate the upstream presents.
	InsecureSkipVerify bool
}

// Load reads the files and returns the TLS configuration (TLS 1.2 at
// least), or nil where f is zero. Errors name the file.
func (f TLSFiles) Load() (*tls.Config, error) {
	if f == (TLSFiles{}) {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading CA file %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = roots
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("a client certificate needs both a certificate file and a key file")
	}
	return cfg, nil
}
