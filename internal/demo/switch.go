package demo

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
)

// DefaultBadShare is the share of answers the switch spoils when turned on
// without a share.
const DefaultBadShare = 0.3

// Switch makes the demo candidate bad: while its share is above 0, that
// share of its GET /api/{value} answers carry a wrong "square" (one too
// many), still 200 and as fast: the kind of regression only a comparison
// catches. Its zero value is off. Safe for concurrent use.
//
// Over HTTP, on the candidate itself (not through the proxy):
//
//	GET  /demo/bad              the share now, as JSON
//	POST /demo/bad[?share=0.3]  turn it on (default DefaultBadShare)
//	POST /demo/good             turn it off
type Switch struct {
	mu    sync.Mutex
	share float64
	n     uint64 // answers counted since the share was set
}

// Set sets the share of spoiled answers, 0 (off) to 1.
func (s *Switch) Set(share float64) error {
	if math.IsNaN(share) || share < 0 || share > 1 {
		return fmt.Errorf("share %v: want 0 to 1", share)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.share, s.n = share, 0
	return nil
}

// Share returns the share of spoiled answers.
func (s *Switch) Share() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share
}

// spoil reports whether this answer is to be spoiled: exactly share of
// them, evenly spread (the n-th when n*share crosses a whole number).
func (s *Switch) spoil() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.share == 0 {
		return false
	}
	n := float64(s.n)
	s.n++
	return math.Floor((n+1)*s.share) > math.Floor(n*s.share)
}

func (s *Switch) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /demo/bad", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"share": s.Share()})
	})
	mux.HandleFunc("POST /demo/bad", func(w http.ResponseWriter, r *http.Request) {
		share := DefaultBadShare
		if v := r.URL.Query().Get("share"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "share must be a number from 0 to 1"})
				return
			}
			share = f
		}
		if err := s.Set(share); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"share": share})
	})
	mux.HandleFunc("POST /demo/good", func(w http.ResponseWriter, r *http.Request) {
		s.Set(0)
		writeJSON(w, http.StatusOK, map[string]any{"share": 0})
	})
}
