package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	d := Decision{Route: "shop", Step: 2, Weight: 5, Decision: Advance, Reasons: []string{"pass"}, Controller: "c1", Time: at, Since: at}
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	d.Kind, d.SchemaVersion = KindDecision, SchemaVersion
	if diff := cmp.Diff(&d, v.Decision); diff != "" || v.Command != nil {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	c := Command{Route: "shop", Command: Pause, By: "ops@host", Time: at}
	if b, err = c.Encode(); err != nil {
		t.Fatal(err)
	}
	if v, err = Decode(b); err != nil {
		t.Fatal(err)
	}
	c.Kind, c.SchemaVersion = KindCommand, SchemaVersion
	if diff := cmp.Diff(&c, v.Command); diff != "" || v.Decision != nil {
		t.Errorf("command (-want +got):\n%s", diff)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"kind":"miffy.tally","schema_version":1}`, `{"kind":"miffy.rollout.decision","schema_version":2}`, `{"kind":"miffy.rollout.command","schema_version":1,"time":"x"}`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = nil error", in)
		}
	}
}

func TestCommandValidate(t *testing.T) {
	if err := (Command{Route: "shop", Command: "promote"}).Validate(); err != nil {
		t.Errorf("promote: %v", err)
	}
	for _, c := range []Command{{Command: Pause}, {Route: "shop", Command: Advance}, {Route: "shop"}} {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate = nil", c)
		}
	}
}

func TestSendAndHistory(t *testing.T) {
	opts := testBroker(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	if vals, _, err := History(ctx, opts, "miffy-rollouts"); err != nil || len(vals) != 0 {
		t.Fatalf("History of a missing topic = %v, %v; want none, nil", vals, err)
	}
	for _, c := range []string{Pause, Resume} {
		if err := Send(ctx, opts, "miffy-rollouts", Command{Route: "shop", Command: c, Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Send(ctx, opts, "miffy-rollouts", Command{Route: "shop", Command: "skip"}); err == nil {
		t.Error("Send of an unknown command = nil error")
	}
	vals, unreadable, err := History(ctx, opts, "miffy-rollouts")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vals {
		got = append(got, v.Command.Command)
	}
	if diff := cmp.Diff([]string{Pause, Resume}, got); diff != "" || unreadable != 0 {
		t.Errorf("commands (-want +got):\n%s\nunreadable %d", diff, unreadable)
	}
}
