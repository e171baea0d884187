package board

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Diffy's API (twitter/diffy, opendiffy/diffy) under /api/1/, in its JSON
// shapes, so that scripts and dashboards written for Diffy carry over. A
// Diffy "endpoint" is a miffy route; figures are over everything read.

func (s *Server) diffyRoutes() {
	s.mux.HandleFunc("GET /api/1/endpoints", s.diffyEndpoints)
	s.mux.HandleFunc("GET /api/1/endpoints/{ep}/stats", s.diffyStats)
	s.mux.HandleFunc("GET /api/1/endpoints/{ep}/fields/{path}/results", s.diffyResults)
	s.mux.HandleFunc("GET /api/1/requests/{id}", s.diffyRequest)
	s.mux.HandleFunc("GET /api/1/info", s.diffyInfo)
}

type diffyEndpoint struct {
	Total       int64 `json:"total"`
	Differences int64 `json:"differences"`
}

func (s *Server) diffyEndpoints(w http.ResponseWriter, r *http.Request) {
	out := map[string]diffyEndpoint{}
	for _, rt := range s.st.Overview(Range{Name: "all"}, nil).Routes {
		out[rt.RouteSummary.Route] = diffyEndpoint{Total: rt.Compared, Differences: rt.Mismatches}
	}
	writeJSON(w, http.StatusOK, out)
}

type diffyField struct {
	Differences        int64   `json:"differences"`
	Noise              int64   `json:"noise"`
	RelativeDifference float64 `json:"relative_difference"`
	AbsoluteDifference float64 `json:"absolute_difference"`
	Weight             *int64  `json:"weight,omitempty"`
}

func boolParam(r *http.Request, name string, def bool) bool {
	if v, err := strconv.ParseBool(r.URL.Query().Get(name)); err == nil {
		return v
	}
	return def
}

// diffyStats: fields are the differing paths. relative_difference is the
// share of a path's differences that are not noise, absolute_difference
// its share of the endpoint's requests, both in percent; exclude_noise
// (default true) leaves out paths whose differences are all noise.
func (s *Server) diffyStats(w http.ResponseWriter, r *http.Request) {
	d, ok := s.st.Detail(r.PathValue("ep"), Range{Name: "all"}, nil)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
		return
	}
	excludeNoise, weights := boolParam(r, "exclude_noise", true), boolParam(r, "include_weights", false)
	fields := map[string]diffyField{}
	for _, p := range d.TopPaths {
		if p.Count == 0 || excludeNoise && p.Noise == p.Count {
			continue
		}
		f := diffyField{Differences: p.Count, Noise: p.Noise,
			RelativeDifference: 100 * float64(p.Count-p.Noise) / float64(p.Count)}
		if d.Compared > 0 {
			f.AbsoluteDifference = 100 * float64(p.Count) / float64(d.Compared)
		}
		if weights {
			n := p.Count
			f.Weight = &n
		}
		fields[p.Path] = f
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"endpoint": diffyEndpoint{Total: d.Compared, Differences: d.Mismatches},
		"fields":   fields,
	})
}

// maxResults bounds the records fetched for one results list.
const maxResults = 10

func (s *Server) diffyResults(w http.ResponseWriter, r *http.Request) {
	ep, path := r.PathValue("ep"), r.PathValue("path")
	d, ok := s.st.Detail(ep, Range{Name: "all"}, nil)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
		return
	}
	withRequest := boolParam(r, "include_request", false)
	results := []map[string]any{}
	for _, rec := range d.Recent {
		if len(results) >= maxResults {
			break
		}
		has := false
		for _, p := range rec.Paths {
			has = has || p.Path == path
		}
		if !has {
			continue
		}
		b, _, err := s.fetch(r.Context(), rec.Ref)
		if err != nil {
			continue
		}
		if res, ok := diffyResult(b, withRequest); ok {
			results = append(results, res)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": ep, "path": path, "requests": results})
}

func (s *Server) diffyRequest(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.st.Lookup(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Request purged"})
		return
	}
	b, status, err := s.fetch(r.Context(), ref)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	res, ok := diffyResult(b, boolParam(r, "include_request", true))
	if !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "not a miffy record"})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) diffyInfo(w http.ResponseWriter, r *http.Request) {
	target := func(t string) map[string]string { return map[string]string{"target": t} }
	writeJSON(w, http.StatusOK, map[string]any{
		"primary":    target(s.cfg.Info.Reference),
		"candidate":  target(s.cfg.Info.Candidate),
		"secondary":  target(s.cfg.Info.Secondary),
		"protocol":   "http",
		"last_reset": 0,
	})
}

// diffyRecord is the part of a miffy record Diffy's shapes need.
type diffyRecord struct {
	ID          string          `json:"id"`
	Timestamp   time.Time       `json:"timestamp"`
	Endpoint    string          `json:"endpoint"`
	Route       string          `json:"route"`
	Request     json.RawMessage `json:"request"`
	Reference   json.RawMessage `json:"reference"`
	Candidate   json.RawMessage `json:"candidate"`
	Differences []struct {
		Path      string          `json:"path"`
		Kind      string          `json:"kind"`
		Reference json.RawMessage `json:"reference"`
		Candidate json.RawMessage `json:"candidate"`
		Class     string          `json:"class"`
	} `json:"differences"`
}

// diffyResult turns a miffy record into Diffy's difference result: left is
// the reference, right the candidate.
func diffyResult(b []byte, withRequest bool) (map[string]any, bool) {
	var rec diffyRecord
	if json.Unmarshal(b, &rec) != nil || rec.ID == "" {
		return nil, false
	}
	diffs := map[string]any{}
	for _, d := range rec.Differences {
		diffs[d.Path] = map[string]any{"type": d.Kind, "left": d.Reference, "right": d.Candidate, "class": d.Class}
	}
	res := map[string]any{
		"id":             rec.ID,
		"trace_id":       nil,
		"timestamp_msec": rec.Timestamp.UnixMilli(),
		"endpoint":       rec.Route,
		"differences":    diffs,
	}
	if withRequest {
		res["request"], res["left"], res["right"] = rec.Request, rec.Reference, rec.Candidate
	}
	return res, true
}
