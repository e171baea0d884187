// Package demo holds the two upstreams of `miffy demo` and examples/demo: a
// reference and a candidate that answer GET /api/{value} alike, except for
// a few values where the candidate differs on purpose.
//
//	value   candidate
//	1, 2, 3 same answer as the reference
//	4       a changed field ("message")
//	5       a missing field ("tags")
//	6       500 Internal Server Error
//	7       the same answer, 1.5 s late
//	8       a changed number type ("square" as a string)
//	other   same answer (non-numbers get 400 from both)
//
// The candidate's Switch makes it bad on a share of all answers (a wrong
// "square"), for the rollout demo to roll back.
package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Reference returns the reference service's handler.
func Reference() http.Handler { return handler(nil) }

// Candidate returns the candidate service's handler, with its own Switch
// (off) turned over HTTP (see Switch).
func Candidate() http.Handler { return CandidateWith(new(Switch)) }

// CandidateWith returns the candidate service's handler, spoiling answers
// as sw says.
func CandidateWith(sw *Switch) http.Handler { return handler(sw) }

// handler is the reference's (sw nil) or the candidate's.
func handler(sw *Switch) http.Handler {
	candidate := sw != nil
	mux := http.NewServeMux()
	name := "reference"
	if candidate {
		name = "candidate"
	}
	mux.HandleFunc("GET /api/{value}", func(w http.ResponseWriter, r *http.Request) {
		v := r.PathValue("value")
		n, err := strconv.Atoi(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "value must be a whole number"})
			return
		}
		body := map[string]any{
			"value":   n,
			"square":  n * n,
			"message": fmt.Sprintf("hello %d", n),
			"tags":    []string{"demo", "miffy"},
		}
		status := http.StatusOK
		if candidate {
			switch n {
			case 4:
				body["message"] = fmt.Sprintf("hi %d", n)
			case 5:
				delete(body, "tags")
			case 6:
				status = http.StatusInternalServerError
				body = map[string]any{"error": "candidate failed"}
			case 7:
				select {
				case <-time.After(1500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			case 8:
				body["square"] = strconv.Itoa(n * n)
			}
			if status == http.StatusOK && sw.spoil() {
				body["square"] = n*n + 1
			}
		}
		writeJSON(w, status, body)
	})
	if candidate {
		sw.routes(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "miffy demo %s: try GET /api/{value}\n", name)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
