package status

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// externalEtcd gives the topology an external etcd: one member per entry
// of dcs ("pod-1", ...), named etcd-<i>, on hosts 10.9.<i>.10 that are no
// node, and removes the etcd pods. placed lists the members to place with
// --etcd-datacenters; by alternates placing by name and by address.
func (t *topo) externalEtcd(dcs []string, placed ...int) *topo {
	t.in.EtcdPods = nil
	v := &cluster.EtcdView{Source: cluster.EtcdSourceDirect, LeaderID: 1}
	for i, dc := range dcs {
		name := fmt.Sprintf("etcd-%d", i)
		host := fmt.Sprintf("10.9.%d.10", i)
		v.Members = append(v.Members, cluster.EtcdMemberInfo{
			ID: uint64(i + 1), Name: name, Healthy: true,
			ClientURLs: []string{"https://" + host + ":2379"}, PeerURLs: []string{"https://" + host + ":2380"},
		})
		for _, p := range placed {
			if p != i {
				continue
			}
			if t.in.MemberDatacenters == nil {
				t.in.MemberDatacenters = map[string]string{}
			}
			key := name
			if i%2 == 1 {
				key = host
			}
			t.in.MemberDatacenters[key] = dc
		}
	}
	t.in.Etcd = v
	return t
}

func all(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestExternalEtcdSameVerdictsAsStacked: members on hosts that are no
// node, placed by --etcd-datacenters, give the verdicts the same placement
// gives stacked on control-plane nodes.
func TestExternalEtcdSameVerdictsAsStacked(t *testing.T) {
	for _, tc := range []struct {
		name string
		cps  []int // control planes (stacked members) per datacenter pod-1..3
	}{
		{"1/1/1", []int{1, 1, 1}},
		{"2/2/1", []int{2, 2, 1}},
		{"2/1/0", []int{2, 1, 0}},
		{"3/1/1", []int{3, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stacked := newTopo()
			external := newTopo()
			var dcs []string
			for i, n := range tc.cps {
				dc := fmt.Sprintf("pod-%d", i+1)
				stacked.dc(dc, n, 1)
				// The external cluster keeps one control-plane node per
				// datacenter for its API server; etcd runs elsewhere.
				external.dc(dc, 1, 1)
				for j := 0; j < n; j++ {
					dcs = append(dcs, dc)
				}
			}
			rs := stacked.etcdFromPods("").build()
			re := external.externalEtcd(dcs, all(len(dcs))...).build()
			if got, want := survives(re), survives(rs); !reflect.DeepEqual(got, want) {
				t.Errorf("external survivesLoss = %v, stacked %v", got, want)
			}
			if re.Etcd.Size != rs.Etcd.Size || re.Etcd.HasQuorum != rs.Etcd.HasQuorum {
				t.Errorf("external etcd %d voters quorum %v, stacked %d %v", re.Etcd.Size, re.Etcd.HasQuorum, rs.Etcd.Size, rs.Etcd.HasQuorum)
			}
			for i, m := range re.Etcd.Members {
				if m.Node != "" || m.Datacenter != dcs[i] || m.DatacenterFrom != cluster.FromEtcdDatacenters {
					t.Errorf("member %s: node %q, datacenter %q from %q; want no node, %s from --etcd-datacenters", m.Name, m.Node, m.Datacenter, m.DatacenterFrom, dcs[i])
				}
			}
			for _, d := range re.Datacenters {
				if want := strings.Count(strings.Join(dcs, ","), d.Name); d.Voters != want {
					t.Errorf("%s: %d voters, want %d", d.Name, d.Voters, want)
				}
			}
			if f := findingWith(re, "datacenter is unknown"); f != nil {
				t.Errorf("every member is placed, yet: %s", f.Message)
			}
			for _, lose := range []string{"pod-1", "pod-3"} {
				stacked.in.Lose, external.in.Lose = []string{lose}, []string{lose}
				ws, we := stacked.build().WhatIf, external.build().WhatIf
				if ws.HasQuorum != we.HasQuorum || ws.VotersLeft != we.VotersLeft {
					t.Errorf("--lose %s: external keeps quorum %v with %d voters, stacked %v with %d", lose, we.HasQuorum, we.VotersLeft, ws.HasQuorum, ws.VotersLeft)
				}
			}
		})
	}
}

// TestExternalEtcdUnplacedMember: a member nothing places is said to be in
// no known datacenter, and the verdicts that depend on it are unknown.
func TestExternalEtcdUnplacedMember(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1).dc("pod-3", 1, 1).
		externalEtcd([]string{"pod-1", "pod-2", "pod-3"}, 0, 1)
	r := tp.build()
	if got, want := survives(r), map[string]string{"pod-1": "unknown", "pod-2": "unknown", "pod-3": "yes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("survivesLoss = %v, want %v", got, want)
	}
	m := r.Etcd.Members[2]
	if m.Name != "etcd-2" || m.Datacenter != "" || m.DatacenterFrom != "" {
		t.Errorf("unplaced member = %+v", m)
	}
	f := findingWith(r, "etcd member etcd-2 matches no node")
	if f == nil || !strings.Contains(f.Message, "datacenter is unknown") || !strings.Contains(f.Message, "pod-1 or pod-2") ||
		!strings.Contains(f.Remedy, "--etcd-datacenters etcd-2=<datacenter>") {
		t.Errorf("findings = %+v", r.Findings)
	}
	if v := verdictLine(r); !strings.Contains(v, "1 in no known datacenter") || !strings.Contains(v, "pod-1 unknown") {
		t.Errorf("verdict = %q", v)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("--fail-on-risk with unknown verdicts: exit = %v, want %d", err, ExitRisk)
	}

	tp.in.Lose = []string{"pod-1"}
	r = tp.build()
	if f := findingWith(r, "only if etcd-2, in no known datacenter, is not there"); f == nil {
		t.Errorf("--lose pod-1 findings = %+v, want the member that decides", r.Findings)
	}
}

