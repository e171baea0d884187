package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki is a test CA that signs certificates into PEM files.
type pki struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a leaf certificate and its key; it returns their paths.
func (p *pki) issue(name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

func protoHandler(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
}

// tlsClient's connections are closed when the test ends, before the
// server shuts down (an HTTP/2 connection left open holds Shutdown a
// second).
func tlsClient(t *testing.T, pool *x509.CertPool, h2 bool, certs ...tls.Certificate) *http.Client {
	var protos http.Protocols
	protos.SetHTTP1(!h2)
	protos.SetHTTP2(h2)
	tr := &http.Transport{Protocols: &protos,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func getBody(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestTLS: with a certificate, clients speak HTTP/2 (ALPN) or HTTP/1.1
// (through the guard), and handlers see the TLS state either way; a
// rewritten certificate is served after ReloadTLS, to new connections.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	cert, key := p.issue("server", 2, x509.ExtKeyUsageServerAuth)
	srvCfg := Config{TLS: TLSFiles{CertFile: cert, KeyFile: key}}
	srv, err := New(srvCfg, http.HandlerFunc(protoHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv)
	for _, tt := range []struct {
		h2   bool
		want string
	}{{true, "HTTP/2.0 true"}, {false, "HTTP/1.1 true"}} {
		got, err := getBody(t, tlsClient(t, p.pool, tt.h2), "https://"+addr+"/")
		if err != nil || got != tt.want {
			t.Errorf("h2 %v: %q, %v; want %q", tt.h2, got, err, tt.want)
		}
	}

	p.issue("server", 3, x509.ExtKeyUsageServerAuth) // the same files, a new serial
	if err := srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 3 {
		t.Errorf("after the reload the server shows serial %d, want 3", got)
	}

	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	if err := srv.ReloadTLS(); err == nil {
		t.Error("reloading a broken certificate: no error")
	}
	if _, err := getBody(t, tlsClient(t, p.pool, true), "https://"+addr+"/"); err != nil {
		t.Errorf("after a failed reload: %v (the files in use must stay)", err)
	}
}

// TestTLSClientCA: with tls_client_ca_file, a client without a certificate
// signed by that CA is refused in the handshake.
func TestTLSClientCA(t *testing.T) {
	p := newPKI(t)
	cert, key := p.issue("server", 2, x509.ExtKeyUsageServerAuth)
	ccert, ckey := p.issue("client", 4, x509.ExtKeyUsageClientAuth)
	srv, err := New(Config{TLS: TLSFiles{CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(p.dir, "ca.pem")}},
		http.HandlerFunc(protoHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv)
	if _, err := getBody(t, tlsClient(t, p.pool, true), "https://"+addr+"/"); err == nil {
		t.Error("a client without a certificate was served")
	}
	pair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	for _, h2 := range []bool{true, false} {
		if got, err := getBody(t, tlsClient(t, p.pool, h2, pair), "https://"+addr+"/"); err != nil || got[len(got)-4:] != "true" {
			t.Errorf("h2 %v with a client certificate: %q, %v", h2, got, err)
		}
	}
}
