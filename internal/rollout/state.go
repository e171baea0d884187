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

// apply takes a decision read from the topic (one its Fence admitted).
func (s *State) apply(d Decision) {
	s.Generation = d.Generation
	s.Started = true
	s.Step, s.Weight, s.Since, s.Time = d.Step, d.Weight, d.Since, d.Time
	s.Paused, s.Done, s.Last, s.Reasons, s.Controller = d.Paused, d.Done, d.Decision, d.Reasons, d.Controller
	if d.CommandOffset != nil && *d.CommandOffset > s.Answered {
		s.Answered = *d.CommandOffset
	}
}

// Fence admits the decisions that count, read in the topic's order: one
// of a lower lease generation than any admitted before it was written by
// a controller that had lost its lease, and counts for no route. The
// controllers, the page and ctl rollout status all read the topic through
// one.
type Fence struct{ gen int32 }

// Admit says whether d counts, and raises the fence to its generation.
func (f *Fence) Admit(d *Decision) bool {
	if d.Generation < f.gen {
		return false
	}
	f.gen = d.Generation
	return true
}

// Generation is the highest generation admitted.
func (f *Fence) Generation() int32 { return f.gen }
