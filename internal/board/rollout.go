package board

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/rollout"
)

// maxRolloutEvents bounds the events kept per route's rollout: the oldest
// go first. Repeated holds at one step take one event (see addRollout).
const maxRolloutEvents = 500

// RolloutEvent is one value of the rollout topic as the page draws it: a
// controller's decision, or an operator's command (Command set).
type RolloutEvent struct {
	Offset     int64     `json:"offset"`
	Time       time.Time `json:"time"`
	Decision   string    `json:"decision,omitempty"`
	Step       int       `json:"step"`
	Weight     float64   `json:"weight"`
	Reasons    []string  `json:"reasons,omitempty"`
	Controller string    `json:"controller,omitempty"`
	Paused     bool      `json:"paused,omitempty"`
	Done       bool      `json:"done,omitempty"`
	// Repeats counts the further holds folded into this one, at the same
	// step and weight; Time and Reasons are the latest one's, First the
	// first one's.
	Repeats int       `json:"repeats,omitempty"`
	First   time.Time `json:"first,omitzero"`
	Command string    `json:"command,omitempty"`
	By      string    `json:"by,omitempty"`
}

// Rollout is a route's rollout: its state after the last decision and its
// events, oldest first.
type Rollout struct {
	Route      string         `json:"route"`
	Step       int            `json:"step"`
	Weight     float64        `json:"weight"`
	Decision   string         `json:"decision"`
	Time       time.Time      `json:"time"`
	Paused     bool           `json:"paused"`
	Done       bool           `json:"done"`
	Controller string         `json:"controller"`
	Reasons    []string       `json:"reasons"`
	Events     []RolloutEvent `json:"events,omitempty"`
}

var errNoRoute = errors.New("a rollout record without a route")

type rolloutData struct {
	last   *RolloutEvent // the last decision
	events []RolloutEvent
}

// AddRollout reads one value of the rollout topic at offset; false if it
// is not a rollout record, or a decision of a deposed controller.
func (st *Store) AddRollout(value []byte, offset int64) bool {
	v, err := rollout.Decode(value)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err == nil && (v.Decision != nil && v.Decision.Route == "" || v.Command != nil && v.Command.Route == "") {
		err = errNoRoute
	}
	if err != nil {
		st.unread++
		return false
	}
	var ev RolloutEvent
	var route string
	switch {
	case v.Decision != nil:
		d := v.Decision
		route = d.Route
		ev = RolloutEvent{Offset: offset, Time: d.Time, Decision: d.Decision, Step: d.Step, Weight: d.Weight,
			Reasons: d.Reasons, Controller: d.Controller, Paused: d.Paused, Done: d.Done}
	case v.Command != nil:
		route = v.Command.Route
		ev = RolloutEvent{Offset: offset, Time: v.Command.Time, Command: v.Command.Command, By: v.Command.By}
	}
	// The late decisions of a controller that had lost its lease count
	// for no route, as for the controllers.
	if d := v.Decision; d != nil && !st.fence.Admit(d) {
		return false
	}
	r, ok := st.rollouts[route]
	if !ok {
		if len(st.rollouts) >= st.maxRoutes {
			st.unread++
			return false
		}
		r = &rolloutData{}
		st.rollouts[route] = r
	}
	r.add(ev)
	st.touch()
	return true
}

func (r *rolloutData) add(ev RolloutEvent) {
	if ev.Command == "" {
		// Holds at one step fold into one event: a controller holding for
		// an hour every 10 s must not push the rollout's start out.
		if n := len(r.events); ev.Decision == rollout.Hold && n > 0 {
			prev := &r.events[n-1]
			if prev.Decision == rollout.Hold && prev.Step == ev.Step && prev.Weight == ev.Weight && prev.Paused == ev.Paused {
				prev.First = cmp.Or(prev.First, prev.Time)
				prev.Time, prev.Reasons, prev.Offset, prev.Controller = ev.Time, ev.Reasons, ev.Offset, ev.Controller
				prev.Repeats++
				r.last = prev
				return
			}
		}
	}
	r.events = append(r.events, ev)
	if len(r.events) > maxRolloutEvents {
		r.events = slices.Delete(r.events, 0, len(r.events)-maxRolloutEvents)
	}
	// r.last points into events: find the last decision again.
	r.last = nil
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Command == "" {
			r.last = &r.events[i]
			break
		}
	}
}

func (r *rolloutData) summary(route string, events bool) Rollout {
	out := Rollout{Route: route, Reasons: []string{}}
	if d := r.last; d != nil {
		out.Step, out.Weight, out.Decision, out.Time = d.Step, d.Weight, d.Decision, d.Time
		out.Paused, out.Done, out.Controller = d.Paused, d.Done, d.Controller
		if d.Reasons != nil {
			out.Reasons = d.Reasons
		}
	}
	if events {
		out.Events = slices.Clone(r.events)
	}
	return out
}

// Rollouts returns every route's rollout state, by route.
func (st *Store) Rollouts() []Rollout {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []Rollout{}
	for name, r := range st.rollouts {
		out = append(out, r.summary(name, false))
	}
	slices.SortFunc(out, func(a, b Rollout) int { return cmp.Compare(a.Route, b.Route) })
	return out
}

// Rollout returns a route's rollout with its events; false if the topic
// has nothing for the route.
func (st *Store) Rollout(route string) (Rollout, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, ok := st.rollouts[route]
	if !ok {
		return Rollout{}, false
	}
	return r.summary(route, true), true
}

// FollowRollouts reads the rollout topic from its start into st until ctx
// is done.
func FollowRollouts(ctx context.Context, st *Store, client []kgo.Opt, topic string, log zerolog.Logger) error {
	return consume(ctx, client, []string{topic}, kgo.NewOffset().AtStart(), log, func(r *kgo.Record) { st.AddRollout(r.Value, r.Offset) })
}

// rolloutRoutes mounts the rollout API: GET /api/rollouts (every route's
// state) and GET /api/rollout?route=R (its timeline).
func (s *Server) rolloutRoutes() {
	s.mux.HandleFunc("GET /api/rollouts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.st.Rollouts())
	})
	s.mux.HandleFunc("GET /api/rollout", func(w http.ResponseWriter, r *http.Request) {
		route := r.URL.Query().Get("route")
		if route == "" {
			writeError(w, http.StatusBadRequest, "want /api/rollout?route=ROUTE")
			return
		}
		ro, ok := s.st.Rollout(route)
		if !ok {
			writeError(w, http.StatusNotFound, "no rollout records for this route")
			return
		}
		writeJSON(w, http.StatusOK, ro)
	})
}
