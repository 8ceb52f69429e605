package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestBuildReportMacStadium5(t *testing.T) {
	r := newTopo().dc("pod-1", 2, 3).dc("pod-2", 2, 3).dc("pod-3", 1, 1).etcdFromPods("pod-2-cp-1").build()
	e := r.Etcd
	if e.Source != cluster.EtcdSourceDirect || e.Size != 5 || e.Healthy != 5 || e.Quorum != 3 || e.FaultTolerance != 2 || !e.HasQuorum || e.Leader != "pod-2-cp-1" {
		t.Fatalf("etcd = %+v, want direct 5 voters, 5 healthy, quorum 3, tolerance 2, leader pod-2-cp-1", e)
	}
	if got, want := survives(r), map[string]string{"pod-1": "yes", "pod-2": "yes", "pod-3": "yes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("survivesLoss = %v, want %v", got, want)
	}
	p1 := findDC(r, "pod-1")
	if *p1.Nodes != (NodeCounts{Total: 5, Ready: 5}) || p1.ControlPlane != 2 || p1.Voters != 2 || p1.HealthyVoters != 2 || p1.APIServers != 2 || p1.Leader {
		t.Errorf("pod-1 row = %+v", p1)
	}
	if !findDC(r, "pod-2").Leader {
		t.Errorf("pod-2 should hold the leader")
	}
	for _, m := range e.Members {
		if m.Node != m.Name || m.Datacenter != strings.Join(strings.Split(m.Name, "-")[:2], "-") {
			t.Errorf("member %s mapped to node %q dc %q", m.Name, m.Node, m.Datacenter)
		}
	}
	if f := findingWith(r, "two datacenters"); f != nil {
		t.Errorf("unexpected witness finding on three datacenters: %s", f.Message)
	}
	if f := findingWith(r, "loses etcd quorum"); f != nil {
		t.Errorf("unexpected loss finding: %s", f.Message)
	}
	if got := verdictLine(r); got != "etcd 5 voters, quorum 3, tolerates 2 failures; survives loss of: pod-1 yes, pod-2 yes, pod-3 yes [source: direct]" {
		t.Errorf("verdict = %q", got)
	}
	if err := statusExit(r, true); err != nil {
		t.Errorf("exit = %v, want nil", err)
	}
}

// TestBuildReportOneVoterLeft: one healthy voter left is said in the
// singular.
func TestBuildReportOneVoterLeft(t *testing.T) {
	r := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1).dc("pod-3", 1, 1).etcdFromPods("pod-1-cp-1", "pod-3-cp-1").build()
	f := findingWith(r, "losing datacenter pod-1 loses etcd quorum")
	if f == nil || !strings.Contains(f.Message, "1 healthy voter would be left of 3, 2 needed") {
		t.Fatalf("findings = %+v, want pod-1's loss to leave 1 healthy voter", r.Findings)
	}
}

func TestBuildReportOneVoterDown(t *testing.T) {
	r := newTopo().dc("pod-1", 2, 3).dc("pod-2", 2, 3).dc("pod-3", 1, 1).etcdFromPods("pod-2-cp-1", "pod-1-cp-1").build()
	if r.Etcd.Size != 5 || r.Etcd.Healthy != 4 || r.Etcd.FaultTolerance != 1 || !r.Etcd.HasQuorum {
		t.Fatalf("etcd = %+v, want size 5, healthy 4, tolerance 1", r.Etcd)
	}
	if got, want := survives(r), map[string]string{"pod-1": "yes", "pod-2": "NO", "pod-3": "yes"}; !reflect.DeepEqual(got, want) {
		t.Errorf("survivesLoss = %v, want %v", got, want)
	}
	f := findingWith(r, "losing datacenter pod-2 loses etcd quorum")
	if f == nil || f.Severity != severityCritical || !strings.Contains(f.Message, "2 healthy voters would be left of 5, 3 needed") {
		t.Fatalf("findings = %+v, want a critical pod-2 loss finding", r.Findings)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("exit with --fail-on-risk = %v, want code %d", err, ExitRisk)
	}
	if err := statusExit(r, false); err != nil {
		t.Errorf("exit without --fail-on-risk = %v, want nil", err)
	}
}

func TestBuildReportQuorumLost(t *testing.T) {
	r := newTopo().dc("pod-1", 2, 0).dc("pod-2", 2, 0).dc("pod-3", 1, 0).etcdFromPods("", "pod-1-cp-1", "pod-1-cp-2", "pod-2-cp-1").build()
	if r.Etcd.HasQuorum || r.Etcd.Healthy != 2 || r.Etcd.FaultTolerance != 0 {
		t.Fatalf("etcd = %+v, want no quorum, 2 healthy", r.Etcd)
	}
	f := findingWith(r, "etcd has lost quorum")
	if f == nil || f.Severity != severityCritical || f.Remedy == "" {
		t.Fatalf("findings = %+v", r.Findings)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, false); !errors.As(err, &exit) || exit.Code != ExitQuorumLost {
		t.Errorf("exit = %v, want %d", err, ExitQuorumLost)
	}
	if !strings.Contains(verdictLine(r), "QUORUM LOST") {
		t.Errorf("verdict = %q", verdictLine(r))
	}
}

