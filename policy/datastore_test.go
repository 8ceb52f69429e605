package policy_test

import (
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

func db(addr, dc string, primary, streaming bool, lag time.Duration) policy.DatabaseServer {
	s := policy.DatabaseServer{Address: addr, Datacenter: dc, Reachable: true, Primary: primary, Streaming: streaming}
	if lag >= 0 {
		s.ReplayLag = &lag
	}
	return s
}

func TestDatastoreLossVerdict(t *testing.T) {
	primary := db("a:5432", "pod-1", true, false, -1)
	replica := db("b:5432", "pod-2", false, true, 300*time.Millisecond)
	slow := db("c:5432", "pod-3", false, true, 5*time.Second)
	stopped := db("d:5432", "pod-3", false, false, -1)
	down := policy.DatabaseServer{Address: "e:5432", Datacenter: "pod-3"}
	for _, tc := range []struct {
		name    string
		servers []policy.DatabaseServer
		lost    []string
		want    policy.DatastoreLoss
		wantLag time.Duration
	}{
		{"replica's datacenter: writable", []policy.DatabaseServer{primary, replica}, []string{"pod-2"}, policy.DatastoreLoss{Writable: true, Known: true}, -1},
		{"primary's datacenter: failover to the replica", []policy.DatabaseServer{primary, replica}, []string{"pod-1"}, policy.DatastoreLoss{FailoverNeeded: true, Promote: "b:5432", Known: true}, 300 * time.Millisecond},
		{"the least lag is promoted", []policy.DatabaseServer{primary, slow, replica}, []string{"pod-1"}, policy.DatastoreLoss{FailoverNeeded: true, Promote: "b:5432", Known: true}, 300 * time.Millisecond},
		{"streaming before stopped", []policy.DatabaseServer{primary, stopped, slow}, []string{"pod-1"}, policy.DatastoreLoss{FailoverNeeded: true, Promote: "c:5432", Known: true}, 5 * time.Second},
		{"both lost: nothing to promote", []policy.DatabaseServer{primary, replica}, []string{"pod-1", "pod-2"}, policy.DatastoreLoss{FailoverNeeded: true, Known: true}, -1},
		{"unreachable servers are no replicas", []policy.DatabaseServer{primary, down}, []string{"pod-1"}, policy.DatastoreLoss{FailoverNeeded: true, Known: true}, -1},
		{"split brain: unknown", []policy.DatabaseServer{primary, db("b:5432", "pod-2", true, false, -1)}, []string{"pod-2"}, policy.DatastoreLoss{}, -1},
		{"no primary: unknown", []policy.DatabaseServer{replica}, []string{"pod-2"}, policy.DatastoreLoss{}, -1},
		{"primary in no known datacenter", []policy.DatabaseServer{db("a:5432", "", true, false, -1), replica}, []string{"pod-1"}, policy.DatastoreLoss{}, -1},
		{"a replica in no known datacenter", []policy.DatabaseServer{primary, db("b:5432", "", false, true, 0)}, []string{"pod-1"}, policy.DatastoreLoss{FailoverNeeded: true}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := policy.DatastoreLossVerdict(tc.servers, tc.lost...)
			lag := got.DataAtRisk
			got.DataAtRisk = nil
			if got != tc.want {
				t.Errorf("verdict = %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.wantLag < 0 && lag != nil:
				t.Errorf("data at risk = %s, want unknown", *lag)
			case tc.wantLag >= 0 && (lag == nil || *lag != tc.wantLag):
				t.Errorf("data at risk = %v, want %s", lag, tc.wantLag)
			}
		})
	}
	if n := len(policy.Primaries([]policy.DatabaseServer{primary, replica, down})); n != 1 {
		t.Errorf("Primaries = %d, want 1", n)
	}
	if n := len(policy.Replicas([]policy.DatabaseServer{primary, replica, down})); n != 1 {
		t.Errorf("Replicas = %d, want 1 (an unreachable server is neither)", n)
	}
}
