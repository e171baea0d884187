package compare

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
)

func TestDecodeBody(t *testing.T) {
	const plain = `{"hello":"world","n":[1,2,3]}`
	body := func(enc string) []byte { return encoded(t, enc, plain).Body }
	gzipThenBr := func() []byte {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte(plain))
		_ = zw.Close()
		var br bytes.Buffer
		bw := brotli.NewWriter(&br)
		_, _ = bw.Write(gz.Bytes())
		_ = bw.Close()
		return br.Bytes()
	}()
	tests := []struct {
		name          string
		encoding      []string
		body          []byte
		max           int64
		want          string
		wantTruncated bool
		wantErr       bool
	}{
		{name: "none", body: []byte(plain), want: plain},
		{name: "identity", encoding: []string{"identity"}, body: []byte(plain), want: plain},
		{name: "gzip", encoding: []string{"gzip"}, body: body("gzip"), want: plain},
		{name: "x-gzip upper case", encoding: []string{"X-GZIP"}, body: body("gzip"), want: plain},
		{name: "deflate zlib", encoding: []string{"deflate"}, body: body("deflate"), want: plain},
		{name: "deflate raw", encoding: []string{"deflate"}, body: body("raw-deflate"), want: plain},
		{name: "br", encoding: []string{"br"}, body: body("br"), want: plain},
		{name: "gzip, br in one line", encoding: []string{"gzip, br"}, body: gzipThenBr, want: plain},
		{name: "gzip, br in two lines", encoding: []string{"gzip", "br"}, body: gzipThenBr, want: plain},
		{name: "capped", encoding: []string{"gzip"}, body: body("gzip"), max: 5, want: plain[:5], wantTruncated: true},
		{name: "cap not reached", encoding: []string{"br"}, body: body("br"), max: int64(len(plain)), want: plain},
		{name: "identity capped", body: []byte(plain), max: 3, want: plain[:3], wantTruncated: true},
		{name: "unknown", encoding: []string{"zstd"}, body: []byte("x"), wantErr: true},
		{name: "corrupt gzip", encoding: []string{"gzip"}, body: []byte("not gzip"), wantErr: true},
		{name: "truncated gzip", encoding: []string{"gzip"}, body: body("gzip")[:10], wantErr: true},
		{name: "empty body", encoding: []string{"gzip"}, body: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, e := range tt.encoding {
				h.Add("Content-Encoding", e)
			}
			got, truncated, err := DecodeBody(h, tt.body, tt.max)
			if (err != nil) != tt.wantErr {
				t.Fatalf("DecodeBody error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("DecodeBody body (-want +got):\n%s", diff)
			}
			if truncated != tt.wantTruncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.wantTruncated)
			}
		})
	}
}

func TestDecodeBodyUnknownIsSentinel(t *testing.T) {
	h := http.Header{"Content-Encoding": {"compress"}}
	_, _, err := DecodeBody(h, []byte("x"), 0)
	if !errors.Is(err, ErrUnknownEncoding) || !strings.Contains(err.Error(), `"compress"`) {
		t.Errorf("DecodeBody error = %v, want ErrUnknownEncoding naming compress", err)
	}
}

func TestDecodeBodyBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(make([]byte, 10<<20))
	_ = zw.Close()
	got, truncated, err := DecodeBody(http.Header{"Content-Encoding": {"gzip"}}, buf.Bytes(), 1024)
	if err != nil || !truncated || len(got) != 1024 {
		t.Errorf("DecodeBody = %d bytes, truncated %v, err %v; want 1024, true, nil", len(got), truncated, err)
	}
}

// TestDecoded: the answer as compared and recorded: decoded, its encoding
// fields gone from a copy of the header; left alone without an encoding
// or when it does not decode.
func TestDecoded(t *testing.T) {
	const plain = `{"a":1}`
	gz := encoded(t, "gzip", plain)
	gz.Header.Set("Content-Length", "99")
	d, truncated, err := Decoded(gz, 0)
	if err != nil || truncated || string(d.Body) != plain || d.Header.Get("Content-Encoding") != "" || d.Header.Get("Content-Length") != "" {
		t.Errorf("gzip: %q %v %v, header %v", d.Body, truncated, err, d.Header)
	}
	if gz.Header.Get("Content-Encoding") != "gzip" {
		t.Error("Decoded changed its argument's header")
	}
	if _, truncated, _ := Decoded(gz, 3); !truncated {
		t.Error("gzip cut at 3 bytes: not truncated")
	}
	raw := Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(plain)}
	if d, truncated, err := Decoded(raw, 3); err != nil || truncated || string(d.Body) != plain {
		t.Errorf("no encoding: %q %v %v, want the response as it is", d.Body, truncated, err)
	}
	bad := Response{Header: http.Header{"Content-Encoding": {"gzip"}}, Body: []byte("not gzip")}
	if d, _, err := Decoded(bad, 0); err == nil || string(d.Body) != "not gzip" || d.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("bad gzip: %q, %v; want the response as it is and an error", d.Body, err)
	}
}
