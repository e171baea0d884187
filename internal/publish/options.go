package publish

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// franz-go's defaults of kgo.BrokerMaxWriteBytes and
// kgo.ProducerBatchMaxBytes, which apply where message.max.bytes and
// batch.size are not set; finish checks that a batch fits in a write.
const (
	kgoMaxWriteBytes = 100 << 20
	kgoBatchMaxBytes = 1_000_012
)

// clientProps is the parsed form of the librdkafka-style properties.
type clientProps struct {
	opts []kgo.Opt

	acksAll     bool
	idempotence *bool // nil: not set

	batchSize, messageMax int64 // 0: not set

	protocol                          string
	mechanism, username, password     string
	caFile, certFile, keyFile, keyPwd string
	noHostnameCheck                   bool
	setSASL, setSSL                   []string // properties that need a SASL / SSL protocol
}

// propError is an error about one property, named the way it is written in
// the [kafka] section: kafka."acks": ...
func propError(key, format string, args ...any) error {
	return fmt.Errorf("kafka.%q: "+format, append([]any{key}, args...)...)
}

// ClientOptions maps the librdkafka-style properties of the [kafka] section
// onto franz-go client options. An unsupported property or a bad value is an
// error naming it: `kafka."foo.bar": not supported by miffy`,
// `kafka."acks": want all, 1 or 0, got "x"`.
//
// Supported: bootstrap.servers, client.id, acks, enable.idempotence,
// compression.type, linger.ms, batch.size, message.max.bytes,
// retry.backoff.ms, request.timeout.ms, security.protocol, sasl.mechanism
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), sasl.username, sasl.password,
// ssl.ca.location, ssl.certificate.location, ssl.key.location,
// ssl.key.password, ssl.endpoint.identification.algorithm (https, none).
//
// bootstrap.servers is required (config.default.toml gives it a value).
// Defaults: acks=all and the idempotent
// producer (no duplicates when a request is retried). Idempotence needs
// acks=all: with acks 1 or 0 it is turned off, unless enable.idempotence is
// set to true, which is then an error. Files (certificates, keys) are read
// here, so a missing file is reported at start-up.
func ClientOptions(props map[string]string) ([]kgo.Opt, error) {
	p := clientProps{acksAll: true, protocol: "plaintext"}
	seeds := "" // required: [kafka] "bootstrap.servers" has its default
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(props[k])
		if err := p.set(k, v, &seeds); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	var list []string
	for s := range strings.SplitSeq(seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return nil, propError("bootstrap.servers", "want host:port[,host:port...], got %q", seeds)
	}
	return append(p.opts, kgo.SeedBrokers(list...)), nil
}

// set parses one property.
func (p *clientProps) set(k, v string, seeds *string) error {
	switch {
	case k == "bootstrap.servers":
		*seeds = v
		return nil
	case k == "security.protocol", strings.HasPrefix(k, "sasl."), strings.HasPrefix(k, "ssl."):
		return p.setSecurity(k, v)
	}
	return p.setProducer(k, v)
}

// setProducer parses a property of the producer: what it sends, how it
// batches and retries.
func (p *clientProps) setProducer(k, v string) error {
	var err error
	var n int64
	switch k {
	case "client.id":
		if v == "" || len(v) > 256 {
			return propError(k, "want 1 to 256 characters, got %d", len(v))
		}
		p.opts = append(p.opts, kgo.ClientID(v))
	case "acks":
		return p.setAcks(v)
	case "enable.idempotence":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return propError(k, "want true or false, got %q", v)
		}
		p.idempotence = &b
	case "compression.type":
		return p.setCompression(v)
	case "linger.ms":
		if n, err = parseInt(k, v, 0, 60_000); err == nil {
			p.opts = append(p.opts, kgo.ProducerLinger(time.Duration(n)*time.Millisecond))
		}
	case "batch.size":
		if n, err = parseInt(k, v, 512, 1<<30); err == nil {
			p.batchSize = n
			p.opts = append(p.opts, kgo.ProducerBatchMaxBytes(int32(n)))
		}
	case "message.max.bytes":
		if n, err = parseInt(k, v, 1<<10, 1<<30); err == nil {
			p.messageMax = n
			p.opts = append(p.opts, kgo.BrokerMaxWriteBytes(int32(n)))
		}
	case "retry.backoff.ms":
		if n, err = parseInt(k, v, 1, 300_000); err == nil {
			p.opts = append(p.opts, kgo.RetryBackoffFn(retryBackoff(time.Duration(n)*time.Millisecond)))
		}
	case "request.timeout.ms":
		if n, err = parseInt(k, v, 100, math.MaxInt32); err == nil {
			p.opts = append(p.opts, kgo.ProduceRequestTimeout(time.Duration(n)*time.Millisecond))
		}
	default:
		return propError(k, "not supported by miffy")
	}
	return err
}

