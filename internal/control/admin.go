package control

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// AdminHandler serves the admin API, every call authenticated with the
// bearer token:
//
//	GET  /admin/routes   the routes with their live state
//	POST /admin/routes   one Change as JSON, e.g. {"route":"checkout","weight":5}
//
// Answers are JSON; errors are {"error": "..."} with 400 (bad change), 401
// (no or wrong token), 404 (no such route).
func AdminHandler(m *Manager, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/routes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Routes())
	})
	mux.HandleFunc("POST /admin/routes", func(w http.ResponseWriter, r *http.Request) {
		var c Change
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decoding the change: " + err.Error()})
			return
		}
		st, err := m.Apply(c, "admin", r.RemoteAddr)
		switch {
		case errors.Is(err, ErrUnknownRoute):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="miffy admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// TrimToken cleans a token read from a file or the environment.
func TrimToken(s string) string { return strings.TrimSpace(s) }