func TestBuildReportTwoDatacentersNeedWitness(t *testing.T) {
	for _, cps := range [][2]int{{2, 1}, {3, 2}, {2, 2}} {
		r := newTopo().dc("pod-1", cps[0], 1).dc("pod-2", cps[1], 1).etcdFromPods("pod-1-cp-1").build()
		f := findingWith(r, "spans two datacenters (pod-1, pod-2)")
		if f == nil || f.Severity != severityCritical || !strings.Contains(f.Remedy, "witness") {
			t.Errorf("%v: findings = %+v, want the witness finding", cps, r.Findings)
		}
		if s := survives(r); s["pod-1"] == "yes" && s["pod-2"] == "yes" {
			t.Errorf("%v: both datacenters survivable: %v", cps, s)
		}
	}
}

func TestBuildReportEvenVotersAndOneAPIDatacenter(t *testing.T) {
	tp := newTopo().dc("pod-1", 2, 1).dc("pod-2", 1, 1).dc("pod-3", 1, 1)
	// Only pod-1 runs API servers.
	var api []*corev1.Pod
	for _, p := range tp.in.APIServerPods {
		if strings.HasPrefix(p.Spec.NodeName, "pod-1") {
			api = append(api, p)
		}
	}
	tp.in.APIServerPods = api
	r := tp.etcdFromPods("pod-1-cp-1").build()
	if f := findingWith(r, "even number of voters (4)"); f == nil || f.Severity != severityWarning {
		t.Errorf("findings = %+v, want the even-voters warning", r.Findings)
	}
	if f := findingWith(r, "all 2 API servers are in datacenter pod-1"); f == nil {
		t.Errorf("findings = %+v, want the API server finding", r.Findings)
	}
	if r.Etcd.FaultTolerance != 1 {
		t.Errorf("tolerance = %d, want 1", r.Etcd.FaultTolerance)
	}
}

func TestBuildReportUnlabeledNodesAndMembers(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1)
	n := withIP(testutil.Node("loose-cp").ControlPlane().Obj(), "10.9.9.9")
	tp.in.Nodes = append(tp.in.Nodes, n, testutil.Node("loose-worker").Obj())
	tp.in.EtcdPods = append(tp.in.EtcdPods, etcdPod("loose-cp", "https://10.9.9.9:2379", true))
	r := tp.etcdFromPods("").build()
	u := findDC(r, cluster.Unlabeled)
	if u == nil || u.Nodes.Total != 2 || u.Voters != 1 || u.SurvivesLoss != nil {
		t.Fatalf("unlabeled row = %+v", u)
	}
	if r.Datacenters[len(r.Datacenters)-1].Name != cluster.Unlabeled {
		t.Errorf("unlabeled row should be last: %+v", r.Datacenters)
	}
	f := findingWith(r, "etcd member loose-cp runs on node loose-cp, which has no topology.kubernetes.io/zone label")
	if f == nil || f.Remedy != "kubectl label node loose-cp topology.kubernetes.io/zone=<datacenter>" {
		t.Errorf("findings = %+v", r.Findings)
	}
	if f := findingWith(r, "2 nodes have no topology.kubernetes.io/zone label (loose-cp, loose-worker)"); f == nil {
		t.Errorf("findings = %+v, want the unlabeled nodes finding", r.Findings)
	}
}

