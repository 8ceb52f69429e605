package cluster

import (
	"errors"
	"reflect"
	"testing"
)

func TestAssembleViewNoLeaderIsNotUnhealthy(t *testing.T) {
	members := []EtcdMemberInfo{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}, {ID: 3, Name: "c"}}
	v := assembleView(members, []endpointStatus{
		{Endpoint: "a", MemberID: 1, Errors: []string{"etcdserver: no leader"}},
		{Endpoint: "b", MemberID: 2, Errors: []string{"NOSPACE"}},
		{Endpoint: "c", Err: errors.New("context deadline exceeded")},
	})
	got := map[string]bool{}
	for _, m := range v.Members {
		got[m.Name] = m.Healthy
	}
	if !reflect.DeepEqual(got, map[string]bool{"a": true, "b": false, "c": false}) || v.LeaderID != 0 {
		t.Errorf("health = %v, leader %d", got, v.LeaderID)
	}
}
