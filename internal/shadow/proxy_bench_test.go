package shadow

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// The proxy benchmarks use a raw client and raw upstreams that allocate
// nothing per request, so that allocs/op is what miffy allocates for one
// client request: the server's connection handling, the reverse proxy, and,
// when shadowed, the replay, the comparison and the record.

const (
	benchRefBody  = `{"id":7,"name":"item 7","price":7.99,"currency":"EUR","tags":["bench","miffy","shadow"],"stock":{"count":49,"warehouse":"north"}}`
	benchCandBody = `{"id":7,"name":"item 7","price":7.49,"currency":"EUR","tags":["bench","miffy","shadow"],"stock":{"count":49,"warehouse":"north"}}`
)

// benchUpstream is a keep-alive HTTP/1.1 server answering every request
// (GET, no body) with one canned JSON response.
func benchUpstream(b *testing.B, body string) *url.URL {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go serveCanned(c, resp)
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u
}

func serveCanned(c net.Conn, resp []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		for { // request line and headers, up to the blank line
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// benchClient sends one canned request at a time on a keep-alive
// connection and reads the answer into a reused buffer.
type benchClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func newBenchClient(b *testing.B, addr, path string) *benchClient {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: miffy-bench/1\r\n" +
		"Accept: application/json\r\nAccept-Encoding: identity\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"
	return &benchClient{c: c, br: bufio.NewReaderSize(c, 8<<10), req: []byte(req), buf: make([]byte, 4<<10)}
}

var errBenchResponse = errors.New("unexpected response")

// do sends the request and reads the response; it needs a Content-Length.
func (bc *benchClient) do() (status int, body []byte, err error) {
	if _, err := bc.c.Write(bc.req); err != nil {
		return 0, nil, err
	}
	line, err := bc.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 {
		return 0, nil, errBenchResponse
	}
	status = atoiBytes(line[9:12])
	n := -1
	for {
		line, err := bc.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			n = atoiBytes(bytes.TrimSpace(line[15:]))
		}
	}
	if n < 0 {
		return 0, nil, errBenchResponse
	}
	if n > len(bc.buf) {
		bc.buf = make([]byte, n)
	}
	if _, err := io.ReadFull(bc.br, bc.buf[:n]); err != nil {
		return 0, nil, err
	}
	return status, bc.buf[:n], nil
}

func atoiBytes(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// discard is a Publisher that counts and drops records.
type discard struct{ n atomic.Int64 }

func (d *discard) Publish(*publish.Record) bool { d.n.Add(1); return true }

// benchProxy serves a one-route table (/api/{value}) on a real listener,
// with miffy's own server in front (as cmd/miffy runs it by default).
func benchProxy(b *testing.B, ref, cand *url.URL) (*Proxy, *discard, string) {
	b.Helper()
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		b.Fatal(err)
	}
	rt := &Route{Pattern: "/api/{value}", Key: "value", Reference: ref, Candidate: cand, Sample: 1, Comparer: cmp}
	table, err := NewTable(ref, []*Route{rt})
	if err != nil {
		b.Fatal(err)
	}
	pub := &discard{}
	p := New(testConfig(Config{ForwardedHeaders: true}), table, compare.NewJudge(compare.NoiseConfig{}, time.Now), &publish.Outlet{Sink: pub}, zerolog.Nop(), prometheus.NewRegistry())
	addr := strings.TrimPrefix(serveFront(b, p), "http://")
	b.Cleanup(func() { p.Close(context.Background()) })
	return p, pub, addr
}

func benchRoundTrips(b *testing.B, bc *benchClient, wantBody string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		status, body, err := bc.do()
		if err != nil {
			b.Fatal(err)
		}
		if status != http.StatusOK || string(body) != wantBody {
			b.Fatalf("status %d, body %q", status, body)
		}
	}
}

// BenchmarkProxyDirect is the harness alone: the raw client against the raw
// upstream, no proxy. Subtract it from the others.
func BenchmarkProxyDirect(b *testing.B) {
	ref := benchUpstream(b, benchRefBody)
	benchRoundTrips(b, newBenchClient(b, ref.Host, "/api/7"), benchRefBody)
}

// BenchmarkProxyUnrouted is one request through Proxy.ServeHTTP that
// matches no route: a plain reverse proxy.
func BenchmarkProxyUnrouted(b *testing.B) {
	ref := benchUpstream(b, benchRefBody)
	cand := benchUpstream(b, benchRefBody)
	_, _, addr := benchProxy(b, ref, cand)
	benchRoundTrips(b, newBenchClient(b, addr, "/other/7"), benchRefBody)
}

