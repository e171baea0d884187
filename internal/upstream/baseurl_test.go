package upstream

import (
	"strings"
	"testing"
)

func TestParseBaseURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:3000", ""},
		{"https://api.example/v2", ""},
		{"http://u:p@x", ""},
		{"", `"" is not an absolute http(s) URL`},
		{"ftp://x", `"ftp://x" is not an absolute http(s) URL`},
		{"http:/x", `is not an absolute http(s) URL`},
		{"http:x", `is not an absolute http(s) URL`},
		{"http://x?a=1", `has a query`},
		{"http://x?", `has a query`},
		{"http://x/#f", `has a fragment`},
		{"http://x#", `has a fragment`},
		{"http://x:99999", `has an invalid port`},
		{"http://x:0", `has an invalid port`},
		{"ftp://u:hunter2@x", `"ftp://u:********@x" is not an absolute http(s) URL`},
		{"http://u:hunter2@x?q", `"http://u:********@x?q" has a query`},
		{"http://u:hunter2@x:bad", `"http://********@x:bad" is not an absolute http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseBaseURL(tt.in)
			if tt.want == "" {
				if err != nil || u == nil {
					t.Fatalf("ParseBaseURL = %v, %v", u, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseBaseURL error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:3000/x":        "http://127.0.0.1:3000/x",
		"http://u:hunter2@x/p":           "http://u:********@x/p",
		"http://tok3n@x/p":               "http://********@x/p", // a user name alone is often a token
		"http://u:hunter2@x:bad":         "http://********@x:bad",
		"https://x/a@b":                  "https://x/a@b",
		"http://user:pw@h/p?q=1":         "http://user:********@h/p?q=1",
		"http://us%zz:pw@h/p":            "http://********@h/p",
		"not a url with @ in it hunter2": "not a url with @ in it hunter2",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
