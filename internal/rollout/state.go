package rollout

import "time"

// State is a route's rollout as its decisions on the rollout topic say,
// read in order.
type State struct {
	// Started is false until the route's first decision.
	Started bool
	Step    int
	Weight  float64
	// Since is when the current stage began: its evidence is the tallies
	// of intervals that start at or after it.
	Since time.Time
	// Time is when the latest decision was taken.
	Time       time.Time
	Paused     bool
	Done       bool
	Last       string
	Reasons    []string
	Controller string
	// Answered is the offset of the latest command honoured; -1: none.
	Answered int64
	// Generation is the highest lease generation read.
	Generation int32
}

func newState() State { return State{Answered: -1} }

// Active says whether the controller judges the rollout: started, not
// paused, not done.
func (s State) Active() bool { return s.Started && !s.Paused && !s.Done }

// apply takes a decision read from the topic; it returns false and
// changes nothing for a decision of a lower generation than one already
// applied (written by a controller that had lost its lease).
func (s *State) apply(d Decision) bool {
	if d.Generation < s.Generation {
		return false
	}
	s.Generation = d.Generation
	s.Started = true
	s.Step, s.Weight, s.Since, s.Time = d.Step, d.Weight, d.Since, d.Time
	s.Paused, s.Done, s.Last, s.Reasons, s.Controller = d.Paused, d.Done, d.Decision, d.Reasons, d.Controller
	if d.CommandOffset != nil && *d.CommandOffset > s.Answered {
		s.Answered = *d.CommandOffset
	}
	return true
}
