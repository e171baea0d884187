package report

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteJSON writes s as one indented JSON object and a newline.
func WriteJSON(w io.Writer, s *Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes s as tables for a terminal: the counts per route, the
// latency percentiles, the candidate errors by kind and the top differing
// paths.
func WriteText(w io.Writer, s *Summary) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s%d records", topicPrefix(s.Topic), s.Records)
	if s.Unreadable > 0 {
		fmt.Fprintf(bw, ", %d unreadable (skipped)", s.Unreadable)
	}
	if s.OutOfRange > 0 {
		fmt.Fprintf(bw, ", %d after -until (skipped)", s.OutOfRange)
	}
	if s.TallyTopic != "" {
		fmt.Fprintf(bw, "; %d tallies from %q", s.Tallies, s.TallyTopic)
		if s.UnreadableTallies > 0 {
			fmt.Fprintf(bw, ", %d unreadable (skipped)", s.UnreadableTallies)
		}
	}
	if s.From != nil {
		fmt.Fprintf(bw, ", requests from %s to %s", s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(bw)
	if len(s.Routes) == 0 {
		return bw.Flush()
	}

	fmt.Fprintln(bw)
	tw := newTable(bw)
	fmt.Fprintln(tw, "ROUTE\tCOMPARED\tEQUAL\tMISMATCHES\tRATE\tREGRESSIONS\tNOISE\tCAND ERRORS\tVERDICT\t")
	partial := false
	for _, r := range s.Routes {
		rate := percent(r.MismatchRate)
		if r.RateBasis == BasisPublished {
			rate += "*"
			partial = true
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d (%s)\t%s\n", r.Label(), r.Compared, r.Equal, r.Mismatches,
			rate, r.Regressions, r.Noise, r.CandidateErrors, percent(r.CandidateErrorRate), cmp.Or(r.Verdict, "-"))
	}
	tw.Flush()
	if partial {
		fmt.Fprintln(bw, "* no tallies cover this route's records and no equal records were seen: it publishes")
		fmt.Fprintln(bw, "  mismatches only, so COMPARED counts mismatching records and the rate is over published")
		fmt.Fprintln(bw, "  records, not over compared requests. Instances publish tallies (true counts) to")
		fmt.Fprintln(bw, "  [report] tally_topic; records older than the first tally (or from instances without")
		fmt.Fprintln(bw, "  tallies) are not covered. Read a later -from, or set publish = \"all\" on the route.")
	}

	fmt.Fprintln(bw)
	tw = newTable(bw)
	fmt.Fprintln(tw, "LATENCY (ms)\tREF p50\tp90\tp99\tCAND p50\tp90\tp99\t")
	for _, r := range s.Routes {
		ref, cand := r.Latency.Reference, r.Latency.Candidate
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Label(), ms(ref.P50), ms(ref.P90), ms(ref.P99),
			ms(cand.P50), ms(cand.P90), ms(cand.P99))
	}
	tw.Flush()

	if slices.ContainsFunc(s.Routes, func(r RouteSummary) bool { return len(r.Served) > 0 }) {
		fmt.Fprintln(bw)
		tw = newTable(bw)
		fmt.Fprintln(tw, "SERVED (canary)\tSIDE\tREQUESTS\t2xx\t4xx\t5xx\tERRORS\tp50\tp99\t")
		for _, r := range s.Routes {
			for _, side := range []string{"reference", "candidate"} {
				sv, ok := r.Served[side]
				if !ok {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Label(), side, sv.Requests, sv.Status["2xx"],
					sv.Status["4xx"], sv.Status["5xx"], sv.Status["error"], ms(sv.Latency.P50), ms(sv.Latency.P99))
			}
		}
		tw.Flush()
	}

	if slices.ContainsFunc(s.Routes, func(r RouteSummary) bool { return len(r.Skipped)+len(r.Dropped) > 0 }) {
		fmt.Fprintln(bw)
		tw = newTable(bw)
		fmt.Fprintln(tw, "NOT REPLAYED\tWHY\tREASON\tCOUNT\t")
		for _, r := range s.Routes {
			for _, k := range sortedKinds(r.Skipped) {
				fmt.Fprintf(tw, "%s\tskipped\t%s\t%d\n", r.Label(), k, r.Skipped[k])
			}
			for _, k := range sortedKinds(r.Dropped) {
				fmt.Fprintf(tw, "%s\tdropped\t%s\t%d\n", r.Label(), k, r.Dropped[k])
			}
		}
		tw.Flush()
	}

	if slices.ContainsFunc(s.Routes, func(r RouteSummary) bool { return r.CandidateErrors > 0 }) {
		fmt.Fprintln(bw)
		tw = newTable(bw)
		fmt.Fprintln(tw, "CANDIDATE ERRORS\tKIND\tCOUNT\tRATE\t")
		for _, r := range s.Routes {
			for _, k := range sortedKinds(r.CandidateErrorKinds) {
				n := r.CandidateErrorKinds[k]
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Label(), k, n, percent(ratio(n, r.Compared)))
			}
		}
		tw.Flush()
	}

	if slices.ContainsFunc(s.Routes, func(r RouteSummary) bool { return len(r.Reasons) > 0 }) {
		fmt.Fprintln(bw)
		tw = newTable(bw)
		fmt.Fprintln(tw, "VERDICT\tROUTE\tREASONS\t")
		for _, r := range s.Routes {
			for i, reason := range r.Reasons {
				v := r.Verdict
				if i > 0 {
					v = ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", v, r.Label(), reason)
			}
		}
		tw.Flush()
	}

	if slices.ContainsFunc(s.Routes, func(r RouteSummary) bool { return len(r.TopPaths) > 0 }) {
		fmt.Fprintln(bw)
		tw = newTable(bw)
		fmt.Fprintln(tw, "TOP DIFFERENCES\tPATH\tCOUNT\tNOISE\tEXAMPLE ID\t")
		for _, r := range s.Routes {
			for _, p := range r.TopPaths {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.Label(), p.Path, p.Count, p.Noise, p.ExampleID)
			}
			if r.UntrackedDifferences > 0 {
				fmt.Fprintf(tw, "%s\t(other paths)\t%d\n", r.Label(), r.UntrackedDifferences)
			}
		}
		tw.Flush()
	}
	return bw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func topicPrefix(topic string) string {
	if topic == "" {
		return ""
	}
	return "topic " + strconv.Quote(topic) + ": "
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// ms formats a duration in milliseconds with three significant digits.
func ms(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// sortedKinds orders error kinds by count, then name.
func sortedKinds(kinds map[string]int64) []string {
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int { return cmp.Or(cmp.Compare(kinds[b], kinds[a]), cmp.Compare(a, b)) })
	return ks
}

// Label names the row: the route, with its endpoint in brackets when the
// row is an endpoint's own.
func (r *RouteSummary) Label() string {
	if r.Endpoint == "" {
		return r.Route
	}
	return r.Route + " [" + r.Endpoint + "]"
}
