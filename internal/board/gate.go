package board

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/miffy-proxy/miffy/internal/verdict"
)

// VerdictAnswer is GET /api/verdict's JSON: what Argo Rollouts' web metric
// provider reads (jsonPath "{$.verdict}").
type VerdictAnswer struct {
	Route   string          `json:"route"`
	Verdict string          `json:"verdict"`
	Reasons []string        `json:"reasons"`
	Range   string          `json:"range"`
	From    string          `json:"from,omitempty"`
	To      string          `json:"to,omitempty"`
	Figures verdict.Figures `json:"figures"`
	Detail  *verdict.Result `json:"judgement,omitempty"`
	Source  string          `json:"source,omitempty"`
}

// judge returns the verdict of route over rg; a route without evidence is
// inconclusive.
func (s *Server) judge(route string, rg Range) VerdictAnswer {
	a := VerdictAnswer{Route: route, Range: rg.Name, Reasons: []string{}}
	if a.Range == "" {
		a.Range = "all"
	}
	if !rg.From.IsZero() {
		a.From = rg.From.UTC().Format("2006-01-02T15:04:05Z")
	}
	if !rg.To.IsZero() {
		a.To = rg.To.UTC().Format("2006-01-02T15:04:05Z")
	}
	d, ok := s.st.Detail(route, rg, s.cfg.Limits)
	if !ok {
		a.Verdict = verdict.Inconclusive
		a.Reasons = append(a.Reasons, "no evidence for this route (no record or tally read)")
		return a
	}
	rs := d.RouteSummary
	a.Verdict, a.Reasons, a.Detail, a.Source = rs.Verdict, rs.Reasons, rs.Judgement, rs.Source
	a.Figures = rs.Figures()
	return a
}

// verdict answers GET /api/verdict?route=NAME[&range=...]: 200 with the
// verdict whatever it is (Argo's web provider judges the JSON).
func (s *Server) verdict(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Query().Get("route")
	if route == "" {
		writeError(w, http.StatusBadRequest, "route: required, e.g. /api/verdict?route=/api/{value}")
		return
	}
	rg, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.judge(route, rg))
}

// flaggerPayload is the part of Flagger's webhook payload the gate reads.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Metadata  map[string]string `json:"metadata"`
}

// maxGateBody bounds a webhook payload.
const maxGateBody = 64 << 10

// flagger answers Flagger's webhooks (POST /gate/flagger): the route is
// metadata.route (and metadata.range, optional). 200 on pass; 412 on fail
// or inconclusive, with the verdict and reasons in the body, so Flagger
// retries the check and halts or rolls back as it is told.
func (s *Server) flagger(w http.ResponseWriter, r *http.Request) {
	var p flaggerPayload
	dec := json.NewDecoder(io.LimitReader(r.Body, maxGateBody))
	if err := dec.Decode(&p); err != nil {
		http.Error(w, "miffy: want Flagger's webhook payload (JSON): "+err.Error(), http.StatusBadRequest)
		return
	}
	route := p.Metadata["route"]
	if route == "" {
		http.Error(w, `miffy: metadata.route is required (the miffy route to judge), e.g. metadata: {route: "/api/{value}"}`, http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	if v := p.Metadata["range"]; v != "" {
		q.Set("range", v)
	}
	r.URL.RawQuery = q.Encode()
	rg, err := parseRange(r)
	if err != nil {
		http.Error(w, "miffy: metadata."+err.Error(), http.StatusBadRequest)
		return
	}
	a := s.judge(route, rg)
	status := http.StatusOK
	if a.Verdict != verdict.Pass {
		status = http.StatusPreconditionFailed
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s: %s\n%s\n", route, a.Verdict, strings.Join(a.Reasons, "\n"))
}
