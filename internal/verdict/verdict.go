// Package verdict judges a route's evidence: pass, fail or inconclusive,
// with the reasons, each naming its figure and its limit. Rates (of
// regressions, of candidate errors) are judged by Wilson confidence bounds:
// pass when the upper bound is under the limit, fail when the lower bound
// is over it, inconclusive in between. Latency is judged by the candidate's
// p99 over the reference's together with a sign test of the paired
// durations. Below MinCompared the verdict is inconclusive, never pass.
package verdict

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Verdicts.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// Limits are the [verdict] keys. Routes may override each one (Override).
type Limits struct {
	// MinCompared is the fewest compared requests a verdict other than
	// inconclusive needs.
	MinCompared int64 `koanf:"min_compared" json:"min_compared"`
	// MaxRegressionRate and MaxCandidateErrorRate are the highest rates
	// (0..1) a pass allows, over compared requests.
	MaxRegressionRate     float64 `koanf:"max_regression_rate" json:"max_regression_rate"`
	MaxCandidateErrorRate float64 `koanf:"max_candidate_error_rate" json:"max_candidate_error_rate"`
	// MaxLatencyRatio is the highest candidate p99 over reference p99.
	MaxLatencyRatio float64 `koanf:"max_latency_ratio" json:"max_latency_ratio"`
	// Confidence of each bound, and 1 - the sign test's significance level.
	Confidence float64 `koanf:"confidence" json:"confidence"`
}

// Override is a route's verdict keys; nil fields take the [verdict] value.
type Override struct {
	MinCompared           *int64   `koanf:"min_compared"`
	MaxRegressionRate     *float64 `koanf:"max_regression_rate"`
	MaxCandidateErrorRate *float64 `koanf:"max_candidate_error_rate"`
	MaxLatencyRatio       *float64 `koanf:"max_latency_ratio"`
	Confidence            *float64 `koanf:"confidence"`
}

// With returns l with o's set fields in place of its own.
func (l Limits) With(o Override) Limits {
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	if o.MinCompared != nil {
		l.MinCompared = *o.MinCompared
	}
	set(&l.MaxRegressionRate, o.MaxRegressionRate)
	set(&l.MaxCandidateErrorRate, o.MaxCandidateErrorRate)
	set(&l.MaxLatencyRatio, o.MaxLatencyRatio)
	set(&l.Confidence, o.Confidence)
	return l
}

// Validate checks the limits; errors name the key under prefix (e.g.
// "verdict.").
func (l Limits) Validate(prefix string) error {
	var errs []error
	share := func(key string, f float64) {
		if !(f >= 0 && f <= 1) {
			errs = append(errs, fmt.Errorf("%s%s: %v is not between 0 and 1", prefix, key, f))
		}
	}
	if l.MinCompared < 1 {
		errs = append(errs, fmt.Errorf("%smin_compared: %d is less than 1", prefix, l.MinCompared))
	}
	share("max_regression_rate", l.MaxRegressionRate)
	share("max_candidate_error_rate", l.MaxCandidateErrorRate)
	if !(l.MaxLatencyRatio >= 1) || math.IsInf(l.MaxLatencyRatio, 0) {
		errs = append(errs, fmt.Errorf("%smax_latency_ratio: %v is not a ratio of at least 1", prefix, l.MaxLatencyRatio))
	}
	if !(l.Confidence >= 0.5 && l.Confidence < 1) {
		errs = append(errs, fmt.Errorf("%sconfidence: %v is not in [0.5, 1)", prefix, l.Confidence))
	}
	return errors.Join(errs...)
}

// Figures are the evidence judged, over compared requests.
type Figures struct {
	Compared        int64 `json:"compared"`
	Regressions     int64 `json:"regressions"`
	CandidateErrors int64 `json:"candidate_errors"`
	// ReferenceP99 and CandidateP99 in milliseconds; 0 when unknown.
	ReferenceP99 float64 `json:"reference_p99_ms"`
	CandidateP99 float64 `json:"candidate_p99_ms"`
	// Slower and Faster count the compared requests on which the candidate
	// was slower or faster than its own reference, by more than the tie.
	Slower int64 `json:"slower"`
	Faster int64 `json:"faster"`
	Ties   int64 `json:"ties"`
}

// Rate is a rate with its confidence bounds.
type Rate struct {
	Rate  float64 `json:"rate"`
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Limit float64 `json:"limit"`
}

