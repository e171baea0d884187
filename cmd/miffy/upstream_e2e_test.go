package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clientCert writes a self-signed client certificate and its key.
func clientCert(t *testing.T, dir string) (cert *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "miffy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ = x509.ParseCertificate(der)
	return cert, certFile, keyFile
}

// TestUpstreamTLSEndToEnd: an HTTPS reference signed by a private CA and
// requiring a client certificate is reached through [upstream]
// tls_ca_file, tls_cert_file and tls_key_file; without the client
// certificate the client gets 502.
func TestUpstreamTLSEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	client, certFile, keyFile := clientCert(t, dir)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(client)
	ref := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"from":"reference"}`)
	}))
	ref.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	ref.StartTLS()
	t.Cleanup(ref.Close)
	caFile := filepath.Join(dir, "server-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ref.Certificate().Raw}), 0o600)

	b := startBroker(t)
	base := `
port = %[1]d
management_port = %[2]d
reference = "` + ref.URL + `"
candidate = "` + ref.URL + `"
routes = [{ path = "/api/{value}" }]
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
[upstream]
tls_ca_file = "` + caFile + `"
`
	in := startMiffy(t, base+"tls_cert_file = \""+certFile+"\"\ntls_key_file = \""+keyFile+"\"\n")
	if code, body := get(t, in.proxy+"/api/1"); code != 200 || body != `{"from":"reference"}` {
		t.Errorf("with the client certificate: %d %q", code, body)
	}
	in = startMiffy(t, base)
	if code, _ := get(t, in.proxy+"/api/1"); code != http.StatusBadGateway {
		t.Errorf("without the client certificate: %d, want 502", code)
	}
}