// BenchmarkProxyShadowed is one request on a route under test: the client
// is answered by the reference while the request is replayed to the
// candidate, compared and (mismatch) handed to a publisher that discards.
// Replays run concurrently with the next request; replays/op reports how
// many finished, so that allocs/op is known to include them.
func BenchmarkProxyShadowed(b *testing.B) {
	for _, tc := range []struct{ name, cand string }{
		{"equal", benchRefBody},
		{"mismatch", benchCandBody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ref := benchUpstream(b, benchRefBody)
			cand := benchUpstream(b, tc.cand)
			p, pub, addr := benchProxy(b, ref, cand)
			benchRoundTrips(b, newBenchClient(b, addr, "/api/7"), benchRefBody)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			compared := testutil.ToFloat64(p.m.replays.WithLabelValues("/api/{value}", "compared"))
			dropped := testutil.ToFloat64(p.m.dropped.WithLabelValues("/api/{value}", "in_flight"))
			b.ReportMetric(compared/float64(b.N), "replays/op")
			b.ReportMetric(dropped/float64(b.N), "drops/op")
			b.ReportMetric(float64(pub.n.Load())/float64(b.N), "records/op")
		})
	}
}

// BenchmarkCompareAndPublish is a replay's work once both answers are in:
// decode, compare, build the record, publish (discarded). No network.
func BenchmarkCompareAndPublish(b *testing.B) {
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, tc := range []struct{ name, cand string }{
		{"equal", benchRefBody},
		{"mismatch", benchCandBody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := &Route{Pattern: "/api/{value}", Key: "value", Reference: u, Candidate: u, Sample: 1, Comparer: cmp}
			table, err := NewTable(u, []*Route{rt})
			if err != nil {
				b.Fatal(err)
			}
			pub := &discard{}
			p := New(testConfig(Config{}), table, compare.NewJudge(compare.NoiseConfig{}, time.Now), &publish.Outlet{Sink: pub}, zerolog.Nop(), prometheus.NewRegistry())
			_, params, _, _ := table.routes.Match("GET", "/api/7")
			h := http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(benchRefBody))}}
			x := &exchange{
				id: "bench-1", start: time.Now(), route: rt, params: params, method: "GET",
				uri: "/api/7", path: "/api/7", header: http.Header{"Accept": {"application/json"}},
				endpoint: rt.Name,
				ref:      side{url: "http://127.0.0.1:1/api/7", status: 200, header: h, cap: capture{buf: []byte(benchRefBody)}},
			}
			cand := side{url: "http://127.0.0.1:1/api/7", status: 200, header: h, cap: capture{buf: []byte(tc.cand)}}
			var sec side
			b.ReportAllocs()
			for b.Loop() {
				p.compareAndPublish(x, &cand, &sec)
			}
			b.ReportMetric(float64(pub.n.Load())/float64(b.N), "records/op")
		})
	}
}

// BenchmarkReplayHeader is the copy of the client's headers each shadowed
// request makes for its replays.
func BenchmarkReplayHeader(b *testing.B) {
	r := httptest.NewRequest("GET", "http://bench.example/api/7?x=1", nil)
	r.RemoteAddr = "192.0.2.10:54321"
	for k, v := range map[string]string{
		"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept":          "application/json",
		"Accept-Language": "en-GB,en;q=0.5",
		"Accept-Encoding": "gzip, deflate, br",
		"Authorization":   "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo",
		"Cookie":          "session=abc123; theme=dark",
		"X-Request-Id":    "0123456789abcdef",
		"Connection":      "keep-alive, X-Private",
		"Keep-Alive":      "timeout=5",
		"X-Private":       "hop",
	} {
		r.Header.Set(k, v)
	}
	for _, forwarded := range []bool{false, true} {
		b.Run(fmt.Sprintf("forwarded=%t", forwarded), func(b *testing.B) {
			b.ReportAllocs()
			p := &Proxy{cfg: Config{ForwardedHeaders: forwarded}}
			for b.Loop() {
				replayHeader(r)
				p.forwardFields(nil, r, "")
			}
		})
	}
}

// BenchmarkJoinURL builds an upstream URL, done for every upstream of a
// shadowed request.
func BenchmarkJoinURL(b *testing.B) {
	for _, tc := range []struct{ name, base, path, query string }{
		{"host", "http://127.0.0.1:3001", "/api/7", ""},
		{"path+query", "http://candidate.internal:8080/v2/?tenant=a", "/api/7", "x=1&y=2"},
	} {
		u, err := url.Parse(tc.base)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				joinURL(u, tc.path, tc.query)
			}
		})
	}
}

// BenchmarkCapture keeps a response body for comparison as it streams by,
// as the reference's and the candidate's are.
func BenchmarkCapture(b *testing.B) {
	for _, tc := range []struct {
		name        string
		size, chunk int
	}{
		{"150B", 150, 150},
		{"4KiB", 4 << 10, 4 << 10},
		{"64KiB-in-4KiB-reads", 64 << 10, 4 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := bytes.Repeat([]byte("x"), tc.size)
			bud := newBudget(1<<62, 1<<62)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				c := capture{b: bud, limit: 4 << 20}
				for off := 0; off < len(data); off += tc.chunk {
					c.Write(data[off:min(off+tc.chunk, len(data))])
				}
				bud.bytes.Add(-c.held)
			}
		})
	}
}
