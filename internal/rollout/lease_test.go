package rollout

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLeaseBalancer(t *testing.T) {
	member := func(id string, held int32) kmsg.JoinGroupResponseMember {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = leaseBalancer{held: func() int32 { return held }}.JoinGroupMetadata([]string{"lease"}, nil, 7)
		return m
	}
	tests := []struct {
		name    string
		members []kmsg.JoinGroupResponseMember
		want    string
	}{
		{"nobody held it: the lowest id", []kmsg.JoinGroupResponseMember{member("b", 0), member("a", 0)}, "a"},
		{"the holder keeps it when another joins", []kmsg.JoinGroupResponseMember{member("a", 0), member("b", 6)}, "b"},
		{"the latest holder wins", []kmsg.JoinGroupResponseMember{member("a", 3), member("b", 6), member("c", 0)}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := leaseBalancer{held: func() int32 { return 0 }}
			cb, err := kgo.NewConsumerBalancer(b, tt.members)
			if err != nil {
				t.Fatal(err)
			}
			plan := b.Balance(cb, map[string]int32{"lease": 1}).(*kgo.BalancePlan).AsMemberIDMap()
			var got []string
			for id, topics := range plan {
				if len(topics["lease"]) > 0 {
					got = append(got, id)
				}
			}
			if len(got) != 1 || got[0] != tt.want || len(plan[tt.want]["lease"]) != 1 {
				t.Errorf("lease to %v (plan %v), want %s alone", got, plan, tt.want)
			}
		})
	}
}

// TestLeaseTiming: a controller cut off from the coordinator stops acting
// well before the lease may go to another (LeaseTimeout after its last
// heartbeat).
func TestLeaseTiming(t *testing.T) {
	for _, lease := range []time.Duration{time.Second, 6 * time.Second, 10 * time.Second, 30 * time.Minute} {
		tm := leaseTimingFor(lease)
		if got, limit := tm.stopBy(), lease*8/10; got > limit {
			t.Errorf("lease %v: a cut-off controller may act for %v (%+v); want at most %v (0.8 × lease)", lease, got, tm, limit)
		}
		if tm.heartbeat <= 0 || tm.retry < 2*tm.heartbeat || tm.act <= 0 {
			t.Errorf("lease %v: %+v: want a heartbeat retried at least twice and an evaluation bound", lease, tm)
		}
	}
}
