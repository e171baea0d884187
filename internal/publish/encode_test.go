package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// testRecord is a typical differing record; tests change copies of it.
func testRecord() *Record {
	return &Record{
		ID:       "0001",
		Time:     time.Date(2026, 11, 22, 10, 30, 0, 123456789, time.UTC),
		Key:      "3",
		Route:    "api",
		Endpoint: "api",
		Request: Request{
			Method:  "GET",
			URI:     "/api/3?x=1",
			Pattern: "/api/{value}",
			Params:  map[string]string{"value": "3"},
			Header: http.Header{
				"Accept":        {"*/*"},
				"Authorization": {"Bearer secret"},
				"X-Multi":       {"a", "b"},
			},
		},
		Reference: Side{
			URL:      "http://127.0.0.1:3000/api/3?x=1",
			Status:   200,
			Header:   http.Header{"Content-Type": {"application/json"}},
			Body:     []byte(`{"price": 1, "big": 12345678901234567890.5}`),
			Duration: 1230 * time.Microsecond,
		},
		Candidate: Side{
			URL:      "http://127.0.0.1:3001/api/3?x=1",
			Status:   200,
			Header:   http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			Body:     []byte(`{"price": 2, "big": 12345678901234567890.5}`),
			Duration: 2 * time.Millisecond,
		},
		Diffs: []compare.Diff{{Path: "$.price", Kind: compare.Changed, Reference: json.Number("1"), Candidate: json.Number("2"), Class: compare.Regression}},
	}
}

// decode turns encoded JSON into generic values, numbers kept as written.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return m
}

// want parses the expected JSON the same way.
func want(t *testing.T, s string) map[string]any {
	t.Helper()
	return decode(t, []byte(s))
}

