package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/itchyny/gojq"
)

// jqFilter is a compiled canonicalize filter. It is safe for concurrent use.
type jqFilter struct {
	src     string
	code    *gojq.Code
	timeout time.Duration // bounds one run
}

// compileJQ parses and compiles a jq filter. The filter sees no environment
// variables ($ENV and env are empty) and has no input iterator (input and
// inputs fail), so it can only transform the body it is given.
func compileJQ(src string, timeout time.Duration) (*jqFilter, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	return &jqFilter{src: src, code: code, timeout: timeout}, nil
}

// jqTimeoutError is returned when a run takes longer than the filter's timeout.
type jqTimeoutError struct{ timeout time.Duration }

func (e jqTimeoutError) Error() string {
	return fmt.Sprintf("jq: filter ran longer than %v (canonicalize_timeout)", e.timeout)
}

// run applies the filter to v, a value as decoded by decodeJSON, and returns
// its first output converted back to decodeJSON's types. A filter with no
// output yields null.
//
// Number handling: gojq accepts json.Number input as is and keeps it through
// paths the filter does not touch, so v is passed without conversion. Numbers
// the filter computes come back as int, float64 or *big.Int and are turned
// into json.Number here (floats in the shortest form that round-trips; NaN
// becomes null and ±Inf the largest finite float64, as jq prints them).
func (f *jqFilter) run(ctx context.Context, v any) (out any, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	defer func() {
		// gojq is not expected to panic, but it runs on hostile bodies.
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("jq: panic: %v", p)
		}
	}()
	iter := f.code.RunWithContext(ctx, v)
	got, ok := iter.Next()
	if !ok {
		return nil, nil
	}
	if e, isErr := got.(error); isErr {
		if errors.Is(e, context.DeadlineExceeded) {
			return nil, jqTimeoutError{f.timeout}
		}
		var halt *gojq.HaltError
		if errors.As(e, &halt) && halt.Value() == nil {
			return nil, nil // "halt" without an error value: no output
		}
		return nil, fmt.Errorf("jq: %w", e)
	}
	return fromJQ(got, 0)
}

// fromJQ converts a gojq output value to decodeJSON's types.
func fromJQ(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch v := v.(type) {
	case nil, bool, string, json.Number:
		return v, nil
	case int:
		return json.Number(strconv.Itoa(v)), nil
	case float64:
		switch {
		case math.IsNaN(v):
			return nil, nil
		case math.IsInf(v, 1):
			v = math.MaxFloat64
		case math.IsInf(v, -1):
			v = -math.MaxFloat64
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
	case *big.Int:
		return json.Number(v.String()), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := fromJQ(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := fromJQ(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	default:
		return nil, fmt.Errorf("jq: unexpected output type %T", v)
	}
}