// Result is a verdict with its reasons and the statistics behind them.
type Result struct {
	Verdict            string   `json:"verdict"`
	Reasons            []string `json:"reasons"`
	RegressionRate     Rate     `json:"regression_rate"`
	CandidateErrorRate Rate     `json:"candidate_error_rate"`
	// LatencyRatio is candidate p99 over reference p99 (0 when unknown);
	// SignP the sign test's p-value that the candidate is slower.
	LatencyRatio float64 `json:"latency_ratio"`
	SignP        float64 `json:"sign_test_p"`
	Limits       Limits  `json:"limits"`
}

// Judge weighs f against l. Any failing figure fails; below MinCompared
// the verdict is inconclusive; otherwise any undecided figure makes it
// inconclusive, and all passing make a pass. Every figure gives a reason,
// failing ones first.
func Judge(f Figures, l Limits) Result {
	r := Result{Limits: l, SignP: SignTest(f.Slower, f.Faster)}
	conf := "(" + trimFloat(100*l.Confidence) + " % CI "
	var fails, undecided, passes []string
	rate := func(name string, k int64, limit float64) Rate {
		lo, hi := Wilson(k, f.Compared, l.Confidence)
		rt := Rate{Rate: ratio(k, f.Compared), Lower: lo, Upper: hi, Limit: limit}
		fig := fmt.Sprintf("%s %s %s%s–%s)", name, pct(rt.Rate), conf, pctNum(lo), pct(hi))
		switch {
		case lo > limit:
			fails = append(fails, fig+" > "+pct(limit))
		case hi < limit:
			passes = append(passes, fig+" < "+pct(limit))
		default:
			undecided = append(undecided, fig+": not yet clear of "+pct(limit))
		}
		return rt
	}
	r.RegressionRate = rate("regression rate", f.Regressions, l.MaxRegressionRate)
	r.CandidateErrorRate = rate("candidate error rate", f.CandidateErrors, l.MaxCandidateErrorRate)

	// Without reference latencies there is no ratio to judge.
	alpha := 1 - l.Confidence
	if f.ReferenceP99 > 0 {
		r.LatencyRatio = f.CandidateP99 / f.ReferenceP99
		fig := fmt.Sprintf("latency p99 %s / %s ms = %s", ms(f.CandidateP99), ms(f.ReferenceP99), trimRatio(r.LatencyRatio))
		signs := fmt.Sprintf("candidate slower on %d of %d paired requests (sign test p = %s)",
			f.Slower, f.Slower+f.Faster, strconv.FormatFloat(r.SignP, 'g', 2, 64))
		switch {
		case r.LatencyRatio <= l.MaxLatencyRatio:
			passes = append(passes, fig+" ≤ "+trimRatio(l.MaxLatencyRatio))
		case r.SignP < alpha:
			fails = append(fails, fig+" > "+trimRatio(l.MaxLatencyRatio)+"; "+signs)
		default:
			undecided = append(undecided, fig+" > "+trimRatio(l.MaxLatencyRatio)+" but "+signs+": not more often than chance allows")
		}
	}

	switch {
	case f.Compared < l.MinCompared:
		r.Verdict = Inconclusive
		r.Reasons = append(r.Reasons, fmt.Sprintf("compared %d < min_compared %d", f.Compared, l.MinCompared))
	case len(fails) > 0:
		r.Verdict = Fail
	case len(undecided) > 0:
		r.Verdict = Inconclusive
	default:
		r.Verdict = Pass
	}
	r.Reasons = append(r.Reasons, fails...)
	r.Reasons = append(r.Reasons, undecided...)
	r.Reasons = append(r.Reasons, passes...)
	return r
}

// Worst is the verdict of several: fail over inconclusive over pass.
func Worst(verdicts ...string) string {
	w := Pass
	for _, v := range verdicts {
		switch {
		case v == Fail:
			return Fail
		case v == Inconclusive:
			w = Inconclusive
		}
	}
	return w
}

func ratio(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// pct formats a share as a percentage with a space before "%", as in
// "0.8 %" or "0.09 %".
func pct(f float64) string { return pctNum(f) + " %" }

func pctNum(f float64) string {
	p := 100 * f
	switch {
	case p == 0:
		return "0"
	case p >= 1:
		return trimFloat(math.Round(p*10) / 10)
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func trimRatio(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 2, 64), "0")
}

func ms(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}