// setAcks parses acks.
func (p *clientProps) setAcks(v string) error {
	switch v {
	case "all", "-1":
		p.acksAll = true
	case "1":
		p.acksAll = false
		p.opts = append(p.opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		p.acksAll = false
		p.opts = append(p.opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		return propError("acks", "want all, 1 or 0, got %q", v)
	}
	return nil
}

// setCompression parses compression.type.
func (p *clientProps) setCompression(v string) error {
	var c kgo.CompressionCodec
	switch strings.ToLower(v) {
	case "none":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return propError("compression.type", "want none, gzip, snappy, lz4 or zstd, got %q", v)
	}
	p.opts = append(p.opts, kgo.ProducerBatchCompression(c))
	return nil
}

// setSecurity parses a property of the connection's security:
// security.protocol, sasl.* and ssl.*.
func (p *clientProps) setSecurity(k, v string) error {
	switch k {
	case "security.protocol":
		switch lv := strings.ToLower(v); lv {
		case "plaintext", "ssl", "sasl_plaintext", "sasl_ssl":
			p.protocol = lv
		default:
			return propError(k, "want plaintext, ssl, sasl_plaintext or sasl_ssl, got %q", v)
		}
		return nil
	case "sasl.mechanism":
		switch uv := strings.ToUpper(v); uv {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			p.mechanism = uv
		default:
			return propError(k, "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", v)
		}
	case "sasl.username":
		p.username = v
	case "sasl.password":
		p.password = v
	case "ssl.ca.location":
		p.caFile = v
	case "ssl.certificate.location":
		p.certFile = v
	case "ssl.key.location":
		p.keyFile = v
	case "ssl.key.password":
		p.keyPwd = v
	case "ssl.endpoint.identification.algorithm":
		switch strings.ToLower(v) {
		case "https":
			p.noHostnameCheck = false
		case "none", "":
			p.noHostnameCheck = true
		default:
			return propError(k, "want https or none, got %q", v)
		}
	default:
		return propError(k, "not supported by miffy")
	}
	if strings.HasPrefix(k, "sasl.") {
		p.setSASL = append(p.setSASL, k)
	} else {
		p.setSSL = append(p.setSSL, k)
	}
	return nil
}

// finish checks the properties against each other and adds the options
// that depend on several of them.
func (p *clientProps) finish() error {
	switch {
	case p.acksAll:
		if p.idempotence != nil && !*p.idempotence {
			p.opts = append(p.opts, kgo.DisableIdempotentWrite())
		}
	case p.idempotence != nil && *p.idempotence:
		return propError("enable.idempotence", "true needs acks=all")
	default:
		p.opts = append(p.opts, kgo.DisableIdempotentWrite())
	}
	// franz-go wants a batch to fit in a request; unset, each is
	// franz-go's own default.
	writeMax := cmp.Or(p.messageMax, kgoMaxWriteBytes)
	batchMax := cmp.Or(p.batchSize, kgoBatchMaxBytes)
	if batchMax > writeMax {
		if p.batchSize > 0 {
			return propError("batch.size", "%d is larger than message.max.bytes (%d)", batchMax, writeMax)
		}
		return propError("message.max.bytes", "%d is smaller than batch.size (default %d)", writeMax, batchMax)
	}

	useSASL := strings.HasPrefix(p.protocol, "sasl_")
	useSSL := strings.HasSuffix(p.protocol, "ssl")
	if !useSASL && len(p.setSASL) > 0 {
		return propError(p.setSASL[0], "needs security.protocol sasl_plaintext or sasl_ssl, got %s", p.protocol)
	}
	if !useSSL && len(p.setSSL) > 0 {
		return propError(p.setSSL[0], "needs security.protocol ssl or sasl_ssl, got %s", p.protocol)
	}
	if useSASL {
		m, err := p.saslMechanism()
		if err != nil {
			return err
		}
		p.opts = append(p.opts, kgo.SASL(m))
	}
	if useSSL {
		tc, err := p.tlsConfig()
		if err != nil {
			return err
		}
		p.opts = append(p.opts, kgo.DialTLSConfig(tc))
	}
	return nil
}

func (p *clientProps) saslMechanism() (sasl.Mechanism, error) {
	switch {
	case p.mechanism == "":
		return nil, propError("sasl.mechanism", "required with security.protocol %s", p.protocol)
	case p.username == "":
		return nil, propError("sasl.username", "required with security.protocol %s", p.protocol)
	case p.password == "":
		return nil, propError("sasl.password", "required with security.protocol %s", p.protocol)
	}
	switch p.mechanism {
	case "PLAIN":
		return plain.Auth{User: p.username, Pass: p.password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: p.username, Pass: p.password}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: p.username, Pass: p.password}.AsSha512Mechanism(), nil
	}
}

func (p *clientProps) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.caFile != "" {
		pemData, err := os.ReadFile(p.caFile)
		if err != nil {
			return nil, propError("ssl.ca.location", "reading CA certificates: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, propError("ssl.ca.location", "no PEM certificate in %s", p.caFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case p.certFile != "" && p.keyFile != "":
		cert, err := loadKeyPair(p.certFile, p.keyFile, p.keyPwd)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	case p.certFile != "":
		return nil, propError("ssl.key.location", "required with ssl.certificate.location")
	case p.keyFile != "":
		return nil, propError("ssl.certificate.location", "required with ssl.key.location")
	case p.keyPwd != "":
		return nil, propError("ssl.key.password", "set without ssl.key.location")
	}
	if p.noHostnameCheck {
		// librdkafka's "none": verify the chain, not the host name.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return tc, nil
}

// loadKeyPair reads a PEM certificate and key; password decrypts a legacy
// encrypted PEM key ("Proc-Type: 4,ENCRYPTED").
func loadKeyPair(certFile, keyFile, password string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, propError("ssl.certificate.location", "reading certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, propError("ssl.key.location", "reading key: %w", err)
	}
	if password != "" {
		block, _ := pem.Decode(keyPEM)
		switch {
		case block == nil:
			return tls.Certificate{}, propError("ssl.key.location", "no PEM block in %s", keyFile)
		case block.Type == "ENCRYPTED PRIVATE KEY":
			return tls.Certificate{}, propError("ssl.key.location", "encrypted PKCS#8 keys are not supported; decrypt the key (openssl pkey) or use a legacy encrypted PEM key")
		case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // the only encrypted PEM form the standard library reads
			der, err := x509.DecryptPEMBlock(block, []byte(password)) //nolint:staticcheck // see above
			if err != nil {
				return tls.Certificate{}, propError("ssl.key.password", "decrypting %s: %w", keyFile, err)
			}
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, propError("ssl.key.location", "loading key pair: %w", err)
	}
	return cert, nil
}

// parseInt parses an integer property within [lo, hi].
func parseInt(key, v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, propError(key, "want an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

// retryBackoff backs off exponentially from base up to max(base, 1s), with
// ±20% jitter, like librdkafka's retry.backoff.ms and retry.backoff.max.ms.
func retryBackoff(base time.Duration) func(int) time.Duration {
	ceiling := max(base, time.Second)
	return func(tries int) time.Duration {
		d := ceiling
		if shift := tries - 1; shift >= 0 && shift < 30 {
			d = min(base<<shift, ceiling)
		}
		return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
}