func TestEncode(t *testing.T) {
	refJSON := `{"url":"http://127.0.0.1:3000/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json"},"body":{"type":"json","value":{"price":1,"big":12345678901234567890.5}}},"duration_ms":1.23}`
	candJSON := `{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json; charset=utf-8"},"body":{"type":"json","value":{"price":2,"big":12345678901234567890.5}}},"duration_ms":2}`
	head := `"schema_version":1,"id":"0001","timestamp":"2026-11-22T10:30:00.123456789Z","route":"api","key":"3","endpoint":"api"`
	request := `{"method":"GET","uri":"/api/3?x=1","route":"/api/{value}","params":{"value":"3"},"headers":{"accept":"*/*","authorization":"[REDACTED]","x-multi":["a","b"]},"body":null}`
	diffs := `[{"path":"$.price","kind":"changed","reference":1,"candidate":2,"class":"regression"}]`

	tests := []struct {
		name   string
		cfg    EncoderConfig
		change func(r *Record)
		want   string
	}{
		{
			name: "full form with JSON bodies",
			want: `{` + head + `,"equal":false,"request":` + request + `,"reference":` + refJSON + `,"candidate":` + candJSON + `,"differences":` + diffs + `}`,
		},
		{
			name: "bytes bodies: not JSON content type, and JSON type that does not parse",
			change: func(r *Record) {
				r.Reference.Header = http.Header{"Content-Type": {"text/plain"}}
				r.Reference.Body = []byte("hello")
				r.Candidate.Header = http.Header{"Content-Type": {"application/problem+json"}}
				r.Candidate.Body = []byte(`{"cut`)
			},
			want: `{` + head + `,"equal":false,"request":` + request +
				`,"reference":{"url":"http://127.0.0.1:3000/api/3?x=1","response":{"status":200,"headers":{"content-type":"text/plain"},"body":{"type":"bytes","value":"aGVsbG8="}},"duration_ms":1.23}` +
				`,"candidate":{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/problem+json"},"body":{"type":"bytes","value":"eyJjdXQ="}},"duration_ms":2}` +
				`,"differences":` + diffs + `}`,
		},
		{
			name: "request body JSON (+json, parameters), params {} when none, no headers",
			change: func(r *Record) {
				r.Request = Request{Method: "POST", URI: "/api", Pattern: "/api", Body: []byte(`[1, "two"]`), BodyContentType: "application/vnd.x+json; v=2"}
			},
			want: `{` + head + `,"equal":false,"request":{"method":"POST","uri":"/api","route":"/api","params":{},"headers":{},"body":{"type":"json","value":[1,"two"]}}` +
				`,"reference":` + refJSON + `,"candidate":` + candJSON + `,"differences":` + diffs + `}`,
		},
		{
			name: "truncated: longer than MaxBodyBytes, and cut by the proxy",
			cfg:  EncoderConfig{MaxBodyBytes: 4},
			change: func(r *Record) {
				r.Reference.Body = []byte(`{"a":1}`)
				r.Candidate.Body = []byte(`{"a"`)
				r.Candidate.Truncated = true
			},
			want: `{` + head + `,"equal":false,"request":` + request +
				`,"reference":{"url":"http://127.0.0.1:3000/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json"},"body":{"type":"bytes","value":"eyJhIg==","truncated":true,"size":7}},"duration_ms":1.23}` +
				`,"candidate":{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json; charset=utf-8"},"body":{"type":"bytes","value":"eyJhIg==","truncated":true,"size":4}},"duration_ms":2}` +
				`,"differences":` + diffs + `}`,
		},
		{
			name: "error side with error_kind, secondary present",
			change: func(r *Record) {
				r.Candidate = Side{URL: "http://127.0.0.1:3001/api/3?x=1", Err: fmt.Errorf("timeout: %w", context.DeadlineExceeded), Duration: 5 * time.Second}
				r.Secondary = &Side{URL: "http://127.0.0.1:3002/api/3?x=1", Err: syscall.ECONNREFUSED, Duration: time.Millisecond}
				r.Diffs = []compare.Diff{{Path: "error", Kind: compare.Changed, Candidate: "timeout", Class: compare.Regression}}
			},
			want: `{` + head + `,"equal":false,"request":` + request + `,"reference":` + refJSON +
				`,"candidate":{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"error":"request","error_detail":"timeout: context deadline exceeded"},"duration_ms":5000,"error_kind":"timeout"}` +
				`,"secondary":{"url":"http://127.0.0.1:3002/api/3?x=1","response":{"error":"request","error_detail":"connection refused"},"duration_ms":1,"error_kind":"refused"}` +
				`,"differences":[{"path":"error","kind":"changed","candidate":"timeout","class":"regression"}]}`,
		},
		{
			name: "compact form",
			change: func(r *Record) {
				r.Equal = true
				r.Diffs = nil
				r.Secondary = &Side{Status: 200, Duration: 1500 * time.Microsecond}
			},
			want: `{` + head + `,"equal":true,"request":{"method":"GET","uri":"/api/3?x=1","route":"/api/{value}"},"reference":{"status":200,"duration_ms":1.23},"candidate":{"status":200,"duration_ms":2},"secondary":{"status":200,"duration_ms":1.5}}`,
		},
		{
			name: "compact form with a failed secondary",
			change: func(r *Record) {
				r.Equal = true
				r.Diffs = nil
				r.Secondary = &Side{Err: syscall.ECONNRESET, Duration: time.Millisecond}
			},
			want: `{` + head + `,"equal":true,"request":{"method":"GET","uri":"/api/3?x=1","route":"/api/{value}"},"reference":{"status":200,"duration_ms":1.23},"candidate":{"status":200,"duration_ms":2},"secondary":{"duration_ms":1,"error_kind":"reset"}}`,
		},
		{
			name: "header redaction: default four and configured, any case, request and response",
			cfg:  EncoderConfig{MaxBodyBytes: 65536, RedactHeaders: []string{"x-api-KEY"}},
			change: func(r *Record) {
				r.Request.Header = http.Header{
					"Authorization":       {"a"},
					"Cookie":              {"b"},
					"proxy-authorization": {"c"}, // not canonical
					"X-Api-Key":           {"d"},
					"X-Other":             {"e"},
				}
				r.Reference.Header = http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"s=1", "t=2"}}
				r.Candidate.Header = http.Header{"Content-Type": {"application/json"}, "X-API-KEY": {"k"}}
				r.Diffs = []compare.Diff{{Path: "header:X-Api-Key", Kind: compare.Added, Candidate: "k", Class: compare.Regression}}
			},
			want: `{` + head + `,"equal":false,"request":{"method":"GET","uri":"/api/3?x=1","route":"/api/{value}","params":{"value":"3"},"headers":{"authorization":"[REDACTED]","cookie":"[REDACTED]","proxy-authorization":"[REDACTED]","x-api-key":"[REDACTED]","x-other":"e"},"body":null}` +
				`,"reference":{"url":"http://127.0.0.1:3000/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json","set-cookie":"[REDACTED]"},"body":{"type":"json","value":{"price":1,"big":12345678901234567890.5}}},"duration_ms":1.23}` +
				`,"candidate":{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json","x-api-key":"[REDACTED]"},"body":{"type":"json","value":{"price":2,"big":12345678901234567890.5}}},"duration_ms":2}` +
				`,"differences":[{"path":"header:X-Api-Key","kind":"added","candidate":"[REDACTED]","class":"regression"}]}`,
		},
		{
			name: "JSON path redaction in bodies and differences",
			cfg:  EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.password", "$.users[*].email", `$["a.b"]`}},
			change: func(r *Record) {
				r.Request.Body = []byte(`{"user":"ann","password":"hunter2","a.b":1}`)
				r.Request.BodyContentType = "application/json"
				r.Reference.Body = []byte(`{"users":[{"id":1,"email":"a@x"},{"id":2,"email":"b@x"}],"n":1.50}`)
				r.Candidate.Body = []byte(`{"users":[{"id":1,"email":"c@x"}],"n":1.50}`)
				r.Diffs = []compare.Diff{
					{Path: "$.users[0].email", Kind: compare.Changed, Reference: "a@x", Candidate: "c@x", Class: compare.Regression},
					{Path: "$.users[1]", Kind: compare.Removed, Reference: map[string]any{"id": json.Number("2"), "email": "b@x"}, Class: compare.Regression},
					{Path: "$.users", Kind: compare.Changed, Reference: `[{"email":"a@x"…[truncated]`, Class: compare.Noise},
					{Path: "$.n", Kind: compare.Changed, Reference: json.Number("1.50"), Candidate: json.Number("1.5")},
				}
			},
			want: `{` + head + `,"equal":false,"request":{"method":"GET","uri":"/api/3?x=1","route":"/api/{value}","params":{"value":"3"},"headers":{"accept":"*/*","authorization":"[REDACTED]","x-multi":["a","b"]},"body":{"type":"json","value":{"user":"ann","password":"[REDACTED]","a.b":"[REDACTED]"}}}` +
				`,"reference":{"url":"http://127.0.0.1:3000/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json"},"body":{"type":"json","value":{"users":[{"id":1,"email":"[REDACTED]"},{"id":2,"email":"[REDACTED]"}],"n":1.50}}},"duration_ms":1.23}` +
				`,"candidate":{"url":"http://127.0.0.1:3001/api/3?x=1","response":{"status":200,"headers":{"content-type":"application/json; charset=utf-8"},"body":{"type":"json","value":{"users":[{"id":1,"email":"[REDACTED]"}],"n":1.50}}},"duration_ms":2}` +
				`,"differences":[` +
				`{"path":"$.users[0].email","kind":"changed","reference":"[REDACTED]","candidate":"[REDACTED]","class":"regression"},` +
				`{"path":"$.users[1]","kind":"removed","reference":{"id":2,"email":"[REDACTED]"},"class":"regression"},` +
				`{"path":"$.users","kind":"changed","reference":"[REDACTED]","class":"noise"},` +
				`{"path":"$.n","kind":"changed","reference":1.50,"candidate":1.5}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.MaxBodyBytes == 0 {
				tt.cfg.MaxBodyBytes = 65536 // [publish] max_body_bytes
			}
			enc, err := NewEncoder(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := testRecord()
			if tt.change != nil {
				tt.change(r)
			}
			got, err := enc.Encode([]byte("prefix"), r)
			if err != nil {
				t.Fatal(err)
			}
			body, ok := strings.CutPrefix(string(got), "prefix")
			if !ok {
				t.Fatalf("Encode did not append to dst: %s", got)
			}
			if diff := cmp.Diff(want(t, tt.want), decode(t, []byte(body))); diff != "" {
				t.Errorf("Encode (-want +got):\n%s", diff)
			}
			if strings.ContainsAny(body, "\n") {
				t.Errorf("record spans lines: %s", body)
			}
		})
	}
}

// TestEncodeKeepsRecord checks that redaction does not write into the
// caller's record.
func TestEncodeKeepsRecord(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.users[*].email"}})
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	user := map[string]any{"email": "b@x"}
	r.Diffs = []compare.Diff{{Path: "$.users[1]", Kind: compare.Removed, Reference: user}}
	if _, err := enc.Encode(nil, r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"email": "b@x"}, user); diff != "" {
		t.Errorf("diff value changed (-want +got):\n%s", diff)
	}
	if got := r.Request.Header.Get("Authorization"); got != "Bearer secret" {
		t.Errorf("request header changed to %q", got)
	}
}

func TestEncodeStringEscapes(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	r.ID = "q\"\\\n\t\x01<&>\u2028é\xff"
	got, err := enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("q\"\\\n\t\x01<&>\u2028é\ufffd", decode(t, got)["id"]); diff != "" {
		t.Errorf("id (-want +got):\n%s", diff)
	}
}

// TestMaxBodyBytesZero: [publish] max_body_bytes = 0 keeps no body bytes
// in records; each body is marked truncated with its size.
func TestMaxBodyBytesZero(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	got, err := enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	body := decode(t, got)["reference"].(map[string]any)["response"].(map[string]any)["body"]
	want := map[string]any{"type": "bytes", "value": "", "truncated": true, "size": json.Number(strconv.Itoa(len(r.Reference.Body)))}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("reference body (-want +got):\n%s", diff)
	}
}

func TestNewEncoderErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  EncoderConfig
		want string
	}{
		{"no dollar", EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.ok", "password"}}, "redact_json_paths[1]: "},
		{"empty name", EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$..a"}}, "redact_json_paths[0]: "},
		{"bad index", EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.a[x]"}}, "redact_json_paths[0]: "},
		{"unclosed quote", EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{`$["a]`}}, "redact_json_paths[0]: "},
		{"star in a name", EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.*x"}}, `redact_json_paths[0]: invalid path "$.*x": at offset 1: "*x": * is a wildcard only as a whole step`},
		{"bad header", EncoderConfig{MaxBodyBytes: 65536, RedactHeaders: []string{"X-Ok", "Bad Name"}}, "redact_headers[1]: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEncoder(tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("NewEncoder error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestPathsMeanTheSame: a path that [compare] ignore refuses,
// redact_json_paths refuses too, with the same reason, and a path one
// takes the other takes.
func TestPathsMeanTheSame(t *testing.T) {
	for _, p := range []string{"$.a", "$.*", "$.*x", "$.a*", " $.a ", `$["*x"]`, "$..a", "$[*][0]", "$.a[x]", "a", `$["a"]`} {
		t.Run(p, func(t *testing.T) {
			_, cerr := compare.New(compare.Rules{Ignore: []string{p}})
			_, perr := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{p}})
			cmsg, pmsg := "", ""
			if cerr != nil {
				cmsg = strings.TrimPrefix(cerr.Error(), "ignore[0]: ")
			}
			if perr != nil {
				pmsg = strings.TrimPrefix(perr.Error(), "redact_json_paths[0]: ")
			}
			if cmsg != pmsg {
				t.Errorf("compare ignore: %q; publish redact_json_paths: %q", cmsg, pmsg)
			}
		})
	}
}

func TestRedactHeader(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactHeaders: []string{"X-Token"}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"a"}, "X-Token": {"t"}, "Accept": {"*/*"}}
	got := enc.RedactHeader(h)
	wantH := http.Header{"Authorization": {"[REDACTED]"}, "X-Token": {"[REDACTED]"}, "Accept": {"*/*"}}
	if diff := cmp.Diff(wantH, got); diff != "" {
		t.Errorf("RedactHeader (-want +got):\n%s", diff)
	}
	if h.Get("Authorization") != "a" {
		t.Error("RedactHeader modified its argument")
	}
}

func BenchmarkEncode(b *testing.B) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		b.Fatal(err)
	}
	r := testRecord()
	items := make([]string, 0, 12)
	for i := range 12 {
		items = append(items, fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.99}`, i, i, i))
	}
	body := []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
	r.Reference.Body, r.Candidate.Body = body, body
	r.Request.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
	r.Reference.Header.Set("Date", "Sun, 22 Nov 2026 10:30:00 GMT")
	r.Candidate.Header.Set("Date", "Sun, 22 Nov 2026 10:30:00 GMT")
	buf, err := enc.Encode(nil, r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = enc.Encode(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEncodeError(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	r.Diffs = []compare.Diff{{Path: "$.x", Kind: compare.Changed, Reference: math.NaN()}}
	got, err := enc.Encode([]byte("keep"), r)
	if err == nil || !strings.Contains(err.Error(), `"$.x"`) {
		t.Errorf("error = %v, want one naming the difference", err)
	}
	if string(got) != "keep" {
		t.Errorf("dst = %q, want it unchanged", got)
	}
}
