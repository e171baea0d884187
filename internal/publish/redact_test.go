package publish

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/miffy-proxy/miffy/internal/compare"
)

func TestRedactURI(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactQueryParams: []string{"api_key", "Token", "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
	}{
		{"no query", "/api/3", "/api/3"},
		{"no redacted parameter", "/api/3?x=1&y=2", "/api/3?x=1&y=2"},
		{"one of several", "/a?x=1&api_key=SECRET&y=2", "/a?x=1&api_key=[REDACTED]&y=2"},
		{"case-insensitive", "/a?API_KEY=S1&token=S2&TOKEN=S3", "/a?API_KEY=[REDACTED]&token=[REDACTED]&TOKEN=[REDACTED]"},
		{"percent-encoded name", "/a?api%5Fkey=S&%74oken=T", "/a?api%5Fkey=[REDACTED]&%74oken=[REDACTED]"},
		{"semicolon separator", "/a?x=1;sig=S;y=2", "/a?x=1;sig=[REDACTED];y=2"},
		{"array form", "/a?token[]=S&token%5B%5D=T", "/a?token[]=[REDACTED]&token%5B%5D=[REDACTED]"},
		{"empty value stays redacted", "/a?sig=", "/a?sig=[REDACTED]"},
		{"name alone is kept", "/a?token&x=1", "/a?token&x=1"},
		{"not a prefix match", "/a?api_keys=1&xsig=2", "/a?api_keys=1&xsig=2"},
		{"full URL", "http://127.0.0.1:3000/a?sig=S", "http://127.0.0.1:3000/a?sig=[REDACTED]"},
		{"fragment kept", "/a?sig=S#frag", "/a?sig=[REDACTED]#frag"},
		{"value with =", "/a?sig=a=b&x=1", "/a?sig=[REDACTED]&x=1"},
		{"empty parameters", "/a?&&sig=S&", "/a?&&sig=[REDACTED]&"},
		{"bad escape in name", "/a?%zz=1&sig=S", "/a?%zz=1&sig=[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, enc.RedactURI(tt.in)); diff != "" {
				t.Errorf("RedactURI(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRedactURINoParams(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536})
	if err != nil {
		t.Fatal(err)
	}
	if got := enc.RedactURI("/a?api_key=S"); got != "/a?api_key=S" {
		t.Errorf("RedactURI = %q, want it unchanged without redact_query_params", got)
	}
}

func TestNewEncoderQueryParamErrors(t *testing.T) {
	for _, bad := range []string{"", " ", "a=b", "a&b", "a#"} {
		_, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactQueryParams: []string{"ok", bad}})
		if err == nil || !strings.HasPrefix(err.Error(), "redact_query_params[1]: ") {
			t.Errorf("NewEncoder(%q) error = %v, want one naming redact_query_params[1]", bad, err)
		}
	}
}

// TestEncodeRedactsSecrets sends a secret each way (query parameter,
// default credential header, configured JSON path) and checks that it
// appears nowhere in the record, full or compact, nor on the console.
func TestEncodeRedactsSecrets(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536,
		RedactQueryParams: []string{"api_key", "access_token"},
		RedactJSONKeys:    []string{"password"},
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"QSECRET1", "QSECRET2", "HSECRET3", "HSECRET4", "HSECRET5", "JSECRET6"}
	r := testRecord()
	r.Request.URI = "/api/3?api_key=QSECRET1&Access_Token=QSECRET2&x=1"
	r.Reference.URL = "http://127.0.0.1:3000" + r.Request.URI
	r.Candidate.URL = "http://127.0.0.1:3001" + r.Request.URI
	r.Request.Header = http.Header{"X-Api-Key": {"HSECRET3"}, "X-Auth-Token": {"HSECRET4"}, "X-Csrf-Token": {"HSECRET5"}}
	r.Request.Body = []byte(`{"user":"a","password":"JSECRET6"}`)
	r.Request.BodyContentType = "application/json"
	full, err := enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Equal = true
	compact, err := enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	NewConsole(&console, enc).Publish(r)
	for name, out := range map[string]string{"full": string(full), "compact": string(compact), "console": console.String()} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output holds %s: %s", name, s, out)
			}
		}
		if !strings.Contains(out, "x=1") {
			t.Errorf("%s output lost the plain parameter x=1: %s", name, out)
		}
	}
}

