package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/miffy-proxy/miffy/internal/report"
	"github.com/miffy-proxy/miffy/internal/tally"
	"github.com/miffy-proxy/miffy/internal/verdict"
)

// Evidence is what a stage is judged on: the route's tallies of intervals
// that began at or after the stage's Since, from every instance, merged.
type Evidence struct {
	// Tally merges the stage's tallies; nil without any.
	Tally *tally.Tally
	// LastTally is the end of the latest tally read for the route (of any
	// stage); zero: none.
	LastTally time.Time
}

// staleAfter is how many tally intervals without a tally mean no
// evidence arriving.
const staleAfter = 3

// Hold kinds: why a stage holds. A hold is recorded once per stage and
// kind; waiting for the interval of a passing stage is not recorded.
const (
	holdWaiting      = "waiting"
	holdInconclusive = "inconclusive"
	holdNoEvidence   = "no-evidence"
)

// judgement is the outcome of one evaluation of an active rollout.
type judgement struct {
	Decision
	// hold is the kind of a Hold.
	hold string
}

// figures returns the shadow figures and, from stage 1 on, the served
// figures of ev: the candidate's own served requests, its errors (5xx and
// no answer) and its latency against the reference's served requests.
// The served latency has no pairs: each candidate request is set against
// the reference's served median instead (Slower: surely above it; Faster:
// the rest), a median test that the verdict's sign test then judges.
func figures(ev Evidence, stage int) (shadow verdict.Figures, served *verdict.Figures) {
	if ev.Tally == nil {
		return verdict.Figures{}, nil
	}
	shadow = report.TallySummary(ev.Tally).Figures()
	if stage < 1 {
		return shadow, nil
	}
	f := verdict.Figures{}
	if c := ev.Tally.Served["candidate"]; c != nil {
		f.Compared = c.Latency.N()
		f.CandidateErrors = c.Status["5xx"] + c.Status["error"]
		f.CandidateP99 = c.Latency.Quantile(0.99)
		if r := ev.Tally.Served["reference"]; r != nil && r.Latency.N() > 0 {
			f.ReferenceP99 = r.Latency.Quantile(0.99)
			f.Slower = c.Latency.Above(r.Latency.Quantile(0.5))
			f.Faster = f.Compared - f.Slower
		}
	}
	return shadow, &f
}

// judge evaluates an active rollout at now: rollback on a failing
// verdict, pause once inconclusive (or without evidence) for
// MaxInconclusive, hold while inconclusive or without evidence arriving,
// advance (promote into the last stage) once passing for Interval.
func judge(r Route, st State, ev Evidence, now time.Time, tallyInterval time.Duration) judgement {
	d := Decision{Route: r.Name, Step: st.Step, Weight: st.Weight, Time: now, Since: st.Since}
	shadowF, servedF := figures(ev, st.Step)
	sv := verdict.Judge(shadowF, r.Limits)
	results := []string{sv.Verdict}
	// A failing side's reasons come first; the verdict lists a side's
	// failing figures first.
	var fails, others []string
	add := func(prefix string, res verdict.Result, skipRegression bool) {
		for _, reason := range res.Reasons {
			if skipRegression && strings.HasPrefix(reason, "regression rate") {
				continue // nothing served is compared
			}
			if res.Verdict == verdict.Fail {
				fails = append(fails, prefix+reason)
			} else {
				others = append(others, prefix+reason)
			}
		}
	}
	add("shadow: ", sv, false)
	if servedF != nil {
		served := verdict.Judge(*servedF, r.Limits)
		results = append(results, served.Verdict)
		add("served: ", served, true)
	}
	reasons := append(fails, others...)
	verdictNow := verdict.Worst(results...)
	at := fmt.Sprintf("stage %d (weight %s %%)", st.Step, pctW(st.Weight))
	in := now.Sub(st.Since)

	if verdictNow == verdict.Fail {
		d.Decision, d.Weight, d.Paused = Rollback, 0, true
		d.Reasons = append([]string{"verdict fail at " + at + ": weight 0, rollout paused"}, reasons...)
		return judgement{Decision: d}
	}
	hold := ""
	var why string
	switch {
	case ev.LastTally.IsZero() || now.Sub(ev.LastTally) > staleAfter*tallyInterval:
		hold = holdNoEvidence
		last := "none read"
		if !ev.LastTally.IsZero() {
			last = "the latest ended " + ev.LastTally.UTC().Format(time.RFC3339)
		}
		why = fmt.Sprintf("no evidence arriving: no tally for %d × tally_interval (%s; %s)", staleAfter, staleAfter*tallyInterval, last)
	case verdictNow == verdict.Inconclusive:
		hold = holdInconclusive
		why = "verdict inconclusive at " + at
	case in < r.Interval:
		d.Decision = Hold
		d.Reasons = append([]string{fmt.Sprintf("verdict pass at %s; %s of interval %s elapsed", at, roundDur(in), r.Interval)}, reasons...)
		return judgement{Decision: d, hold: holdWaiting}
	}
	if hold != "" {
		if r.MaxInconclusive > 0 && in >= r.MaxInconclusive {
			d.Decision, d.Paused = Pause, true
			d.Reasons = append([]string{fmt.Sprintf("%s for %s, max_inconclusive %s: rollout paused (resume to go on at stage %d)", why, roundDur(in), r.MaxInconclusive, st.Step)}, reasons...)
			return judgement{Decision: d}
		}
		d.Decision = Hold
		d.Reasons = append([]string{why + ": holding"}, reasons...)
		return judgement{Decision: d, hold: hold}
	}
	next := st.Step + 1
	d.Decision, d.Step, d.Weight, d.Since = Advance, next, r.Weight(next), now
	if next >= r.Last() {
		d.Decision, d.Done = Promote, true
	}
	d.Reasons = append([]string{fmt.Sprintf("verdict pass at %s for %s (interval %s): weight %s %%", at, roundDur(in), r.Interval, pctW(d.Weight))}, reasons...)
	return judgement{Decision: d}
}