func TestMemberNodeMapping(t *testing.T) {
	nodes := []*corev1.Node{
		withIP(testutil.Node("cp-a").InDC("pod-1").Obj(), "10.1.0.1"),
		withIP(testutil.Node("cp-b").InDC("pod-2").Obj(), "10.2.0.1"),
		withIP(testutil.Node("cp-c").InDC("pod-3").Obj(), "127.0.0.1"),
		withIP(testutil.Node("cp-d").InDC("pod-3").Obj(), "127.0.0.1"),
	}
	pods := []*corev1.Pod{etcdPod("cp-c", "http://127.0.0.1:23790", true)}
	cases := []struct {
		name string
		m    cluster.EtcdMemberInfo
		want string
	}{
		{"by name", cluster.EtcdMemberInfo{Name: "cp-b", PeerURLs: []string{"https://10.1.0.1:2380"}}, "cp-b"},
		{"by peer URL host", cluster.EtcdMemberInfo{Name: "etcd-0", PeerURLs: []string{"https://10.1.0.1:2380"}}, "cp-a"},
		{"by client URL host", cluster.EtcdMemberInfo{Name: "etcd-1", ClientURLs: []string{"https://10.2.0.1:2379"}}, "cp-b"},
		{"by advertised pod URL when IPs are ambiguous", cluster.EtcdMemberInfo{Name: "etcd-2", ClientURLs: []string{"http://127.0.0.1:23790/"}}, "cp-c"},
		{"ambiguous IP", cluster.EtcdMemberInfo{Name: "etcd-3", PeerURLs: []string{"http://127.0.0.1:23800"}}, ""},
		{"unknown", cluster.EtcdMemberInfo{Name: "etcd-4", PeerURLs: []string{"https://10.7.0.1:2380"}}, ""},
	}
	for _, c := range cases {
		if got := cluster.MemberNode(c.m, nodes, pods); got != c.want {
			t.Errorf("%s: node = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestAPIServersFromEndpointSlice(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 0).dc("pod-2", 1, 0).dc("pod-3", 1, 0)
	tp.in.APIServerPods = nil
	tp.in.APIAddresses = []string{"10.0.0.1", "10.0.0.2", "192.168.9.9"}
	r := tp.etcdFromPods("pod-1-cp-1").build()
	want := []cluster.APIServerStatus{
		{Address: "192.168.9.9", Up: true},
		{Address: "10.0.0.1", Node: "pod-1-cp-1", Datacenter: "pod-1", Mapped: true, Up: true},
		{Address: "10.0.0.2", Node: "pod-2-cp-1", Datacenter: "pod-2", Mapped: true, Up: true},
	}
	if !reflect.DeepEqual(r.APIServers, want) {
		t.Errorf("apiServers = %+v\nwant %+v", r.APIServers, want)
	}
	if f := findingWith(r, "API server 192.168.9.9 (EndpointSlice default/kubernetes) matches no node InternalIP"); f == nil {
		t.Errorf("findings = %+v", r.Findings)
	}
	if findDC(r, "pod-3").APIServers != 0 || findDC(r, "pod-1").APIServers != 1 {
		t.Errorf("rows = %+v", r.Datacenters)
	}
}

func TestWhatIfLoseDatacenter(t *testing.T) {
	tp := newTopo().dc("pod-1", 2, 2).dc("pod-2", 2, 2).dc("pod-3", 1, 1)
	tp.in.Workloads = []statusWorkload{
		wl("Deployment", "ci", "worker-pod-2", "worker-2", "pod-2"),
		wl("Deployment", "ci", "spread", "spread", ""),
		wl("StatefulSet", "ci", "only-there", "only", ""),
		wl("Deployment", "ci", "pinned-idle", "idle", "pod-2"),
		wl("Deployment", "ci", "worker-pod-1", "worker-1", "pod-1"),
	}
	pods := appPods("ci", "worker-2", "pod-2-worker-1", 2)
	pods = append(pods, appPods("ci", "spread", "pod-1-worker-1", 1)...)
	pods = append(pods, appPods("ci", "spread", "pod-2-worker-1", 1)...)
	pods = append(pods, appPods("ci", "only", "pod-2-worker-2", 1)...)
	pods = append(pods, appPods("ci", "worker-1", "pod-1-worker-1", 1)...)
	tp.in.Pods = pods
	tp.in.PDBs = []*policyv1.PodDisruptionBudget{pdbMin("ci", "spread-pdb", "spread", 2), pdbMin("ci", "w1-pdb", "worker-1", 1), pdbMin("ci", "w2-pdb", "worker-2", 1)}
	tp.in.Lose = []string{"pod-2"}
	r := tp.etcdFromPods("pod-2-cp-1").build()

	w := r.WhatIf
	if w == nil || !w.HasQuorum || w.VotersLeft != 3 || w.APIServersLeft != 3 || w.NodesLeft != 6 {
		t.Fatalf("whatIf = %+v, want quorum kept with 3 voters, 3 API servers, 6 nodes left", w)
	}
	wantLost := []WorkloadLoss{
		{Kind: "Deployment", Namespace: "ci", Name: "pinned-idle", Pinned: "pod-2"},
		{Kind: "Deployment", Namespace: "ci", Name: "worker-pod-2", Pinned: "pod-2", Replicas: 2},
		{Kind: "StatefulSet", Namespace: "ci", Name: "only-there", Replicas: 1},
	}
	if !reflect.DeepEqual(w.LostWorkloads, wantLost) {
		t.Errorf("lostWorkloads = %+v\nwant %+v", w.LostWorkloads, wantLost)
	}
	wantPDB := []PDBViolation{{Namespace: "ci", Name: "spread-pdb", HealthyLeft: 1, Required: 2}, {Namespace: "ci", Name: "w2-pdb", HealthyLeft: 0, Required: 1}}
	if !reflect.DeepEqual(w.ViolatedPDBs, wantPDB) {
		t.Errorf("violatedPDBs = %+v\nwant %+v", w.ViolatedPDBs, wantPDB)
	}
	// Everything is recomputed without pod-2: losing any other is now fatal.
	if got, want := survives(r), map[string]string{"pod-1": "NO", "pod-2": "yes", "pod-3": "NO"}; !reflect.DeepEqual(got, want) {
		t.Errorf("survivesLoss = %v, want %v", got, want)
	}
	if r.Etcd.Healthy != 3 || r.Etcd.FaultTolerance != 0 || r.Etcd.Leader != "" {
		t.Errorf("etcd = %+v, want 3 healthy, tolerance 0, no leader", r.Etcd)
	}
	if !findDC(r, "pod-2").Lost || findDC(r, "pod-2").Nodes.Ready != 0 {
		t.Errorf("pod-2 row = %+v", findDC(r, "pod-2"))
	}
	if !strings.HasPrefix(verdictLine(r), "as if pod-2 were lost: etcd 5 voters, quorum 3, tolerates 0 failures, 3 healthy; survives loss of: pod-1 NO, pod-3 NO") {
		t.Errorf("verdict = %q", verdictLine(r))
	}
	if err := statusExit(r, true); err != nil {
		t.Errorf("what-if keeping quorum: exit = %v, want nil", err)
	}

	tp.in.Lose = []string{"pod-1", "pod-2"}
	r = buildReport(tp.in)
	if r.WhatIf.HasQuorum || r.WhatIf.VotersLeft != 1 {
		t.Errorf("lose pod-1,pod-2: whatIf = %+v", r.WhatIf)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("what-if losing quorum with --fail-on-risk: exit = %v, want %d", err, ExitRisk)
	}
	if err := statusExit(r, false); err != nil {
		t.Errorf("what-if never exits with the real quorum-lost code: %v", err)
	}
}

func TestBuildReportNoEtcdPods(t *testing.T) {
	tp := newTopo().dc("pod-1", 0, 2).dc("pod-2", 0, 2).dc("pod-3", 0, 1)
	tp.in.Nodes = append(tp.in.Nodes, testutil.Node("managed-1").Obj())
	r := tp.build()
	if r.Etcd.Source != cluster.EtcdSourceUnknown || r.Etcd.Size != 0 {
		t.Fatalf("etcd = %+v, want unknown", r.Etcd)
	}
	for _, d := range r.Datacenters {
		if d.SurvivesLoss != nil {
			t.Errorf("%s: survivesLoss = %v, want null", d.Name, *d.SurvivesLoss)
		}
	}
	if f := findingWith(r, "managed control plane or an external datastore (kine)"); f == nil || !strings.Contains(f.Remedy, "--etcd-endpoints") {
		t.Errorf("findings = %+v", r.Findings)
	}
	if err := statusExit(r, false); err != nil {
		t.Errorf("exit = %v, want nil: unknown is not lost", err)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("--fail-on-risk with unknown survival: exit = %v, want %d", err, ExitRisk)
	}
}

func TestBuildReportFromPodReadiness(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 0).dc("pod-2", 1, 0).dc("pod-3", 1, 0)
	tp.in.EtcdPods[0] = readyPod(tp.in.EtcdPods[0], false)
	r := tp.build()
	if r.Etcd.Source != cluster.EtcdSourcePods || r.Etcd.Size != 3 || r.Etcd.Healthy != 2 || !r.Etcd.HasQuorum || r.Etcd.Leader != "" {
		t.Fatalf("etcd = %+v", r.Etcd)
	}
	if got, want := survives(r), map[string]string{"pod-1": "yes", "pod-2": "NO", "pod-3": "NO"}; !reflect.DeepEqual(got, want) {
		t.Errorf("survivesLoss = %v, want %v", got, want)
	}
	if f := findingWith(r, "pod readiness only"); f == nil {
		t.Errorf("findings = %+v", r.Findings)
	}
}

func TestLearnersDoNotVote(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 0).dc("pod-2", 1, 0).dc("pod-3", 2, 0).etcdFromPods("pod-1-cp-1")
	tp.in.Etcd.Members[3].Learner = true
	r := tp.build()
	if r.Etcd.Size != 3 || r.Etcd.Learners != 1 || r.Etcd.Quorum != 2 || r.Etcd.FaultTolerance != 1 {
		t.Fatalf("etcd = %+v, want 3 voters + 1 learner", r.Etcd)
	}
	p3 := findDC(r, "pod-3")
	if p3.Voters != 1 || p3.Learners != 1 {
		t.Errorf("pod-3 = %+v", p3)
	}
	if !strings.Contains(verdictLine(r), "etcd 3 voters (+1 learners), quorum 2") {
		t.Errorf("verdict = %q", verdictLine(r))
	}
}

func TestKubeletSettableLabelFinding(t *testing.T) {
	r := newTopo().dc("pod-1", 1, 0).dc("pod-2", 1, 0).dc("pod-3", 1, 0).etcdFromPods("pod-1-cp-1").build()
	if f := findingWith(r, "one a kubelet may set on its own Node"); f == nil || !strings.Contains(f.Remedy, "node-restriction.kubernetes.io/") {
		t.Errorf("findings = %+v", r.Findings)
	}
}

func TestStatusJSONKeys(t *testing.T) {
	r := newTopo().dc("pod-1", 2, 1).dc("pod-2", 2, 1).dc("pod-3", 1, 0).etcdFromPods("pod-1-cp-1").build()
	var buf bytes.Buffer
	if err := cmdutil.PrintStructured(&buf, cmdutil.OutputJSON, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	etcd := m["etcd"].(map[string]any)
	for _, k := range []string{"size", "healthy", "quorum", "faultTolerance", "members", "source"} {
		if _, ok := etcd[k]; !ok {
			t.Errorf("etcd.%s missing", k)
		}
	}
	member := etcd["members"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "node", "datacenter", "healthy", "leader", "learner"} {
		if _, ok := member[k]; !ok {
			t.Errorf("etcd.members[].%s missing", k)
		}
	}
	dc := m["datacenters"].([]any)[0].(map[string]any)
	if dc["name"] != "pod-1" || dc["survivesLoss"] != true {
		t.Errorf("datacenters[0] = %v", dc)
	}
	for _, k := range []string{"findings", "apiServers"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	f := m["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"severity", "message", "remedy"} {
		if _, ok := f[k]; !ok {
			t.Errorf("findings[].%s missing", k)
		}
	}
}

func TestEtcdctlCommandAndParsing(t *testing.T) {
	got := cluster.EtcdctlArgs(cluster.EtcdExecTLS{CACert: cluster.DefaultExecCACert, Cert: cluster.DefaultExecCert, Key: cluster.DefaultExecKey}, []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}, 2*time.Second, "endpoint", "status")
	want := []string{"etcdctl", "--endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379", "--dial-timeout=2s", "--command-timeout=2s",
		"--cacert=/etc/kubernetes/pki/etcd/ca.crt", "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt", "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
		"endpoint", "status", "-w", "json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("args = %q\nwant %q", got, want)
	}
	if got := cluster.EtcdctlArgs(cluster.EtcdExecTLS{}, nil, time.Second, "member", "list"); !reflect.DeepEqual(got, []string{"etcdctl", "--endpoints=https://127.0.0.1:2379", "--dial-timeout=1s", "--command-timeout=1s", "member", "list", "-w", "json"}) {
		t.Errorf("default args = %q", got)
	}

	v, err := cluster.ParseEtcdctl([]byte(memberListJSON), []byte(endpointStatusJSON))
	if err != nil {
		t.Fatal(err)
	}
	if v.Source != cluster.EtcdSourceExec || v.LeaderID != 11936345416290209162 || len(v.Members) != 3 {
		t.Fatalf("view = %+v", v)
	}
	health := map[string]bool{}
	for _, m := range v.Members {
		health[m.Name] = m.Healthy
		if m.Name == "cp-c" && !m.Learner {
			t.Errorf("cp-c should be a learner")
		}
	}
	if !reflect.DeepEqual(health, map[string]bool{"cp-a": true, "cp-b": false, "cp-c": true}) {
		t.Errorf("health = %v", health)
	}
	if _, err := cluster.ParseEtcdctl([]byte("Error: context deadline exceeded"), nil); err == nil {
		t.Errorf("garbage member list parsed")
	}
}

const memberListJSON = `{"header":{"cluster_id":14841639068965178418,"member_id":11936345416290209162,"raft_term":2},
"members":[{"ID":11936345416290209162,"name":"cp-a","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},
{"ID":2,"name":"cp-b","peerURLs":["https://10.0.0.2:2380"],"clientURLs":["https://10.0.0.2:2379"]},
{"ID":3,"name":"cp-c","peerURLs":["https://10.0.0.3:2380"],"clientURLs":["https://10.0.0.3:2379"],"isLearner":true}]}`

const endpointStatusJSON = `[{"Endpoint":"https://10.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":11936345416290209162,"revision":9,"raft_term":2},"version":"3.6.0","dbSize":20480,"leader":11936345416290209162,"raftIndex":10,"raftTerm":2}},
{"Endpoint":"https://10.0.0.3:2379","Status":{"header":{"member_id":3},"leader":11936345416290209162,"isLearner":true}}]`

// newTestStatusOptions wires options to a fake clientset and a fake
// dynamic client holding policies.
func newTestStatusOptions(t *testing.T, objs []runtime.Object, policies ...*v1alpha1.PlacementPolicy) (*Options, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewOptions(genericclioptions.NewConfigFlags(false), streams)
	o.client = fake.NewClientset(objs...)
	var dynObjs []runtime.Object
	for _, p := range policies {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{Object: u}
		obj.SetAPIVersion(v1alpha1.GroupVersion.String())
		obj.SetKind("PlacementPolicy")
		dynObjs = append(dynObjs, obj)
	}
	o.dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{cluster.PolicyGVR: "PlacementPolicyList"}, dynObjs...)
	o.Exec = false
	return o, out, errOut
}

func TestStatusRunWithFakeClientset(t *testing.T) {
	tp := newTopo().dc("pod-1", 2, 1).dc("pod-2", 2, 1).dc("pod-3", 1, 1)
	var objs []runtime.Object
	for _, n := range tp.in.Nodes {
		objs = append(objs, n)
	}
	for _, p := range tp.in.EtcdPods {
		// No advertised URL: nothing to dial, pod readiness stands in.
		delete(p.Annotations, "kubeadm.kubernetes.io/etcd.advertise-client-urls")
		objs = append(objs, p)
	}
	for _, p := range tp.in.APIServerPods {
		objs = append(objs, p)
	}
	objs = append(objs, testutil.Deployment("ci", "worker").Labels("app", "worker").InDC("pod-2").Obj())

	t.Run("json", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, objs)
		o.Output = cmdutil.OutputJSON
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := o.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var r Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if r.Etcd.Source != cluster.EtcdSourcePods || r.Etcd.Size != 5 || r.Etcd.Quorum != 3 || r.Etcd.FaultTolerance != 2 {
			t.Errorf("etcd = %+v", r.Etcd)
		}
		if findDC(&r, "pod-2").Pinned != 1 || findDC(&r, "pod-1").Pinned != 0 {
			t.Errorf("pinned = %+v", r.Datacenters)
		}
		if len(r.APIServers) != 5 {
			t.Errorf("apiServers = %+v", r.APIServers)
		}
	})

	t.Run("policy label wins", func(t *testing.T) {
		p := &v1alpha1.PlacementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "macstadium"}, Spec: v1alpha1.PlacementPolicySpec{DatacenterLabel: "example.com/site", Datacenters: []string{"site-a"}}}
		o, out, _ := newTestStatusOptions(t, objs, p)
		o.Output = cmdutil.OutputJSON
		if err := o.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var r Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.DatacenterLabel != "example.com/site" || r.LabelSource != "PlacementPolicy/macstadium" {
			t.Errorf("label = %s from %s", r.DatacenterLabel, r.LabelSource)
		}
		if findDC(&r, "site-a") == nil || findDC(&r, cluster.Unlabeled).Nodes.Total != 8 {
			t.Errorf("datacenters = %+v", r.Datacenters)
		}
	})

	t.Run("policy violations per datacenter", func(t *testing.T) {
		p := testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
			Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker")).Obj()
		withLoose := append(append([]runtime.Object{}, objs...),
			testutil.Deployment("ci", "loose").Labels("app", "worker").Obj(),
			testutil.Deployment("ci", "typo").Labels("app", "worker").InDC("pod-9").Obj())
		o, out, _ := newTestStatusOptions(t, withLoose, p)
		o.Output = cmdutil.OutputJSON
		if err := o.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var r Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Violations == nil || *r.Violations != 2 {
			t.Fatalf("violations = %v, want 2 (loose selects no datacenter, typo an unknown one)", r.Violations)
		}
		if findDC(&r, "pod-9") != nil {
			t.Errorf("a typo made a datacenter row: %+v", r.Datacenters)
		}
		if v := findDC(&r, "pod-2").Violations; v == nil || *v != 0 {
			t.Errorf("pod-2 violations = %v, want 0: worker is pinned correctly", v)
		}
	})

	t.Run("unknown --lose value", func(t *testing.T) {
		o, _, _ := newTestStatusOptions(t, objs)
		o.Lose = []string{"pod-9"}
		err := o.Run(context.Background())
		var exit *cmdutil.ExitError
		if !errors.As(err, &exit) || exit.Code != cmdutil.ExitUsage || err.Error() != "--lose pod-9: no node has topology.kubernetes.io/zone=pod-9; did you mean pod-1? known datacenters: pod-1, pod-2, pod-3" {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("table", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, objs)
		o.Output = cmdutil.OutputWide
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		for _, want := range []string{
			"etcd 5 voters, quorum 3, tolerates 2 failures; survives loss of: pod-1 yes, pod-2 yes, pod-3 yes [source: pods]\n",
			"DATACENTER", "pod-1-cp-1,pod-1-cp-2,pod-1-worker-1",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("table lacks %q:\n%s", want, s)
			}
		}
	})

	t.Run("exec fallback", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, objs)
		o.Output = cmdutil.OutputJSON
		o.Exec = true
		var calls [][]string
		o.podExec = func(_ context.Context, ns, pod, container string, cmd []string) ([]byte, []byte, error) {
			calls = append(calls, append([]string{ns + "/" + pod + "/" + container}, cmd...))
			if cmd[len(cmd)-3] == "list" {
				return []byte(memberListJSON), nil, nil
			}
			return []byte(endpointStatusJSON), nil, errors.New("command terminated with exit code 1")
		}
		// One of two voters answers: quorum is lost, exit 4 after printing.
		err := o.Run(context.Background())
		var exit *cmdutil.ExitError
		if !errors.As(err, &exit) || exit.Code != ExitQuorumLost {
			t.Fatalf("Run = %v, want exit %d", err, ExitQuorumLost)
		}
		var r Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Etcd.Source != cluster.EtcdSourceExec || r.Etcd.Size != 2 || r.Etcd.Learners != 1 || r.Etcd.Leader != "cp-a" {
			t.Errorf("etcd = %+v", r.Etcd)
		}
		if len(calls) != 2 || calls[0][0] != "kube-system/etcd-pod-1-cp-1/main" {
			t.Errorf("exec calls = %q", calls)
		}
	})
}

