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
	writeHeadline(bw, s)
	if len(s.Routes) == 0 {
		return bw.Flush()
	}
	for _, sec := range textSections() {
		if sec.has != nil && !slices.ContainsFunc(s.Routes, sec.has) {
			continue
		}
		fmt.Fprintln(bw)
		tw := newTable(bw)
		fmt.Fprintln(tw, sec.header)
		for _, r := range s.Routes {
			sec.rows(tw, r)
		}
		tw.Flush()
		if sec.footnote != nil {
			sec.footnote(bw, s.Routes)
		}
	}
	return bw.Flush()
}

// writeHeadline writes what was read: records, tallies, the time span.
func writeHeadline(bw io.Writer, s *Summary) {
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
}

// textSection is one table of WriteText: its header line, its rows for a
// route, whether a route has any (nil: the table is always written), and
// what follows the table.
type textSection struct {
	header   string
	has      func(RouteSummary) bool
	rows     func(w io.Writer, r RouteSummary)
	footnote func(w io.Writer, routes []RouteSummary)
}

// textSections are the tables of WriteText, in order.
func textSections() []textSection {
	return []textSection{
		{header: "ROUTE\tCOMPARED\tEQUAL\tMISMATCHES\tRATE\tREGRESSIONS\tNOISE\tCAND ERRORS\tVERDICT\t", rows: countRow, footnote: partialNote},
		{header: "LATENCY (ms)\tREF p50\tp90\tp99\tCAND p50\tp90\tp99\t", rows: func(w io.Writer, r RouteSummary) {
			ref, cand := r.Latency.Reference, r.Latency.Candidate
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Label(), ms(ref.P50), ms(ref.P90), ms(ref.P99),
				ms(cand.P50), ms(cand.P90), ms(cand.P99))
		}},
		{header: "SERVED (canary)\tSIDE\tREQUESTS\t2xx\t4xx\t5xx\tERRORS\tp50\tp99\t",
			has: func(r RouteSummary) bool { return len(r.Served) > 0 }, rows: servedRows},
		{header: "NOT REPLAYED\tWHY\tREASON\tCOUNT\t",
			has: func(r RouteSummary) bool { return len(r.Skipped)+len(r.Dropped) > 0 }, rows: func(w io.Writer, r RouteSummary) {
				for _, k := range sortedKinds(r.Skipped) {
					fmt.Fprintf(w, "%s\tskipped\t%s\t%d\n", r.Label(), k, r.Skipped[k])
				}
				for _, k := range sortedKinds(r.Dropped) {
					fmt.Fprintf(w, "%s\tdropped\t%s\t%d\n", r.Label(), k, r.Dropped[k])
				}
			}},
		{header: "CANDIDATE ERRORS\tKIND\tCOUNT\tRATE\t",
			has: func(r RouteSummary) bool { return r.CandidateErrors > 0 }, rows: func(w io.Writer, r RouteSummary) {
				for _, k := range sortedKinds(r.CandidateErrorKinds) {
					n := r.CandidateErrorKinds[k]
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", r.Label(), k, n, percent(ratio(n, r.Compared)))
				}
			}},
		{header: "VERDICT\tROUTE\tREASONS\t",
			has: func(r RouteSummary) bool { return len(r.Reasons) > 0 }, rows: func(w io.Writer, r RouteSummary) {
				for i, reason := range r.Reasons {
					v := r.Verdict
					if i > 0 {
						v = ""
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", v, r.Label(), reason)
				}
			}},
		{header: "TOP DIFFERENCES\tPATH\tCOUNT\tNOISE\tEXAMPLE ID\t",
			has: func(r RouteSummary) bool { return len(r.TopPaths) > 0 }, rows: func(w io.Writer, r RouteSummary) {
				for _, p := range r.TopPaths {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", r.Label(), p.Path, p.Count, p.Noise, p.ExampleID)
				}
				if r.UntrackedDifferences > 0 {
					fmt.Fprintf(w, "%s\t(other paths)\t%d\n", r.Label(), r.UntrackedDifferences)
				}
			}},
	}
}

// countRow is a route's counts; a rate over published records only is
// starred (see partialNote).
func countRow(w io.Writer, r RouteSummary) {
	rate := percent(r.MismatchRate)
	if r.RateBasis == BasisPublished {
		rate += "*"
	}
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d (%s)\t%s\n", r.Label(), r.Compared, r.Equal, r.Mismatches,
		rate, r.Regressions, r.Noise, r.CandidateErrors, percent(r.CandidateErrorRate), cmp.Or(r.Verdict, "-"))
}

// partialNote explains the star of countRow, where a route has one.
func partialNote(w io.Writer, routes []RouteSummary) {
	if !slices.ContainsFunc(routes, func(r RouteSummary) bool { return r.RateBasis == BasisPublished }) {
		return
	}
	fmt.Fprintln(w, "* no tallies cover this route's records and no equal records were seen: it publishes")
	fmt.Fprintln(w, "  mismatches only, so COMPARED counts mismatching records and the rate is over published")
	fmt.Fprintln(w, "  records, not over compared requests. Instances publish tallies (true counts) to")
	fmt.Fprintln(w, "  [report] tally_topic; records older than the first tally (or from instances without")
	fmt.Fprintln(w, "  tallies) are not covered. Read a later -from, or set publish = \"all\" on the route.")
}

// servedRows are a canary route's requests by the side that served them.
func servedRows(w io.Writer, r RouteSummary) {
	for _, side := range []string{"reference", "candidate"} {
		sv, ok := r.Served[side]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Label(), side, sv.Requests, sv.Status["2xx"],
			sv.Status["4xx"], sv.Status["5xx"], sv.Status["error"], ms(sv.Latency.P50), ms(sv.Latency.P99))
	}
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
