package publish

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// FuzzEncode renders records built from arbitrary strings and bodies. The
// encoder must never panic, must append to what dst held, must always
// produce one valid JSON value, and must redact: credential headers, the
// configured header and JSON path, in bodies and in differences.
func FuzzEncode(f *testing.F) {
	f.Add("id-1", "/api/1?q=1", "X-Trace", "t1", []byte(`{"user":"u","password":"p"}`), "application/json",
		[]byte(`{"a":1,"password":"x"}`), "$.password", "old", false, uint16(0))
	f.Add("", "", "", "", []byte{}, "", []byte{}, "", "", true, uint16(1))
	f.Add("\x00\"\\\u2028", "/\xff\xfe", "Bad Name", "v\r\n", []byte("\xff\xfe{\"password\":1}"), "text/plain; charset=latin1",
		[]byte(`[{"password":[1,2]},{"x":"\ud800"}]`), `$["pass.word"]`, "\xff", false, uint16(3))
	f.Add("id", "/u", "Cookie", "c=1", []byte(`{"password":{"deep":["a"]}}`), "application/vnd.api+json",
		bytes.Repeat([]byte(`{"a":[`), 200), "$.password.deep[0]", "v", false, uint16(7))

	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 64, RedactHeaders: []string{"X-Secret"}, RedactJSONPaths: []string{"$.password", "$[*].password"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, uri, hName, hValue string, reqBody []byte, ct string, respBody []byte, diffPath, diffValue string, equal bool, n uint16) {
		h := http.Header{
			"Authorization": {"Bearer fuzz-secret"},
			"X-Secret":      {"fuzz-secret"},
		}
		if hName != "" {
			h[hName] = append(h[hName], hValue)
		}
		respHeader := http.Header{"Content-Type": {ct}, "Set-Cookie": {"s=fuzz-secret"}}
		r := &Record{
			ID:       id,
			Time:     time.Unix(int64(n), int64(n)*1000),
			Key:      uri,
			Route:    hName,
			Endpoint: hValue,
			Equal:    equal,
			Request: Request{
				Method: "GET", URI: uri, Pattern: "/api/{v}",
				Params:          map[string]string{hName: hValue},
				Header:          h,
				Body:            reqBody,
				BodyContentType: ct,
			},
			Reference: Side{URL: uri, Status: int(n), Header: respHeader, Body: respBody, Truncated: n%2 == 1, Duration: time.Duration(n)},
			Candidate: Side{URL: uri, Status: 200, Header: respHeader, Body: reqBody},
			Diffs: []compare.Diff{
				{Path: diffPath, Kind: compare.Changed, Reference: diffValue, Candidate: map[string]any{"password": diffValue}, Class: compare.Regression},
				{Path: "$.password", Kind: compare.Changed, Reference: "fuzz-secret", Candidate: "fuzz-secret"},
			},
		}
		if n%3 == 0 {
			r.Candidate = Side{URL: uri, Err: http.ErrHandlerTimeout}
			r.Secondary = &Side{URL: uri, Status: 500, Header: respHeader, Body: respBody}
		}

		const prefix = "kept:"
		out, err := enc.Encode([]byte(prefix), r)
		if err != nil {
			t.Fatalf("Encode: %v", err) // every value here is encodable
		}
		if !bytes.HasPrefix(out, []byte(prefix)) {
			t.Fatalf("dst not kept: %.40q", out)
		}
		out = out[len(prefix):]
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		planted := false // the fuzzer wrote the marker itself
		for _, in := range [][]byte{[]byte(id), []byte(uri), []byte(hName), []byte(hValue), reqBody, []byte(ct), respBody, []byte(diffPath), []byte(diffValue)} {
			planted = planted || bytes.Contains(in, []byte("fuzz-secret"))
		}
		if !planted && bytes.Contains(out, []byte("fuzz-secret")) {
			t.Fatalf("a redacted value is in the record: %s", out)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		if v["id"] != toValidUTF8(id) {
			t.Errorf("id %q, want %q", v["id"], id)
		}
	})
}

// toValidUTF8 is what encoding/json makes of a string: invalid bytes
// replaced by U+FFFD.
func toValidUTF8(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}