// start is the first decision of a route's rollout: stage 0 (weight 0,
// shadow only), or with shadow_first = false stage 1 at once.
func start(r Route, now time.Time) Decision {
	d := Decision{Route: r.Name, Decision: Hold, Time: now, Since: now,
		Reasons: []string{"rollout started: stage 0, weight 0 %, shadow only until the shadow verdict passes"}}
	if !r.ShadowFirst {
		d.Decision, d.Step, d.Weight = Advance, 1, r.Weight(1)
		d.Reasons = []string{fmt.Sprintf("rollout started; shadow_first = false: stage 0 passed at once, weight %s %%", pctW(d.Weight))}
		if r.Last() <= 1 {
			d.Decision, d.Done = Promote, true
		}
	}
	return d
}

// answer is the decision that honours an operator's command c (at offset
// off on the rollout topic). A resume of an active rollout changes nothing.
func answer(r Route, st State, c Command, off int64, now time.Time) Decision {
	d := Decision{Route: r.Name, Decision: c.Command, Step: st.Step, Weight: st.Weight, Time: now, Since: st.Since,
		Paused: st.Paused, Done: st.Done, CommandOffset: &off}
	by := ""
	if c.By != "" {
		by = " by " + c.By
	}
	switch c.Command {
	case Pause:
		d.Paused = true
		d.Reasons = []string{fmt.Sprintf("paused%s at stage %d (weight %s %%)", by, st.Step, pctW(st.Weight))}
	case Resume:
		if st.Active() {
			// Nothing to resume: the stage and its evidence stand (a
			// resume sent again and again must not hold a rollback off).
			d.Reasons = []string{fmt.Sprintf("resume%s: the rollout was not paused; nothing changed (stage %d, weight %s %%)", by, st.Step, pctW(st.Weight))}
			return d
		}
		d.Paused, d.Done, d.Since = false, false, now
		if !st.Started || st.Done || st.Last == Rollback || st.Last == Abort || (st.Weight == 0 && st.Step > 0) {
			first := start(r, now)
			d.Step, d.Weight, d.Done = first.Step, first.Weight, first.Done
			d.Reasons = []string{fmt.Sprintf("resumed%s: started again at stage %d (weight %s %%)", by, d.Step, pctW(d.Weight))}
		} else {
			if st.Step > r.Last() {
				// The steps changed while paused: never above the weight.
				d.Step = r.stageAtOrBelow(st.Weight)
			}
			d.Weight = r.Weight(d.Step)
			d.Reasons = []string{fmt.Sprintf("resumed%s at stage %d (weight %s %%), its evidence counted afresh", by, d.Step, pctW(d.Weight))}
		}
	case Abort:
		d.Weight, d.Paused, d.Done = 0, true, true
		d.Reasons = []string{fmt.Sprintf("aborted%s at stage %d: weight 0 %%, rollout stopped", by, st.Step)}
	case Promote:
		d.Step, d.Weight, d.Paused, d.Done, d.Since = r.Last(), 100, false, true, now
		d.Reasons = []string{fmt.Sprintf("promoted%s from stage %d: weight 100 %% now", by, st.Step)}
	}
	return d
}

// remap answers an active rollout whose weight is not its stage's (the
// steps were changed between two controllers' runs): it goes on at the
// highest stage whose weight is at or below the weight the fleet has (0:
// stage 0), never above it, and the decision says why. ok is false when
// the state matches its stage.
func remap(r Route, st State, now time.Time) (d Decision, ok bool) {
	if !st.Active() || st.Step <= r.Last() && r.Weight(st.Step) == st.Weight {
		return Decision{}, false
	}
	stage := r.stageAtOrBelow(st.Weight)
	d = Decision{Route: r.Name, Decision: Hold, Step: stage, Weight: r.Weight(stage), Time: now, Since: st.Since}
	if d.Weight != st.Weight {
		d.Since = now
	}
	d.Reasons = []string{fmt.Sprintf("the steps changed: stage %d at weight %s %% is not a stage of steps %v; going on at stage %d (weight %s %%), the highest at or below it",
		st.Step, pctW(st.Weight), r.Steps, stage, pctW(d.Weight))}
	return d, true
}

// staleResume answers a resume that was sent before the rollback decided
// in the same evaluation: the rollback stands (resume again to start
// again).
func staleResume(r Route, st State, c Command, off int64, now time.Time) Decision {
	d := answer(r, st, Command{Route: c.Route, Command: Pause, By: c.By}, off, now)
	d.Decision = Resume
	by := ""
	if c.By != "" {
		by = " by " + c.By
	}
	d.Reasons = []string{fmt.Sprintf("resume%s not honoured: sent before the rollback at stage %d; send it again to start again", by, st.Step)}
	return d
}

// manual is the pause that a weight set outside the rollout (on the
// control topic) brings.
func manual(r Route, st State, weight float64, at, now time.Time) Decision {
	return Decision{Route: r.Name, Decision: Pause, Step: st.Step, Weight: weight, Time: now, Since: st.Since, Paused: true,
		Reasons: []string{fmt.Sprintf("weight set to %s %% by hand on the control topic at %s (the rollout had %s %%): rollout paused; resume to go on at stage %d",
			pctW(weight), at.UTC().Format(time.RFC3339), pctW(st.Weight), st.Step)}}
}

func pctW(w float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", w), "0"), ".")
}

// roundDur rounds a duration for a reason: to the second from 10s up, else
// to the millisecond.
func roundDur(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