func TestGatherMakesFixedListCalls(t *testing.T) {
	tp := newTopo().dc("pod-1", 1, 30).dc("pod-2", 1, 30).dc("pod-3", 1, 1)
	var objs []runtime.Object
	for _, n := range tp.in.Nodes {
		objs = append(objs, n)
	}
	for _, p := range tp.in.EtcdPods {
		objs = append(objs, p)
	}
	for _, p := range appPods("ci", "x", "pod-1-worker-1", 50) {
		objs = append(objs, p)
	}
	objs = append(objs, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
	})
	client := fake.NewClientset(objs...)
	g, err := cluster.Read(context.Background(), client, nil, cluster.Options{ControlPlane: true, Namespaces: true, Pods: true, PDBs: true, Workloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 64 || len(g.EtcdPods) != 3 || len(g.Pods) != 53 || !reflect.DeepEqual(g.APIAddresses, []string{"10.0.0.1"}) {
		t.Errorf("gathered %d nodes, %d etcd pods, %d pods, api %v", len(g.Nodes), len(g.EtcdPods), len(g.Pods), g.APIAddresses)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "list" {
			t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	// Nodes, the control plane's pods, the kubernetes EndpointSlices,
	// Namespaces, pods, PDBs and the eight judged kinds besides Pod.
	if n := len(client.Actions()); n != 14 {
		t.Errorf("%d API calls, want 14 (one LIST per kind)", n)
	}
}

func TestExplainConfigErrors(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oneContext := write("one", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: dev, context: {cluster: c, user: u}}, {name: staging, context: {cluster: c, user: u}}]
current-context: dev
`)
	cases := []struct {
		name, kubeconfig, context, want string
	}{
		{"wrong context", oneContext, "prod", `context "prod" is not in the kubeconfig: use one of dev, staging (kubectl config get-contexts)`},
		{"empty kubeconfig", write("empty", ""), "", "no kubeconfig found: set KUBECONFIG or pass --kubeconfig"},
		{"missing file", filepath.Join(dir, "absent"), "", "kubeconfig not found: check --kubeconfig and KUBECONFIG"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cf := genericclioptions.NewConfigFlags(false)
			cf.KubeConfig = &c.kubeconfig
			if c.context != "" {
				cf.Context = &c.context
			}
			o := NewOptions(cf, streams)
			if err := o.Complete(); err != nil {
				t.Fatal(err)
			}
			err := o.Run(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("Run = %v, want prefix %q", err, c.want)
			}
		})
	}
}

func TestDatacenterCompletions(t *testing.T) {
	dcs := []string{"pod-1", "pod-2", "pod-3"}
	if got := cluster.CompleteList(dcs, ""); !reflect.DeepEqual(got, []string{"pod-1", "pod-2", "pod-3"}) {
		t.Errorf("completions = %v", got)
	}
	if got := cluster.CompleteList(dcs, "pod-2,po"); !reflect.DeepEqual(got, []string{"pod-2,pod-1", "pod-2,pod-3"}) {
		t.Errorf("completions after pod-2 = %v", got)
	}
}

func TestGatherToleratesForbiddenKinds(t *testing.T) {
	client := fake.NewClientset(testutil.Node("a").InDC("pod-1").Obj())
	client.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("rbac"))
	})
	g, err := cluster.Read(context.Background(), client, nil, cluster.Options{ControlPlane: true, Namespaces: true, Workloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Forbidden, []string{"deployments"}) || len(g.Nodes) != 1 {
		t.Errorf("forbidden = %v, nodes %d", g.Forbidden, len(g.Nodes))
	}
	r := buildReport(&statusInput{Label: testutil.Zone, Nodes: g.Nodes, Forbidden: g.Forbidden, APIAvailable: true})
	if findingWith(r, "not allowed to list deployments") == nil {
		t.Errorf("findings = %+v", r.Findings)
	}
}

func TestStatusAPIDownUsesCachedEndpoints(t *testing.T) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewOptions(genericclioptions.NewConfigFlags(false), streams)
	o.cacheDir, o.server = t.TempDir(), "https://10.0.0.1:6443"
	o.configErr = errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
	o.Output = cmdutil.OutputJSON
	o.EtcdTimeout = 300 * time.Millisecond

	if err := o.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("without cache or endpoints: Run = %v, want the API error", err)
	}

	writeStatusCache(o.cacheDir, &statusCache{Server: o.server, Label: testutil.Zone,
		Endpoints: []string{"http://127.0.0.1:1"}, Datacenters: map[string]string{"cp-a": "pod-1"}})
	err := o.Run(context.Background())
	var exit *cmdutil.ExitError
	if !errors.As(err, &exit) || exit.Code != ExitQuorumLost {
		t.Fatalf("Run = %v, want exit %d", err, ExitQuorumLost)
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.APIAvailable || r.Etcd.Source != cluster.EtcdSourceUnknown || r.LabelSource != "cache" {
		t.Errorf("report = %+v", r)
	}
	if findingWith(&r, "no etcd endpoint answered (http://127.0.0.1:1)") == nil {
		t.Errorf("findings = %+v", r.Findings)
	}
	if !strings.Contains(errOut.String(), "reporting from etcd directly") {
		t.Errorf("stderr = %q", errOut)
	}
}

// TestStatusForbidden: a user the API server refuses is told which
// permissions status needs, not to try etcd, and status does not go around
// the refusal by reading etcd.
func TestStatusForbidden(t *testing.T) {
	o, out, _ := newTestStatusOptions(t, nil)
	o.client.(*fake.Clientset).PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("RBAC: not allowed"))
	})
	o.server = "https://api.example:6443"
	err := o.Run(context.Background())
	if err == nil {
		t.Fatalf("Run succeeded without permission to list nodes:\n%s", out)
	}
	for _, want := range []string{"refuses", "nodes", "manifests/rbac/status.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "--etcd-endpoints") {
		t.Errorf("error %q sends a refused user to etcd", err)
	}
}

// TestDatacenterDown: pod-3 powered off (nodes NotReady, its voter and API
// server silent) is said first, in the verdict line and as a critical
// finding with what still holds; the fatal next losses are one finding
// under that cause, not one per datacenter.
func TestDatacenterDown(t *testing.T) {
	tp := newTopo().dc("pod-1", 2, 2).dc("pod-2", 2, 2).dc("pod-3", 1, 1)
	for _, n := range tp.in.Nodes {
		if n.Labels[testutil.Zone] == "pod-3" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
		}
	}
	for _, p := range tp.in.APIServerPods {
		if p.Spec.NodeName == "pod-3-cp-1" {
			readyPod(p, false)
		}
	}
	tp.in.Workloads = append(tp.in.Workloads, wl("Deployment", "ci", "worker-pod-3", "worker", "pod-3"))
	r := tp.etcdFromPods("pod-1-cp-1", "pod-3-cp-1").build()

	d := findDC(r, "pod-3")
	if d == nil || !d.Down || findDC(r, "pod-1").Down {
		t.Fatalf("pod-3 = %+v, want down, and pod-1 not", d)
	}
	if v := verdictLine(r); !strings.HasPrefix(v, "DATACENTER pod-3 IS DOWN; etcd 5 voters") {
		t.Errorf("verdict = %q, want it to say pod-3 is down first", v)
	}
	if len(r.Findings) == 0 || !strings.HasPrefix(r.Findings[0].Message, "datacenter pod-3 is DOWN: its 2 nodes are NotReady and its 1 etcd voters and 1 API servers do not answer") ||
		r.Findings[0].Severity != severityCritical {
		t.Fatalf("first finding = %+v, want pod-3 down", r.Findings)
	}
	for _, want := range []string{"etcd keeps quorum with 4 of 5 voters (3 needed, tolerates 1 more failure)", "4 of 5 API servers up", "1 workloads pinned to pod-3 have no replica anywhere (Deployment/ci/worker-pod-3)"} {
		if !strings.Contains(r.Findings[0].Message, want) {
			t.Errorf("down finding %q lacks %q", r.Findings[0].Message, want)
		}
	}
	if f := findingWith(r, "with pod-3 down, losing pod-1 or pod-2 as well loses etcd quorum"); f == nil {
		t.Errorf("findings = %+v, want one grouped finding for the next losses", r.Findings)
	}
	if f := findingWith(r, "losing datacenter pod-1 loses etcd quorum"); f != nil {
		t.Errorf("per-datacenter finding %q repeats what the down finding says", f.Message)
	}
}

// TestUnknownIsNotZero: with the API server unreadable, node counts are
// unknown (null in JSON, "unknown" in the table), never 0/0/0.
func TestUnknownIsNotZero(t *testing.T) {
	in := &statusInput{Label: testutil.Zone, LabelSource: "cache", CachedDatacenters: map[string]string{"pod-1-cp-1": "pod-1"},
		Etcd: &cluster.EtcdView{Source: cluster.EtcdSourceDirect, Members: []cluster.EtcdMemberInfo{{ID: 1, Name: "pod-1-cp-1", Healthy: true}}, LeaderID: 1}}
	r := buildReport(in)
	d := findDC(r, "pod-1")
	if d == nil || d.Nodes != nil || d.Down {
		t.Fatalf("pod-1 = %+v, want unknown nodes and not down", d)
	}
	var out strings.Builder
	if err := printStatusTable(&out, r, false, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pod-1        NO              unknown") || strings.Contains(out.String(), "0/0/0") || !strings.Contains(out.String(), "unknown") {
		t.Errorf("table:\n%s", out.String())
	}
}
