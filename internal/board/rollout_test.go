package board

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/miffy-proxy/miffy/internal/rollout"
)

func decision(t *testing.T, route string, at time.Time, step int, weight float64, d string, reasons ...string) []byte {
	t.Helper()
	b, err := rollout.Decision{Route: route, Step: step, Weight: weight, Decision: d, Reasons: reasons, Controller: "ctl-1", Time: at, Since: at}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStoreRollouts(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	st := NewStore(StoreConfig{})
	st.maxRoutes = 1 // MaxRoutes, lowered
	cmdValue, _ := rollout.Command{Route: "shop", Command: rollout.Pause, By: "ann@host", Time: at(35)}.Encode()
	for i, v := range [][]byte{
		decision(t, "shop", at(0), 1, 1, rollout.Advance, "shadow verdict pass"),
		decision(t, "shop", at(10), 1, 1, rollout.Hold, "compared 10 < min_compared 200"),
		decision(t, "shop", at(20), 1, 1, rollout.Hold, "compared 90 < min_compared 200"),
		decision(t, "shop", at(30), 2, 5, rollout.Advance, "pass"),
		cmdValue,
		decision(t, "shop", at(40), 2, 5, rollout.Pause, "paused by ann@host"),
		[]byte(`{"kind":"something else"}`),
		decision(t, "", at(41), 2, 5, rollout.Advance, "no route: left out"),
	} {
		st.AddRollout(v, int64(i))
	}
	if st.AddRollout(decision(t, "other", at(0), 1, 1, rollout.Advance), 9) {
		t.Errorf("a second route was kept past MaxRoutes 1")
	}
	// A deposed controller's late decision (a lower lease generation) is
	// left out, as the controllers leave it out.
	newer, _ := rollout.Decision{Route: "shop", Step: 2, Weight: 5, Decision: rollout.Hold, Controller: "ctl-1", Generation: 3, Time: at(50)}.Encode()
	older, _ := rollout.Decision{Route: "shop", Step: 3, Weight: 25, Decision: rollout.Advance, Generation: 2, Time: at(51)}.Encode()
	if !st.AddRollout(newer, 20) || st.AddRollout(older, 21) {
		t.Errorf("generation 3 then 2: want the first kept, the second left out")
	}
	ro, ok := st.Rollout("shop")
	if !ok {
		t.Fatal("no rollout for shop")
	}
	type ev struct {
		Decision, Command string
		Weight            float64
		Repeats           int
		Reasons           []string
	}
	var got []ev
	for _, e := range ro.Events {
		got = append(got, ev{e.Decision, e.Command, e.Weight, e.Repeats, e.Reasons})
	}
	want := []ev{
		{Decision: "advance", Weight: 1, Reasons: []string{"shadow verdict pass"}},
		// Two holds at one step: one event, the latest reasons.
		{Decision: "hold", Weight: 1, Repeats: 1, Reasons: []string{"compared 90 < min_compared 200"}},
		{Decision: "advance", Weight: 5, Reasons: []string{"pass"}},
		{Command: "pause"},
		{Decision: "pause", Weight: 5, Reasons: []string{"paused by ann@host"}},
		{Decision: "hold", Weight: 5, Reasons: []string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if h := ro.Events[1]; !h.First.Equal(at(10)) || !h.Time.Equal(at(20)) {
		t.Errorf("folded hold from %v to %v, want %v to %v", h.First, h.Time, at(10), at(20))
	}
	if ro.Decision != "hold" || ro.Step != 2 || ro.Weight != 5 || ro.Controller != "ctl-1" {
		t.Errorf("state %+v", ro)
	}

	// Bounded: the oldest events go first.
	st = NewStore(StoreConfig{})
	for i := range maxRolloutEvents + 10 {
		st.AddRollout(decision(t, "r", at(i), i%2+1, 1, rollout.Advance), int64(i))
	}
	if ro, _ := st.Rollout("r"); len(ro.Events) != maxRolloutEvents || ro.Events[0].Offset != 10 {
		t.Errorf("%d events, first at offset %d; want %d from offset 10", len(ro.Events), ro.Events[0].Offset, maxRolloutEvents)
	}
}

// followRollouts starts FollowRollouts on the fixture's broker.
func (f *fixture) followRollouts(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		FollowRollouts(ctx, f.st, []kgo.Opt{kgo.SeedBrokers(f.addr)}, topic, zerolog.Nop())
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitRollout waits until the store holds n events of route.
func (f *fixture) waitRollout(t *testing.T, route string, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		_, changed := f.st.Changed()
		ro, _ := f.st.Rollout(route)
		if len(ro.Events) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: %d rollout events, want %d", route, len(ro.Events), n)
		}
	}
}

func TestRolloutAPI(t *testing.T) {
	f := newFixture(t, "")
	f.followRollouts(t, "rolls")
	now := time.Now().UTC()
	f.produce("rolls", decision(t, "shop", now, 0, 0, rollout.Hold, "shadow: compared 3 < min_compared 200"),
		decision(t, "shop", now.Add(time.Second), 1, 1, rollout.Advance, "shadow verdict pass"))
	f.waitRollout(t, "shop", 2)

	code, body := f.get(t, "/api/rollouts")
	if all := decodeJSON[[]Rollout](t, body); code != 200 || len(all) != 1 || all[0].Route != "shop" || all[0].Weight != 1 || all[0].Events != nil {
		t.Errorf("/api/rollouts %d: %s", code, body)
	}
	code, body = f.get(t, "/api/rollout?route=shop")
	if ro := decodeJSON[Rollout](t, body); code != 200 || len(ro.Events) != 2 || ro.Events[1].Reasons[0] != "shadow verdict pass" {
		t.Errorf("/api/rollout %d: %s", code, body)
	}
	if code, _ := f.get(t, "/api/rollout?route=nope"); code != 404 {
		t.Errorf("unknown route: %d, want 404", code)
	}
	if code, _ := f.get(t, "/api/rollout"); code != 400 {
		t.Errorf("no route: %d, want 400", code)
	}
}

// TestRolloutTimelineInBrowser: decisions written to the rollout topic
// appear on the page: the rollouts table, the timeline with a marker per
// decision whose reasons show on hover (title) and click, and a new
// decision without reloading.
func TestRolloutTimelineInBrowser(t *testing.T) {
	f := newFixture(t, "")
	f.followRollouts(t, "rolls")
	ctx := browser(t)
	now := time.Now().UTC().Add(-time.Minute)
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	f.produce("rolls",
		decision(t, "shop", at(0), 1, 1, rollout.Advance, "shadow verdict pass: compared 412, regression rate 0 %"),
		decision(t, "shop", at(10), 2, 5, rollout.Advance, "pass at 1 %: compared 230"),
		decision(t, "shop", at(20), 2, 5, rollout.Hold, "compared 40 < min_compared 200"),
	)
	f.waitRollout(t, "shop", 3)

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#rollouts tr[data-route="shop"] [data-decision="hold"]`)),
		chromedp.Click(chromedp.CSS(`#rollouts tr[data-route="shop"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline circle[data-decision="hold"]`)),
	); err != nil {
		t.Fatalf("rollouts table to timeline: %v", err)
	}
	marks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#timeline .mark")].map(m => m.dataset.decision || m.dataset.command)`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"advance", "advance", "hold"}, marks); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	// Hover: the marker's title holds its reasons.
	if got := text(`#timeline circle[data-decision="hold"] title`); !strings.Contains(got, "compared 40 < min_compared 200") {
		t.Errorf("hold marker title %q", got)
	}
	// The weight line steps up once (1 % to 5 %): two vertical moves.
	if d, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#timeline path.weight`), "d")); err != nil || strings.Count(d.Value, "V") != 2 {
		t.Errorf("weight path %q: %v", d.Value, err)
	}
	// Click: the reasons in the detail panel.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#timeline circle[data-decision="advance"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rollout-detail .reasons li`)),
	); err != nil {
		t.Fatalf("clicking a marker: %v", err)
	}
	if detail := text(`#rollout-detail`); !strings.Contains(detail, "shadow verdict pass: compared 412") || !strings.Contains(detail, "ctl-1") {
		t.Errorf("detail %q", detail)
	}

	// Live: a rollback written now appears without a reload, at weight 0,
	// and the detail shown stays.
	f.produce("rolls", decision(t, "shop", time.Now().UTC(), 2, 0, rollout.Rollback, "regression rate 4 % > 0.1 %"))
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#timeline circle[data-decision="rollback"]`))); err != nil {
		t.Fatalf("the rollback did not appear: %v", err)
	}
	if state, detail := text(`#rollout-state`), text(`#rollout-detail`); !strings.Contains(state, "weight 0%") || !strings.Contains(detail, "shadow verdict pass") {
		t.Errorf("after the rollback: state %q, detail %q", state, detail)
	}
	if rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#rollout-events tbody tr").length`)); err != nil || rows != 4 {
		t.Errorf("%d rows in the events table, want 4: %v", rows, err)
	}

	// The route's own page links to its rollout.
	f.produce("tallies", tallyOf(t, "shop", time.Now().UTC(), 10, 0))
	f.waitFor(t, 0, 1)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/#/route/shop"),
		chromedp.WaitVisible(chromedp.CSS(`#route-rollout a`)),
	); err != nil {
		t.Fatalf("the route's page: %v", err)
	}
	if got := text(`#route-rollout`); !strings.Contains(got, "weight 0% · rollback") {
		t.Errorf("the route's rollout line %q", got)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#route-rollout a`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline circle[data-decision="rollback"]`)),
	); err != nil {
		t.Fatalf("from the route's page to its rollout: %v", err)
	}
}
