package verdict

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var defaults = Limits{MinCompared: 200, MaxRegressionRate: 0.001, MaxCandidateErrorRate: 0.001, MaxLatencyRatio: 1.2, Confidence: 0.95}

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		f       Figures
		verdict string
		reason  string // a substring of the first reason
	}{
		{"equal and plenty", Figures{Compared: 3000, ReferenceP99: 10, CandidateP99: 10.5, Slower: 1000, Faster: 1000}, Pass, "regression rate 0 % (95 % CI 0–0.09 %) < 0.1 %"},
		{"equal but too few", Figures{Compared: 150, ReferenceP99: 10, CandidateP99: 10}, Inconclusive, "compared 150 < min_compared 200"},
		{"equal, not enough for the bound", Figures{Compared: 2000, ReferenceP99: 10, CandidateP99: 10}, Inconclusive, "regression rate 0 % (95 % CI 0–0.14 %): not yet clear of 0.1 %"},
		{"regresses", Figures{Compared: 1000, Regressions: 8, ReferenceP99: 10, CandidateP99: 10}, Fail, "regression rate 0.8 % (95 % CI 0.45–1.4 %) > 0.1 %"},
		{"too few even when regressing", Figures{Compared: 100, Regressions: 100}, Inconclusive, "compared 100 < min_compared 200"},
		{"candidate errors", Figures{Compared: 5000, CandidateErrors: 50, ReferenceP99: 10, CandidateP99: 10}, Fail, "candidate error rate 1 % (95 % CI 0.79–1.3 %) > 0.1 %"},
		{"slower, consistently", Figures{Compared: 5000, ReferenceP99: 10, CandidateP99: 20, Slower: 4000, Faster: 900}, Fail, "latency p99 20 / 10 ms = 2.0 > 1.2; candidate slower on 4000 of 4900"},
		{"slow tail, signs even", Figures{Compared: 5000, ReferenceP99: 10, CandidateP99: 20, Slower: 2000, Faster: 2000}, Inconclusive, "latency p99 20 / 10 ms = 2.0 > 1.2 but candidate slower on 2000 of 4000"},
		{"slower by a little", Figures{Compared: 5000, ReferenceP99: 10, CandidateP99: 11, Slower: 4000, Faster: 900}, Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge(tt.f, defaults)
			if r.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s; reasons %q", r.Verdict, tt.verdict, r.Reasons)
			}
			if len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], tt.reason) {
				t.Errorf("first reason of %q does not contain %q", r.Reasons, tt.reason)
			}
		})
	}
}

func TestLimitsWithOverride(t *testing.T) {
	n, rate := int64(50), 0.01
	got := defaults.With(Override{MinCompared: &n, MaxRegressionRate: &rate})
	want := defaults
	want.MinCompared, want.MaxRegressionRate = 50, 0.01
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := defaults.Validate("verdict."); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Limits{MinCompared: 0, MaxRegressionRate: 2, MaxCandidateErrorRate: -1, MaxLatencyRatio: 0.5, Confidence: 1}
	err := bad.Validate("routes[0].verdict.")
	for _, key := range []string{"min_compared", "max_regression_rate", "max_candidate_error_rate", "max_latency_ratio", "confidence"} {
		if err == nil || !strings.Contains(err.Error(), "routes[0].verdict."+key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestWorst(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{{nil, Pass}, {[]string{Pass, Inconclusive}, Inconclusive}, {[]string{Inconclusive, Fail, Pass}, Fail}} {
		if got := Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
