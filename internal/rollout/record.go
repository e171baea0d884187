// Package rollout advances a canary route's weight step by step on
// evidence: shadow first, then each step held for its interval and gated by
// the route's verdict, rolled back to weight 0 the moment the verdict
// fails. One controller acts for the fleet; its decisions and the
// operators' commands are records on the rollout topic, keyed by route, so
// the history is the state: a controller that takes over reads the topic
// and resumes where the last one stopped.
package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Kinds mark the values on the rollout topic (field "kind"), so that a
// reader never takes one for the other, nor for a mismatch record.
const (
	KindDecision = "miffy.rollout.decision"
	KindCommand  = "miffy.rollout.command"
)

// SchemaVersion is the version of the rollout records; fields are only
// ever added within a version.
const SchemaVersion = 1

// Decisions, as in Decision.Decision. Advance, Hold, Rollback and Promote
// are the controller's own; Pause, Resume and Abort answer an operator's
// command (Promote too, when commanded) or, for Pause, a condition the
// controller cannot resolve alone (inconclusive too long, a manual weight
// change), with the reason.
const (
	Advance  = "advance"
	Hold     = "hold"
	Rollback = "rollback"
	Promote  = "promote"
	Pause    = "pause"
	Resume   = "resume"
	Abort    = "abort"
)

// Commands an operator sends (miffy ctl rollout ...), as in Command.Command.
var Commands = []string{Pause, Resume, Abort, Promote}

// Decision is one decision of the acting controller for a route: the
// weight it set and why. Step indexes the rollout's stages: stage 0 is
// weight 0 (shadow only), stage i (1..len(steps)) is steps[i-1].
type Decision struct {
	Kind          string    `json:"kind"`
	SchemaVersion int       `json:"schema_version"`
	Route         string    `json:"route"`
	Step          int       `json:"step"`
	Weight        float64   `json:"weight"`
	Decision      string    `json:"decision"`
	Reasons       []string  `json:"reasons"`
	Controller    string    `json:"controller"`
	Time          time.Time `json:"time"`
	// Since is when the route entered its current step.
	Since time.Time `json:"since"`
	// Paused is true from a pause, rollback or abort until a resume.
	Paused bool `json:"paused"`
	// Done is true once the rollout promoted or was aborted.
	Done bool `json:"done,omitempty"`
	// Generation is the lease's group generation the controller held
	// when it decided: a reader ignores a decision of a lower generation
	// than one it has already read (a deposed controller's late write).
	Generation int32 `json:"generation,omitempty"`
	// CommandOffset, on a decision that answers an operator's command, is
	// the command's offset on the rollout topic: every command at or
	// before it for the route has been honoured, so a controller that
	// takes over never applies one twice.
	CommandOffset *int64 `json:"command_offset,omitempty"`
}

// Command is an operator's request for a route's rollout.
type Command struct {
	Kind          string `json:"kind"`
	SchemaVersion int    `json:"schema_version"`
	Route         string `json:"route"`
	Command       string `json:"command"`
	// By names who sent it (user@host), for the decision's reasons.
	By   string    `json:"by,omitempty"`
	Time time.Time `json:"time"`
}

// Validate reports a command that is not one of Commands or names no route.
func (c Command) Validate() error {
	if c.Route == "" {
		return errors.New("a rollout command needs a route")
	}
	if !slices.Contains(Commands, c.Command) {
		return fmt.Errorf("unknown rollout command %q (want one of %v)", c.Command, Commands)
	}
	return nil
}

// Value is one value read from the rollout topic: a decision or a command.
type Value struct {
	Decision *Decision
	Command  *Command
}

// Decode reads one value of the rollout topic; an error for anything that
// is not a rollout record of a known kind and version.
func Decode(b []byte) (Value, error) {
	var head struct {
		Kind          string `json:"kind"`
		SchemaVersion int    `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Value{}, fmt.Errorf("not a rollout record: %w", err)
	}
	if head.SchemaVersion != SchemaVersion {
		return Value{}, fmt.Errorf("rollout record schema_version %d, want %d", head.SchemaVersion, SchemaVersion)
	}
	switch head.Kind {
	case KindDecision:
		var d Decision
		if err := json.Unmarshal(b, &d); err != nil {
			return Value{}, fmt.Errorf("rollout decision: %w", err)
		}
		return Value{Decision: &d}, nil
	case KindCommand:
		var c Command
		if err := json.Unmarshal(b, &c); err != nil {
			return Value{}, fmt.Errorf("rollout command: %w", err)
		}
		return Value{Command: &c}, nil
	}
	return Value{}, fmt.Errorf("not a rollout record: kind %q", head.Kind)
}

// Encode returns d's record value, its kind and version set.
func (d Decision) Encode() ([]byte, error) {
	d.Kind, d.SchemaVersion = KindDecision, SchemaVersion
	if d.Reasons == nil {
		d.Reasons = []string{}
	}
	return json.Marshal(d)
}

// Encode returns c's record value, its kind and version set.
func (c Command) Encode() ([]byte, error) {
	c.Kind, c.SchemaVersion = KindCommand, SchemaVersion
	return json.Marshal(c)
}
