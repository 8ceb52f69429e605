package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsKine(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    *EtcdView
		want bool
	}{
		{"kine's member list", &EtcdView{Members: []EtcdMemberInfo{{ID: 0, Name: "kine", Healthy: true}}}, true},
		{"etcd", &EtcdView{Members: []EtcdMemberInfo{{ID: 0x8e9e05c52164694d, Name: "kine"}}}, false},
		{"no members", &EtcdView{}, false},
		{"nil", nil, false},
	} {
		if got := tc.v.IsKine(); got != tc.want {
			t.Errorf("%s: IsKine = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKinePods(t *testing.T) {
	pod := func(name string, labels map[string]string, image string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	}
	pods := []*corev1.Pod{
		pod("kine-cp-1", map[string]string{"component": "kine"}, "example/x"),
		pod("by-app", map[string]string{"app": "kine"}, "example/x"),
		pod("by-image", nil, "docker.io/rancher/kine:v0.17.5"),
		pod("by-digest", nil, "ghcr.io/k3s-io/kine@sha256:abc"),
		pod("not-kine", nil, "example/kinesis:1"),
		pod("etcd", map[string]string{"component": "etcd"}, "registry.k8s.io/etcd:3.6"),
	}
	var got []string
	for _, p := range KinePods(pods) {
		got = append(got, p.Name)
	}
	if strings.Join(got, ",") != "by-app,by-digest,by-image,kine-cp-1" {
		t.Errorf("KinePods = %v", got)
	}
}

func TestParseDatastoreDSN(t *testing.T) {
	d, err := ParseDatastoreDSN("postgres://ro:s3cr%40t@10.0.1.20,10.0.2.20:5433/kine?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Hosts, ",") != "10.0.1.20:5432,10.0.2.20:5433" {
		t.Errorf("hosts = %v", d.Hosts)
	}
	if s := d.String(); strings.Contains(s, "s3cr") || !strings.Contains(s, "ro:xxxxx@10.0.1.20:5432,10.0.2.20:5433/kine") {
		t.Errorf("String() = %q: must show hosts, never the password", s)
	}
	if u := d.HostURL("10.0.2.20:5433"); u != "postgres://ro:s3cr%40t@10.0.2.20:5433/kine?sslmode=disable" {
		t.Errorf("HostURL = %q", u)
	}
	if got := d.scrub("password authentication failed for s3cr@t"); strings.Contains(got, "s3cr") {
		t.Errorf("scrub left the password: %q", got)
	}
	for _, bad := range []string{"mysql://ro:pw@h/kine", "host=h user=ro password=hunter2", "postgres://ro:hunter2@/kine"} {
		_, err := ParseDatastoreDSN(bad)
		if err == nil || !strings.Contains(err.Error(), "--datastore-dsn") {
			t.Errorf("%q: error %v, want one naming --datastore-dsn", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error shows the password: %v", bad, err)
		}
	}
}

// fakeSQL answers from a table of states per host; a host it does not
// know blocks until the deadline, as a database behind a dead network.
type fakeSQL struct {
	states map[string]SQLServerState
	errs   map[string]error
}

func (f fakeSQL) ReadServer(ctx context.Context, _ *DatastoreDSN, host string) (SQLServerState, error) {
	if err := f.errs[host]; err != nil {
		return SQLServerState{}, err
	}
	st, ok := f.states[host]
	if !ok {
		<-ctx.Done()
		return SQLServerState{}, ctx.Err()
	}
	return st, nil
}

func TestReadDatastore(t *testing.T) {
	lag := 1500 * time.Millisecond
	dsn, err := ParseDatastoreDSN("postgres://ro:hunter2@127.1.1.210,127.1.2.210,127.1.3.210,127.1.3.211/kine")
	if err != nil {
		t.Fatal(err)
	}
	reader := fakeSQL{
		states: map[string]SQLServerState{
			"127.1.1.210:5432": {Replication: []ReplicationRow{{ClientAddr: "127.0.0.1", ApplicationName: "127.1.2.210", State: "streaming", ReplayLag: &lag}}},
			"127.1.2.210:5432": {InRecovery: true},
		},
		errs: map[string]error{"127.1.3.211:5432": errors.New(`password authentication failed for user "ro" (hunter2)`)},
	}
	servers, notes := ReadDatastore(context.Background(), dsn, reader, 50*time.Millisecond)
	if len(servers) != 4 {
		t.Fatalf("servers = %+v", servers)
	}
	p, r, dead, refused := servers[0], servers[1], servers[2], servers[3]
	if !p.Reachable || !p.Primary || !r.Reachable || r.Primary || !r.Streaming || r.ReplayLag == nil || *r.ReplayLag != lag {
		t.Errorf("primary %+v, replica %+v", p, r)
	}
	if dead.Reachable || refused.Reachable {
		t.Errorf("unanswering servers reachable: %+v %+v", dead, refused)
	}
	all := strings.Join(notes, "\n")
	if !strings.Contains(all, "127.1.3.210:5432 did not answer: context deadline exceeded") || !strings.Contains(all, "127.1.3.211:5432 did not answer") {
		t.Errorf("notes = %v", notes)
	}
	if strings.Contains(all, "hunter2") {
		t.Errorf("notes show the password: %v", notes)
	}
}
