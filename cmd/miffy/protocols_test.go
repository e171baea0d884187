package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testCertFiles writes httptest's certificate (for 127.0.0.1 and
// example.com) and its key as PEM files, and returns them with a pool that
// trusts the certificate.
func testCertFiles(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	c := ts.TLS.Certificates[0]
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return certFile, keyFile, pool
}

// TestProtocols drives run() with clients of each protocol miffy serves:
// HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on a plain listener,
// HTTP/1.1 and HTTP/2 over TLS with the configured certificate. Each gets
// the reference's answer, and each request is shadowed (a mismatch record
// per client).
func TestProtocols(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ref, cand := demoUpstreams(t)
	certFile, keyFile, pool := testCertFiles(t)
	base := `
port = %[1]d
management_port = %[2]d
access_log = false
reference = "` + ref.URL + `"
candidate = "` + cand.URL + `"
routes = [{ path = "/api/{value}", key = "value" }]
[kafka]
"bootstrap.servers" = "` + b.Addr() + `"
`
	for _, tt := range []struct {
		name   string
		tls    bool
		protos func(*http.Protocols)
		proto  string
	}{
		{"HTTP/1.1", false, func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1"},
		{"h2c", false, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, "HTTP/2.0"},
		{"HTTP/1.1 over TLS", true, func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1"},
		{"HTTP/2 over TLS", true, func(p *http.Protocols) { p.SetHTTP2(true) }, "HTTP/2.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			topic := "diffs-" + strings.NewReplacer("/", "", ".", "", " ", "").Replace(tt.name)
			config := base + "topic = \"" + topic + "\"\n"
			scheme := "http"
			if tt.tls {
				scheme = "https"
				config += "[proxy]\ntls_cert_file = \"" + certFile + "\"\ntls_key_file = \"" + keyFile + "\"\n"
			}
			in := startMiffy(t, config)
			var protos http.Protocols
			tt.protos(&protos)
			tr := &http.Transport{Protocols: &protos, TLSClientConfig: &tls.Config{RootCAs: pool}}
			// Closed before miffy stops (cleanups run last in first out):
			// an HTTP/2 connection left open holds its shutdown for a second.
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			resp, err := client.Get(strings.Replace(in.proxy, "http", scheme, 1) + "/api/2")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Proto != tt.proto || resp.StatusCode != 200 || !strings.Contains(string(body), `"role":"reference"`) {
				t.Fatalf("%s %d %s, want %s 200 with the reference's answer", resp.Proto, resp.StatusCode, body, tt.proto)
			}
			recs := consume(t, b.Addr(), topic, 1)
			var rec struct {
				Request struct{ URI string } `json:"request"`
			}
			if err := json.Unmarshal(recs[0].Value, &rec); err != nil || rec.Request.URI != "/api/2" {
				t.Errorf("record %s (%v), want the mismatch of /api/2", recs[0].Value, err)
			}
		})
	}
}