func TestRedactBody(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactJSONPaths: []string{"$.password", "$.users[*].token"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, contentType, want string
	}{
		{"JSON, redacted and compacted", `{"user": "a", "password": "S"}`, "application/json", `{"password":"[REDACTED]","user":"a"}`},
		{"nested wildcard", `{"users":[{"token":"T1"},{"token":"T2","n":1}]}`, "application/vnd.x+json", `{"users":[{"token":"[REDACTED]"},{"n":1,"token":"[REDACTED]"}]}`},
		{"not JSON by type: as it is", `password=S`, "application/x-www-form-urlencoded", `password=S`},
		{"JSON type that does not parse: as it is", `{"password":`, "application/json", `{"password":`},
		{"empty", ``, "application/json", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(enc.RedactBody([]byte(tt.body), tt.contentType))); diff != "" {
				t.Errorf("RedactBody (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedactJSONKeys(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactJSONKeys: []string{"password", "access_token"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, want string
	}{
		{"top level", `{"user":"a","password":"S"}`, `{"password":"[REDACTED]","user":"a"}`},
		{"any depth, any case, camelCase", `{"a":[{"b":{"AccessToken":"S1","x":1}},{"Access-Token":"S2"}]}`,
			`{"a":[{"b":{"AccessToken":"[REDACTED]","x":1}},{"Access-Token":"[REDACTED]"}]}`},
		{"a container under the key", `{"password":{"old":"S1","new":"S2"}}`, `{"password":"[REDACTED]"}`},
		{"escaped name", `{"p\u0061ssword":"S"}`, `{"password":"[REDACTED]"}`},
		{"no key: bytes kept as written", `{"b": 1.0, "a": "pass"}`, `{"b":1.0,"a":"pass"}`},
		{"a longer name is not the key", `{"password_hint":"h","passwords":["x"]}`, `{"password_hint":"h","passwords":["x"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(enc.RedactBody([]byte(tt.body), "application/json"))); diff != "" {
				t.Errorf("RedactBody (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedactJSONKeysInDiffs(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactJSONKeys: []string{"token"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   compare.Diff
		want compare.Diff
	}{
		{"at the key", compare.Diff{Path: "$.auth.token", Reference: "S1", Candidate: "S2"},
			compare.Diff{Path: "$.auth.token", Reference: "[REDACTED]", Candidate: "[REDACTED]"}},
		{"under the key", compare.Diff{Path: "$.Token.parts[0]", Reference: "S1"},
			compare.Diff{Path: "$.Token.parts[0]", Reference: "[REDACTED]"}},
		{"a container holding it", compare.Diff{Path: "$.auth", Reference: map[string]any{"token": "S1", "n": json.Number("1")}},
			compare.Diff{Path: "$.auth", Reference: map[string]any{"token": "[REDACTED]", "n": json.Number("1")}}},
		{"a cut rendering holding it", compare.Diff{Path: "$.auth", Candidate: `{"token":"S1","pad":"…`},
			compare.Diff{Path: "$.auth", Candidate: "[REDACTED]"}},
		{"elsewhere: kept", compare.Diff{Path: "$.price", Reference: json.Number("1"), Candidate: json.Number("2")},
			compare.Diff{Path: "$.price", Reference: json.Number("1"), Candidate: json.Number("2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, enc.redactDiff(tt.in)); diff != "" {
				t.Errorf("redactDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedactURLHeaders(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactQueryParams: []string{"code"}})
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	r.Request.Header = http.Header{"Referer": {"https://app/login?code=SECRET1&x=1"}}
	r.Candidate.Header = http.Header{"Location": {"https://app/cb?code=SECRET2"}}
	r.Diffs = []compare.Diff{{Path: "header:Location", Kind: compare.Changed, Candidate: "https://app/cb?code=SECRET2"}}
	b, err := enc.Encode(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	NewConsole(&console, enc).Publish(r)
	for _, out := range []string{string(b), console.String()} {
		if strings.Contains(out, "SECRET") || !strings.Contains(out, "code=[REDACTED]") {
			t.Errorf("URL headers not redacted: %s", out)
		}
	}
}

// FuzzRedactURI: whatever the URI, every parameter named by the list (in
// any case or escaping) comes out as "[REDACTED]", and redacting twice
// changes nothing more.
func FuzzRedactURI(f *testing.F) {
	for _, s := range []string{"/a?secret=1", "/a?x=1&SECRET=2;secret=3#f", "/a?%73ecret=1", "?secret", "/a?secret[]=1&&=", "http://h/p?q=1&secret=x=y"} {
		f.Add(s)
	}
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactQueryParams: []string{"secret"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		out := enc.RedactURI(uri)
		if again := enc.RedactURI(out); again != out {
			t.Fatalf("RedactURI not idempotent: %q -> %q -> %q", uri, out, again)
		}
		q := strings.IndexByte(out, '?')
		if q < 0 {
			return
		}
		query := out[q+1:]
		if h := strings.IndexByte(query, '#'); h >= 0 {
			query = query[:h]
		}
		for _, param := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
			name, value, ok := strings.Cut(param, "=")
			if ok && enc.isRedactedParam(name) && value != redacted {
				t.Fatalf("RedactURI(%q) = %q: %s keeps its value", uri, out, name)
			}
		}
	})
}
