package board

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/miffy-proxy/miffy/internal/compare"
)

// chromiumPath is Debian's chromium (apt-get install -y chromium; .ci/run
// installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no chromium at %s: .ci/run installs it, so CI must not skip the browser tests", chromiumPath)
		}
		t.Skipf("no chromium at %s (apt-get install -y chromium)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestPageInBrowser: the page loads, a route with a regression shows its
// verdict, clicking a path opens an example with the path highlighted, and
// a new mismatch appears without reloading.
func TestPageInBrowser(t *testing.T) {
	f := newFixture(t, "")
	ctx := browser(t)
	now := time.Now().UTC()
	price := compare.Diff{Path: "$.price", Kind: compare.Changed, Reference: 10, Candidate: 12, Class: compare.Regression}
	name := compare.Diff{Path: "$.name", Kind: compare.Changed, Reference: "a", Candidate: "b", Class: compare.Noise}
	f.produce("recs", f.record(t, "bad-1", "/bad", now, price, name))
	f.produce("tallies", tallyOf(t, "/bad", now, 1000, 40), tallyOf(t, "/good", now, 4000, 0))
	f.waitFor(t, 1, 2)

	text := func(sel string) string {
		t.Helper()
		// Found and read in one evaluation: the page re-renders as data
		// arrives, and a node found by one call can be gone by the next.
		js := `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `); return e ? e.innerText : null })()`
		s, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#routes tr[data-route="/bad"] [data-verdict="fail"]`)),
	); err != nil {
		t.Fatalf("routes table: %v", err)
	}
	verdictText, reasons := text(`#routes tr[data-route="/bad"] .badge`), text(`#routes tr[data-route="/bad"] .reasons`)
	if verdictText != "fail" || !strings.Contains(reasons, "regression rate 4 %") {
		t.Errorf("verdict %q, reasons %q", verdictText, reasons)
	}
	if v := text(`#routes tr[data-route="/good"] .badge`); v != "pass" {
		t.Errorf("/good: verdict %q", v)
	}

	// Sortable: COMPARED descending puts /good (4000) first; filterable.
	rows := func() []string {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#routes tbody tr")].map(r => r.dataset.route)`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#routes th:nth-child(2)`)), // ascending
		chromedp.Click(chromedp.CSS(`#routes th:nth-child(2)`)), // descending
	); err != nil {
		t.Fatal(err)
	}
	if got := rows(); len(got) != 2 || got[0] != "/good" {
		t.Errorf("sorted by COMPARED descending: %q", got)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`.filter`), "bad"),
		chromedp.WaitNotPresent(chromedp.CSS(`#routes tr[data-route="/good"]`)),
	); err != nil {
		t.Fatalf("filter: %v", err)
	}
	if got := rows(); len(got) != 1 || got[0] != "/bad" {
		t.Errorf("filtered by \"bad\": %q", got)
	}

	// The route, its path tree, then the example of $.price.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#routes tr[data-route="/bad"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#tree [data-path="$.price"]`)),
		chromedp.Click(chromedp.CSS(`#tree [data-path="$.price"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#sides .diff-regression[data-path="$.price"]`)),
	); err != nil {
		t.Fatalf("example: %v", err)
	}
	// The candidate's body as published: price 12 (a regression), name
	// "a" (noise, in its own colour).
	if got := text(`#sides .side:nth-child(2) .diff-regression[data-path="$.price"]`); got != "12" {
		t.Errorf("candidate's highlighted $.price %q", got)
	}
	if got := text(`#sides .side:nth-child(2) .diff-noise[data-path="$.name"]`); got != `"a"` {
		t.Errorf("candidate's noise $.name %q", got)
	}
	if got := text(`#permalink`); got != "permalink" {
		t.Errorf("permalink %q", got)
	}

	// Live: back on the route, a new mismatch appears without a reload.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/#/route/%2Fbad"),
		chromedp.WaitVisible(chromedp.CSS(`#recent li[data-id="bad-1"]`)),
	); err != nil {
		t.Fatalf("route page: %v", err)
	}
	f.produce("recs", f.record(t, "bad-2", "/bad", time.Now().UTC(), price))
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#recent li[data-id="bad-2"]`))); err != nil {
		t.Fatalf("the new mismatch did not appear: %v", err)
	}
}
