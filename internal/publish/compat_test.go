package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The shapes a consumer written for miffy 1.0 reads: a header is a string,
// or an array of strings when it was sent several times; a failed side's
// response.error is "uri", "request" or "body"; a body is typed JSON when
// the request's Accept asks for JSON.

type v1Header []string

func (h *v1Header) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*h = v1Header{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("header value %s is neither a string nor an array of strings", b)
	}
	if len(many) < 2 {
		return fmt.Errorf("header value %s: 1.0 writes an array only for a repeated header", b)
	}
	*h = many
	return nil
}

type v1Error string

func (e *v1Error) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if !slices.Contains([]string{"uri", "request", "body"}, s) {
		return fmt.Errorf("response.error %q is not one of miffy 1.0's uri, request, body", s)
	}
	*e = v1Error(s)
	return nil
}

type v1Body struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

type v1Response struct {
	Status  int                 `json:"status"`
	Headers map[string]v1Header `json:"headers"`
	Body    *v1Body             `json:"body"`
	Error   *v1Error            `json:"error"`
}

type v1Side struct {
	URL      string     `json:"url"`
	Response v1Response `json:"response"`
}

type v1Record struct {
	Request struct {
		Method  string              `json:"method"`
		URI     string              `json:"uri"`
		Headers map[string]v1Header `json:"headers"`
		Body    *v1Body             `json:"body"`
	} `json:"request"`
	Reference v1Side `json:"reference"`
	Candidate v1Side `json:"candidate"`
}

func TestRecordsDecodeAsMiffy10(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{MaxBodyBytes: 65536, RedactQueryParams: []string{"token"}})
	if err != nil {
		t.Fatal(err)
	}
	textSide := func(body string) Side {
		return Side{URL: "http://c/api", Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(body)}
	}
	tests := []struct {
		name     string
		change   func(r *Record)
		check    func(t *testing.T, v v1Record)
		wantJSON string // a fragment of the record, when the shape is the point
	}{
		{
			name: "a repeated header is an array, a single one a string",
			change: func(r *Record) {
				r.Request.Header = http.Header{"X-Multi": {"one", "two"}, "x-multi": {"three"}, "Accept": {"*/*"}}
			},
			check: func(t *testing.T, v v1Record) {
				want := map[string]v1Header{"x-multi": {"one", "two", "three"}, "accept": {"*/*"}}
				if diff := cmp.Diff(want, v.Request.Headers); diff != "" {
					t.Errorf("request headers (-want +got):\n%s", diff)
				}
			},
			wantJSON: `"headers":{"accept":"*/*","x-multi":["one","two","three"]}`,
		},
		{
			name: "Accept: application/json types a text/plain body as JSON",
			change: func(r *Record) {
				r.Request.Header = http.Header{"Accept": {"text/html;q=0.9, application/json"}}
				r.Candidate = textSide(`{"a": 1}`)
			},
			check: func(t *testing.T, v v1Record) {
				if b := v.Candidate.Response.Body; b == nil || b.Type != "json" || string(b.Value) != `{"a":1}` {
					t.Errorf("candidate body %+v, want JSON {\"a\":1}", b)
				}
			},
		},
		{
			name: "Accept that refuses JSON (q=0) or says */* leaves the body bytes",
			change: func(r *Record) {
				r.Request.Header = http.Header{"Accept": {"application/json;q=0", "*/*"}}
				r.Candidate = textSide(`{"a": 1}`)
			},
			check: func(t *testing.T, v v1Record) {
				if b := v.Candidate.Response.Body; b == nil || b.Type != "bytes" {
					t.Errorf("candidate body %+v, want bytes", b)
				}
			},
		},
		{
			name: "Accept JSON, body not JSON: bytes",
			change: func(r *Record) {
				r.Request.Header = http.Header{"Accept": {"application/problem+json"}}
				r.Candidate = textSide(`not json`)
			},
			check: func(t *testing.T, v v1Record) {
				if b := v.Candidate.Response.Body; b == nil || b.Type != "bytes" {
					t.Errorf("candidate body %+v, want bytes", b)
				}
			},
		},
		{
			name: "no response: error request, the text in error_detail",
			change: func(r *Record) {
				r.Candidate = Side{URL: "http://c/api?token=SECRET", Err: errors.New("dialing http://c/api?token=SECRET: refused")}
			},
			check: func(t *testing.T, v v1Record) {
				if e := v.Candidate.Response.Error; e == nil || *e != "request" {
					t.Errorf("candidate response.error %v, want request", e)
				}
			},
			wantJSON: `"url":"http://c/api?token=[REDACTED]","response":{"error":"request","error_detail":"dialing http://c/api?token=[REDACTED]: refused"}`,
		},
		{
			name: "the body broke off: error body, with the status",
			change: func(r *Record) {
				r.Candidate = Side{URL: "http://c/api", Status: 200, Err: fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF)}
			},
			check: func(t *testing.T, v v1Record) {
				if e := v.Candidate.Response.Error; e == nil || *e != "body" || v.Candidate.Response.Status != 200 {
					t.Errorf("candidate response %+v, want error body with status 200", v.Candidate.Response)
				}
			},
			wantJSON: `"response":{"error":"body","status":200,"error_detail":"reading body: unexpected EOF"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecord()
			tt.change(r)
			b, err := enc.Encode(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			var v v1Record
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("a miffy 1.0 consumer cannot read the record: %v\n%s", err, b)
			}
			tt.check(t, v)
			if !strings.Contains(string(b), tt.wantJSON) {
				t.Errorf("record lacks %s:\n%s", tt.wantJSON, b)
			}
		})
	}
}