func TestEtcdDatacentersFindings(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1).dc("pod-3", 1, 1).etcdFromPods("")
	tp.in.MemberDatacenters = map[string]string{"pod-1-cp-1": "pod-2", "etcd-x": "pod-3"}
	r := tp.build()
	if f := findingWith(r, "--etcd-datacenters places etcd member pod-1-cp-1 in pod-2, but it runs on node pod-1-cp-1 in pod-1"); f == nil {
		t.Errorf("findings = %+v, want the contradicted placement", r.Findings)
	}
	if f := findingWith(r, "--etcd-datacenters names etcd-x, which is no etcd member"); f == nil {
		t.Errorf("findings = %+v, want the entry that places nothing", r.Findings)
	}
	if got := findDC(r, "pod-1").Voters; got != 1 {
		t.Errorf("pod-1 voters = %d: the node's datacenter must win", got)
	}
}

func TestEtcdDatacentersFlag(t *testing.T) {
	for _, tc := range []struct {
		flag []string
		want map[string]string
		err  string
	}{
		{[]string{"etcd-a=pod-1", " 10.0.0.3 = pod-3 "}, map[string]string{"etcd-a": "pod-1", "10.0.0.3": "pod-3"}, ""},
		{[]string{"etcd-a"}, nil, `--etcd-datacenters "etcd-a": want NAME=DC`},
		{[]string{"=pod-1"}, nil, "want NAME=DC"},
		{[]string{"etcd-a=pod-1", "etcd-a=pod-2"}, nil, "places etcd-a in both pod-1 and pod-2"},
	} {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		o := NewOptions(nil, streams)
		o.Output, o.EtcdDatacenters = "table", tc.flag
		err := o.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.flag, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: error %v, want %q", tc.flag, err, tc.err)
		case tc.err == "" && !reflect.DeepEqual(o.MemberDCs, tc.want):
			t.Errorf("%v: parsed %v, want %v", tc.flag, o.MemberDCs, tc.want)
		}
	}
	in := newTopo().dc("pod-1", 1, 0).dc("pod-2", 1, 0).in
	if err := unknownDatacenterIn("--etcd-datacenters etcd-a=pod-3", "pod-3", in); err == nil || !strings.HasPrefix(err.Error(), "--etcd-datacenters etcd-a=pod-3: no node has") {
		t.Errorf("unknown datacenter: %v", err)
	}
}

func TestDatastoreDatacentersFlag(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(nil, streams)
	o.Output, o.DatastoreDatacenters = "table", []string{"10.0.2.20=pod-2", "10.0.3.20:5433=pod-3"}
	if err := o.Validate(); err != nil || !reflect.DeepEqual(o.DatabaseDCs, map[string]string{"10.0.2.20": "pod-2", "10.0.3.20:5433": "pod-3"}) {
		t.Errorf("parsed %v, %v", o.DatabaseDCs, err)
	}
	o.DatastoreDatacenters = []string{"10.0.2.20"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), `--datastore-datacenters "10.0.2.20": want HOST[:PORT]=DC`) {
		t.Errorf("error = %v", err)
	}
	o.DatastoreDatacenters, o.DatastoreDSN = nil, "mysql://ro:hunter2@h/kine"
	if err := o.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a DSN that does not parse: %v", err)
	}
}

func TestPolicyEtcdMembers(t *testing.T) {
	p := v1alpha1.PlacementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "external"}, Spec: v1alpha1.PlacementPolicySpec{
		EtcdMembers: map[string]string{"etcd-0": "pod-1", "10.9.1.10": "pod-2", "etcd-2": "pod-9"},
	}}
	tp := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1).dc("pod-3", 1, 1).externalEtcd([]string{"pod-1", "pod-2", "pod-3"})
	// The flag wins over the policy for etcd-2.
	tp.in.MemberDatacenters = map[string]string{"etcd-2": "pod-3"}
	if err := fromSnapshot(tp.in, &cluster.Snapshot{Policies: cluster.Policies{Items: []v1alpha1.PlacementPolicy{p}}}); err != nil {
		t.Fatal(err)
	}
	tp.in.Label = testutil.Zone
	r := tp.build()
	got := map[string]string{}
	for _, m := range r.Etcd.Members {
		got[m.Name] = m.Datacenter + " from " + m.DatacenterFrom
	}
	want := map[string]string{"etcd-0": "pod-1 from PlacementPolicy/external", "etcd-1": "pod-2 from PlacementPolicy/external", "etcd-2": "pod-3 from etcd-datacenters"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	if s := survives(r); s["pod-1"] != "yes" || s["pod-2"] != "yes" || s["pod-3"] != "yes" {
		t.Errorf("survivesLoss = %v", s)
	}
}
