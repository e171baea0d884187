package shadow

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/compare"
	"github.com/miffy-proxy/miffy/internal/publish"
)

// sizedJSON is a JSON document of about size bytes: an array of items.
// reordered writes each item's members in reverse order; changed alters
// one item's price.
func sizedJSON(size int, reordered, changed bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < size-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		price := strconv.Itoa(i) + ".99"
		if changed && i == 0 {
			price = "0.49"
		}
		m := []string{`"id":` + strconv.Itoa(i), `"name":"item ` + strconv.Itoa(i) + `"`, `"price":` + price, `"tags":["a","b"]`}
		if reordered {
			m[0], m[1], m[2], m[3] = m[3], m[2], m[1], m[0]
		}
		b.WriteString("{" + strings.Join(m, ",") + "}")
	}
	b.WriteString(`],"total":1}`)
	return b.Bytes()
}

// BenchmarkReplayCompare is what the proxy pays per shadowed request
// once both answers are in, from the captures on: the candidate's body
// captured as it streams in (32 KiB reads, Content-Length known), its
// Content-Encoding undone, the comparison and the record (published to a
// discarding publisher). The client's own forwarding is not included.
// cpu-ns/op is the process's CPU time per request.
func BenchmarkReplayCompare(b *testing.B) {
	cmp, err := compare.New(compare.Rules{})
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, size := range []int{100, 10 << 10, 100 << 10} {
		ref := sizedJSON(size, false, false)
		for _, tc := range []struct {
			name string
			cand []byte
		}{
			{"equal-bytes", bytes.Clone(ref)},
			{"equal-reordered", sizedJSON(size, true, false)},
			{"different", sizedJSON(size, false, true)},
		} {
			label := fmt.Sprintf("%dKB", size>>10)
			if size < 1<<10 {
				label = fmt.Sprintf("%dB", size)
			}
			b.Run(label+"/"+tc.name, func(b *testing.B) {
				rt := &Route{Pattern: "/api/{value}", Key: "value", Reference: u, Candidate: u, Sample: 1, Comparer: cmp}
				table, err := NewTable(u, []*Route{rt})
				if err != nil {
					b.Fatal(err)
				}
				p := New(testConfig(Config{}), table, compare.NewJudge(compare.NoiseConfig{}, time.Now), &publish.Outlet{Sink: &discard{}}, zerolog.Nop(), prometheus.NewRegistry())
				_, params, _, _ := table.routes.Match("GET", "/api/7")
				h := http.Header{"Content-Type": {"application/json"}}
				x := &exchange{
					id: "bench-1", start: time.Now(), route: rt, params: params, method: "GET",
					uri: "/api/7", path: "/api/7", header: http.Header{"Accept": {"application/json"}},
					endpoint: rt.Name,
					ref:      side{url: "http://127.0.0.1:1/api/7", status: 200, header: h, cap: capture{buf: ref}},
				}
				var sec side
				b.SetBytes(int64(len(ref) + len(tc.cand)))
				b.ReportAllocs()
				start := processCPU()
				for b.Loop() {
					cand := side{url: "http://127.0.0.1:1/api/7", status: 200, header: h, cap: capture{b: p.budget, limit: 4 << 20}}
					cand.cap.expect(int64(len(tc.cand)))
					for off := 0; off < len(tc.cand); off += copyBufSize {
						cand.cap.Write(tc.cand[off:min(off+copyBufSize, len(tc.cand))])
					}
					p.compareAndPublish(x, &cand, &sec)
					p.budget.bytes.Add(-cand.cap.held)
				}
				b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
