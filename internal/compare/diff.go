package compare

// Kind says how a value differs.
type Kind string

const (
	Changed     Kind = "changed"
	Added       Kind = "added"        // present in the candidate only
	Removed     Kind = "removed"      // present in the reference only
	TypeChanged Kind = "type-changed" // e.g. a number became a string
)

// Class says whether a difference is held against the candidate.
type Class string

const (
	Regression Class = "regression"
	Noise      Class = "noise"
)

// Diff is one difference between two responses.
type Diff struct {
	// Path is "status", "header:Content-Type", "body" (non-JSON bodies) or a
	// JSON path such as "$.items[2].price".
	Path      string `json:"path"`
	Kind      Kind   `json:"kind"`
	Reference any    `json:"reference,omitempty"` // capped in size
	Candidate any    `json:"candidate,omitempty"` // capped in size
	Class     Class  `json:"class,omitempty"`
}
