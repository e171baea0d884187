package publish

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// writeTLSFiles writes a self-signed certificate, its key, and the key
// encrypted with "pw" (legacy PEM encryption) into dir.
func writeTLSFiles(t *testing.T, dir string) (cert, key, encKey string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "miffy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	encBlock, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", keyDER, []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck // legacy format on purpose
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}),
		write("key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		write("key-enc.pem", encBlock)
}

func TestClientOptions(t *testing.T) {
	cert, key, encKey := writeTLSFiles(t, t.TempDir())
	tests := []struct {
		name  string
		props map[string]string
		want  string // error prefix; "" means accepted
	}{
		{"defaults", nil, ""},
		{"plain properties", map[string]string{
			"bootstrap.servers":  "a:9092, b:9092",
			"client.id":          "miffy-test",
			"acks":               "all",
			"enable.idempotence": "true",
			"compression.type":   "zstd",
			"linger.ms":          "5",
			"batch.size":         "65536",
			"message.max.bytes":  "1048576",
			"retry.backoff.ms":   "100",
			"request.timeout.ms": "30000",
		}, ""},
		{"acks 1 turns idempotence off", map[string]string{"acks": "1"}, ""},
		{"acks 0 with idempotence false", map[string]string{"acks": "0", "enable.idempotence": "false"}, ""},
		{"idempotence off", map[string]string{"enable.idempotence": "false"}, ""},
		{"compression none, gzip, snappy, lz4", map[string]string{"compression.type": "LZ4"}, ""},
		{"sasl_ssl with SCRAM and TLS files", map[string]string{
			"security.protocol":                     "SASL_SSL",
			"sasl.mechanism":                        "SCRAM-SHA-512",
			"sasl.username":                         "u",
			"sasl.password":                         "p",
			"ssl.ca.location":                       cert,
			"ssl.certificate.location":              cert,
			"ssl.key.location":                      encKey,
			"ssl.key.password":                      "pw",
			"ssl.endpoint.identification.algorithm": "none",
		}, ""},
		{"sasl_plaintext PLAIN", map[string]string{"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"}, ""},
		{"ssl with SCRAM-SHA-256 not needed, key unencrypted", map[string]string{"security.protocol": "ssl", "ssl.certificate.location": cert, "ssl.key.location": key, "ssl.endpoint.identification.algorithm": "https"}, ""},
		{"sasl SCRAM-SHA-256", map[string]string{"security.protocol": "sasl_plaintext", "sasl.mechanism": "scram-sha-256", "sasl.username": "u", "sasl.password": "p"}, ""},

		{"unsupported", map[string]string{"foo.bar": "1"}, `kafka."foo.bar": not supported by miffy`},
		{"bad acks", map[string]string{"acks": "x"}, `kafka."acks": want all, 1 or 0, got "x"`},
		{"idempotence needs acks=all", map[string]string{"acks": "1", "enable.idempotence": "true"}, `kafka."enable.idempotence": `},
		{"bad bool", map[string]string{"enable.idempotence": "maybe"}, `kafka."enable.idempotence": `},
		{"bad compression", map[string]string{"compression.type": "brotli"}, `kafka."compression.type": `},
		{"bad linger", map[string]string{"linger.ms": "-1"}, `kafka."linger.ms": `},
		{"bad batch size", map[string]string{"batch.size": "10"}, `kafka."batch.size": `},
		{"batch larger than request", map[string]string{"batch.size": "2000000", "message.max.bytes": "1048576"}, `kafka."batch.size": `},
		{"request smaller than default batch", map[string]string{"message.max.bytes": "4096"}, `kafka."message.max.bytes": `},
		{"bad backoff", map[string]string{"retry.backoff.ms": "soon"}, `kafka."retry.backoff.ms": `},
		{"bad request timeout", map[string]string{"request.timeout.ms": "10"}, `kafka."request.timeout.ms": `},
		{"bad protocol", map[string]string{"security.protocol": "tls"}, `kafka."security.protocol": `},
		{"bad mechanism", map[string]string{"security.protocol": "sasl_ssl", "sasl.mechanism": "GSSAPI"}, `kafka."sasl.mechanism": `},
		{"sasl without protocol", map[string]string{"sasl.username": "u"}, `kafka."sasl.username": needs security.protocol`},
		{"ssl without protocol", map[string]string{"ssl.ca.location": cert}, `kafka."ssl.ca.location": needs security.protocol`},
		{"sasl without mechanism", map[string]string{"security.protocol": "sasl_plaintext", "sasl.username": "u", "sasl.password": "p"}, `kafka."sasl.mechanism": required`},
		{"sasl without password", map[string]string{"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN", "sasl.username": "u"}, `kafka."sasl.password": required`},
		{"missing CA file", map[string]string{"security.protocol": "ssl", "ssl.ca.location": "/nonexistent/ca.pem"}, `kafka."ssl.ca.location": `},
		{"CA file without PEM", map[string]string{"security.protocol": "ssl", "ssl.ca.location": os.Args[0]}, `kafka."ssl.ca.location": `},
		{"cert without key", map[string]string{"security.protocol": "ssl", "ssl.certificate.location": cert}, `kafka."ssl.key.location": `},
		{"wrong key password", map[string]string{"security.protocol": "ssl", "ssl.certificate.location": cert, "ssl.key.location": encKey, "ssl.key.password": "nope"}, `kafka."ssl.key.password": `},
		{"bad hostname check", map[string]string{"security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "dns"}, `kafka."ssl.endpoint.identification.algorithm": `},
		{"empty bootstrap", map[string]string{"bootstrap.servers": " , "}, `kafka."bootstrap.servers": `},
		{"no bootstrap", map[string]string{"bootstrap.servers": ""}, `kafka."bootstrap.servers": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.props["bootstrap.servers"]; !ok {
				tt.props = maps.Clone(tt.props)
				if tt.props == nil {
					tt.props = map[string]string{}
				}
				tt.props["bootstrap.servers"] = "127.0.0.1:9092" // [kafka]'s, always set
			}
			opts, err := ClientOptions(tt.props)
			if tt.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("error = %v, want prefix %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// franz-go checks the options against each other.
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatalf("kgo.NewClient: %v", err)
			}
			cl.Close()
		})
	}
}

func TestClientOptionsValues(t *testing.T) {
	opts, err := ClientOptions(map[string]string{"bootstrap.servers": "a:1,b:2", "client.id": "x", "acks": "1"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValues(kgo.SeedBrokers); len(got) != 1 || strings.Join(got[0].([]string), ",") != "a:1,b:2" {
		t.Errorf("seed brokers = %v", got)
	}
	if got := cl.OptValue(kgo.DisableIdempotentWrite); got != true {
		t.Errorf("idempotence not disabled with acks=1: %v", got)
	}
	if got := cl.OptValue(kgo.ClientID); got != "x" {
		t.Errorf("client id = %v", got)
	}
}

func TestRetryBackoff(t *testing.T) {
	f := retryBackoff(100 * time.Millisecond)
	for tries, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 100: time.Second} {
		got := f(tries)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(%d) = %s, want %s ±20%%", tries, got, want)
		}
	}
}
