package rollout

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaseBalancer assigns the lease topic's partition (the lease) to one
// member of the group, and keeps it where it is: to the member that held
// it at the latest generation, else to the lowest member id. Rebalancing
// is eager: every member gives the lease up (and stops acting) before the
// group's new generation assigns it, so two never act at once; keeping it
// in place means a controller joining does not take the lease over.
// (franz-go's sticky balancer cannot keep it: an eager member forgets its
// assignment when it revokes, before it rejoins.)
type leaseBalancer struct {
	// held returns the generation at which this member last held the
	// lease; 0: not since it joined, or lost since.
	held func() int32
}

var _ kgo.GroupBalancer = leaseBalancer{}

func (leaseBalancer) ProtocolName() string { return "miffy-lease" }
func (leaseBalancer) IsCooperative() bool  { return false }

// JoinGroupMetadata says, in the user data, when the member last held the
// lease.
func (b leaseBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = interests
	meta.Generation = generation
	meta.UserData = binary.BigEndian.AppendUint32(nil, uint32(b.held()))
	return meta.AppendTo(nil)
}

func (leaseBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b leaseBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance gives every partition of every topic (the lease topic's one) to
// the member that held the lease last, else to the lowest member id.
func (leaseBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	var best *kmsg.JoinGroupResponseMember
	bestHeld := int64(-1)
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		held := int64(0)
		if len(meta.UserData) == 4 {
			held = int64(binary.BigEndian.Uint32(meta.UserData))
		}
		if best == nil || held > bestHeld || (held == bestHeld && m.MemberID < best.MemberID) {
			best, bestHeld = m, held
		}
	})
	plan := cb.NewPlan()
	if best == nil {
		return plan
	}
	for topic, n := range topics {
		for p := range n {
			plan.AddPartition(best, topic, p)
		}
	}
	return plan
}
