package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// schemaVersion is the record format this package reads (see
// publish.SchemaVersion).
const schemaVersion = 1

// record is the part of a published record (full or compact form) that the
// report needs; the rest (headers, bodies, difference values) is skipped.
type record struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`
	Timestamp     time.Time `json:"timestamp"`
	Route         string    `json:"route"`
	Endpoint      string    `json:"endpoint"`
	Equal         *bool     `json:"equal"`
	Request       struct {
		Route string `json:"route"`
	} `json:"request"`
	Reference   *side        `json:"reference"`
	Candidate   *side        `json:"candidate"`
	Differences []difference `json:"differences"`
}

// side is one upstream's answer. The status is at the top in the compact
// form, in response in the full one. The full form has response.error when
// the call failed, both forms have error_kind then.
type side struct {
	Status     int     `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	ErrorKind  string  `json:"error_kind"`
	Response   struct {
		Status int     `json:"status"`
		Error  *string `json:"error"`
	} `json:"response"`
}

// status is the HTTP status received, in either form; 0 if none.
func (s *side) status() int {
	if s.Status != 0 {
		return s.Status
	}
	return s.Response.Status
}

// KindServerError is the candidate error kind of a 5xx answer where the
// reference answered below 500.
const KindServerError = "5xx"

// candidateError reports whether the record counts as a candidate error,
// and its kind: the candidate gave no answer (its error_kind), or it
// answered 5xx where the reference gave a complete answer below 500
// (KindServerError). A 5xx from both sides is not the candidate's doing.
func (r *record) candidateError() (kind string, ok bool) {
	if kind, failed := r.Candidate.failed(); failed {
		return kind, true
	}
	if _, failed := r.Reference.failed(); failed {
		return "", false
	}
	cs, rs := r.Candidate.status(), r.Reference.status()
	if cs >= 500 && cs <= 599 && rs > 0 && rs < 500 {
		return KindServerError, true
	}
	return "", false
}

// failed reports whether the upstream gave no (complete) answer, and how.
func (s *side) failed() (kind string, ok bool) {
	switch {
	case s.ErrorKind != "":
		return s.ErrorKind, true
	case s.Response.Error != nil:
		return "other", true
	}
	return "", false
}

type difference struct {
	Path  string `json:"path"`
	Class string `json:"class"`
}

var errNotRecord = errors.New("not a miffy record")

// decode parses one record value. Anything that is not a miffy record of
// schema_version 1 is an error.
func decode(b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotRecord, err)
	}
	switch {
	case r.SchemaVersion != schemaVersion:
		return nil, fmt.Errorf("%w: schema_version %d", errNotRecord, r.SchemaVersion)
	case r.ID == "" || r.Equal == nil || r.Reference == nil || r.Candidate == nil:
		return nil, fmt.Errorf("%w: id, equal, reference or candidate missing", errNotRecord)
	}
	if r.Route == "" {
		r.Route = r.Request.Route
	}
	return &r, nil
}
