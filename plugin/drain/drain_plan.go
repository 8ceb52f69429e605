package drain

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Skip reasons: pods that stay where they are. They keep running until the
// machines go down, and none of them blocks the drain.
const (
	skipDaemonSet = "DaemonSet"
	skipMirror    = "MirrorPod"
	skipFinished  = "Finished"
)

// Blocker kinds: why a pod cannot be evicted as asked.
const (
	blockUnmanaged = "Unmanaged"
	blockEmptyDir  = "EmptyDirData"
	blockPDB       = "PodDisruptionBudget"
	// blockForbidden: RBAC refuses a call the drain needs (preflight).
	blockForbidden = "Forbidden"
)

// Plan modes.
const (
	modeEvict  = "Evict"
	modeDelete = "Delete"
)

// readyCondition names the node's Ready condition: Ready, NotReady, or
// Unknown when the node controller has lost the node's heartbeat.
func readyCondition(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return "Ready"
		case corev1.ConditionFalse:
			return "NotReady"
		}
		return "Unknown"
	}
	return "Unknown"
}

// notReadyMessage says what happens to the pods of the datacenter's nodes
// that are not Ready.
func notReadyMessage(in PlanInput, plan *Plan) string {
	if len(plan.NotReady) == 0 {
		return ""
	}
	n := 0
	for _, p := range plan.Evict {
		if p.NotReadyNode {
			n++
		}
	}
	msg := fmt.Sprintf("%d of %d node(s) are not Ready (%s): no kubelet confirms that their %d pod(s) terminate", len(plan.NotReady), len(plan.Nodes), strings.Join(plan.NotReady, ", "), n)
	if in.ForceDeleteUnreachable {
		return msg + "; --force-delete-unreachable deletes them at once (grace period 0): their containers may still run if the nodes are only cut off"
	}
	return msg + "; their deletion is requested and not waited for past --skip-wait-for-delete-timeout; --force-delete-unreachable removes them at once"
}

// PlanInput is everything the plan is computed from: the results of
// LIST calls and the flags. ComputePlan never calls the API server.
type PlanInput struct {
	// Datacenter is the datacenter to drain.
	Datacenter string
	// Label is the node label whose value names a node's datacenter.
	Label string
	// Nodes are all nodes of the cluster.
	Nodes []corev1.Node
	// Pods are all pods of the cluster.
	Pods []corev1.Pod
	// PDBs are all PodDisruptionBudgets of the cluster.
	PDBs []policyv1.PodDisruptionBudget
	// ReplicaSets resolve pods to their Deployment; missing ones leave the
	// ReplicaSet as the workload.
	ReplicaSets []appsv1.ReplicaSet
	// Force evicts pods that no controller recreates.
	Force bool
	// DeleteEmptyDirData evicts pods whose emptyDir data is lost with them.
	DeleteEmptyDirData bool
	// AllowQuorumLoss drains even when powering the datacenter off would lose
	// etcd quorum or every API server.
	AllowQuorumLoss bool
	// PodSelector limits the pods to evict (--pod-selector); nil selects
	// every pod.
	PodSelector labels.Selector
	// DisableEviction deletes pods instead of evicting them: PDBs are not
	// honoured.
	DisableEviction bool
	// ForceDeleteUnreachable force-deletes (grace period 0) the pods of
	// nodes that are not Ready instead of evicting them.
	ForceDeleteUnreachable bool
	// Etcd is etcd's view of its members (cluster.ReadEtcd); nil means the
	// readiness of the etcd pods stands in, as in kubectl dc status.
	Etcd *cluster.EtcdView
	// EtcdPods, APIServerPods and APIAddresses are the control plane as the
	// snapshot holds it; nil pods are taken from Pods (kube-system,
	// component=etcd or kube-apiserver).
	EtcdPods      []*corev1.Pod
	APIServerPods []*corev1.Pod
	APIAddresses  []string
	// Endpoint is the control-plane endpoint the cluster names
	// (cluster.ReadControlPlaneEndpoint); nil means not read, not judged.
	Endpoint *cluster.ControlPlaneEndpoint
	// MemberDatacenters and MemberSources place the etcd members that run
	// on no node, as kubectl dc status places them
	// (cluster.Snapshot.EtcdMemberDatacenters).
	MemberDatacenters, MemberSources map[string]string
	// Kine says how the API servers are seen to store in kine
	// (cluster.DetectKine); nil when they store in etcd.
	Kine []string
	// Database are kine's database servers as --datastore-dsn read them,
	// nil when not read; DatabaseDatacenters place those whose address is
	// no node's (--datastore-datacenters), as kubectl dc status places them.
	Database            []policy.DatabaseServer
	DatabaseDatacenters map[string]string
}

// Plan is what `kubectl dc drain` will do, computed before it touches
// anything. It is printed as a table, or as JSON or YAML with -o.
type Plan struct {
	Datacenter string      `json:"datacenter"`
	Label      string      `json:"label"`
	Nodes      []PlanNode  `json:"nodes"`
	Evict      []PlanPod   `json:"evict"`
	Skipped    []PlanPod   `json:"skipped"`
	Blockers   []Blocker   `json:"blockers"`
	Pinned     []PinnedSet `json:"pinned"`
	Capacity   Capacity    `json:"capacity"`
	Quorum     QuorumPlan  `json:"quorum"`
	// PDBs are the verdicts on every PDB that covers a pod to evict, as
	// kubectl dc status --lose reports them for the same datacenter.
	PDBs []cluster.PDBVerdict `json:"pdbs"`
	// NotReady names the datacenter's nodes that are not Ready (NotReady or
	// Unknown: unreachable): their pods cannot terminate gracefully.
	NotReady []string `json:"notReady"`
	// NotReadyMessage says what the drain does with their pods.
	NotReadyMessage string `json:"notReadyMessage,omitempty"`
	// Unselected counts the datacenter's pods that --pod-selector leaves
	// alone.
	Unselected int `json:"unselected,omitempty"`
	// Mode is Evict (the Eviction API, PDBs honoured) or Delete
	// (--disable-eviction: PDBs bypassed).
	Mode string `json:"mode"`
	// Refused is true when the drain will not run: it would lose quorum
	// without --allow-quorum-loss, or a blocker needs --force or
	// --delete-emptydir-data. Reasons says why.
	Refused bool     `json:"refused"`
	Reasons []string `json:"reasons,omitempty"`

	// pdbsOf maps "namespace/name" of a pod to evict to the "namespace/name"
	// of the PDBs that cover it, for reporting 429s per PDB.
	pdbsOf map[string][]string
}

// PlanNode is one node of the datacenter.
type PlanNode struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	// Condition is the node's Ready condition: Ready, NotReady, or Unknown
	// (the node controller lost its heartbeat: unreachable).
	Condition     string `json:"condition"`
	Unschedulable bool   `json:"unschedulable"`
	ControlPlane  bool   `json:"controlPlane"`
	// Evict is how many pods the drain evicts from the node.
	Evict int `json:"evict"`
	// Skipped is how many pods stay (DaemonSet, mirror, finished).
	Skipped int `json:"skipped"`
}

// PlanPod is one pod the plan evicts or skips.
type PlanPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node"`
	// Owner is "Kind/name" of the workload, "" for an unmanaged pod.
	Owner string `json:"owner,omitempty"`
	// Reason says why a pod is skipped; empty for pods to evict.
	Reason string `json:"reason,omitempty"`
	// Pinned is true when the pod can only run in this datacenter: no
	// schedulable node outside it satisfies the pod's nodeSelector, required
	// node affinity, tolerations and host ports.
	Pinned bool `json:"pinned,omitempty"`
	// PinnedBy says why, when Pinned.
	PinnedBy string `json:"pinnedBy,omitempty"`
	// NotReadyNode is true when the pod's node is not Ready.
	NotReadyNode bool `json:"notReadyNode,omitempty"`
	// Blocked is true when a blocker names this pod.
	Blocked bool `json:"blocked,omitempty"`

	uid types.UID
	// deletion and grace are the pod's deletionTimestamp and grace period
	// when it is already terminating.
	deletion *metav1.Time
	grace    int64
}

// Blocker is something that keeps pods from being evicted, with its remedy.
type Blocker struct {
	// Kind is Unmanaged, EmptyDirData or PodDisruptionBudget.
	Kind string `json:"kind"`
	// Object is "namespace/name" of the pod or the PDB.
	Object string `json:"object"`
	// Pods are "namespace/name" of the pods it blocks.
	Pods    []string `json:"pods"`
	Message string   `json:"message"`
	Remedy  string   `json:"remedy"`
	// Fatal is true when the drain refuses to start because of it; PDB
	// blockers are not fatal: the drain evicts the rest and reports them.
	Fatal bool `json:"fatal"`
}

// PinnedSet is a workload whose pods can only run in the drained
// datacenter: evicted, they go Pending.
type PinnedSet struct {
	// Workload is "Kind/namespace/name".
	Workload string `json:"workload"`
	Pods     int    `json:"pods"`
	// Reason says why its pods cannot run elsewhere.
	Reason string `json:"reason"`
	// PDBs are "namespace/name" of the budgets covering its pods.
	PDBs []string `json:"pdbs,omitempty"`
	// BlocksForever is true when a PDB keeps the drain from ever evicting
	// all of them.
	BlocksForever bool   `json:"blocksForever"`
	Message       string `json:"message"`
}

// Capacity compares what the evicted pods request with what the other
// datacenters have free.
type Capacity struct {
	// CPU and Memory are the requests of the pods to evict that can run
	// elsewhere (pinned pods excluded) against the free allocatable of the
	// Ready, schedulable nodes of the other datacenters that some of them
	// can use (selectors, affinity, taints, host ports).
	CPU    ResourceFit `json:"cpu"`
	Memory ResourceFit `json:"memory"`
	// Pods is the number of pods to place against free pod slots.
	Pods ResourceFit `json:"pods"`
	Fits bool        `json:"fits"`
	// Nodes is how many nodes elsewhere can take some of the pods.
	Nodes int `json:"nodes"`
	// Unfit names the workloads whose own usable nodes lack the room.
	Unfit []string `json:"unfit,omitempty"`
}

// ResourceFit is one resource: needed against free.
type ResourceFit struct {
	Needed string `json:"needed"`
	Free   string `json:"free"`
	Fits   bool   `json:"fits"`
}

// QuorumPlan is the effect of powering the datacenter off.
type QuorumPlan struct {
	Etcd       QuorumCount `json:"etcd"`
	APIServers QuorumCount `json:"apiServers"`
	// Survives is false when powering the datacenter off loses etcd quorum
	// or leaves no API server.
	Survives bool `json:"survives"`
	// EtcdSurvives is false when powering the datacenter off loses etcd
	// quorum: kubectl dc status's survivesLoss of the same datacenter.
	EtcdSurvives bool `json:"etcdSurvives"`
	// Endpoint is the control-plane endpoint and whether it stays
	// reachable without the datacenter, as kubectl dc status --lose says;
	// nil when it was not read.
	Endpoint *EndpointPlan `json:"endpoint,omitempty"`
	Messages []string      `json:"messages"`
	// losses are the messages that make Survives false: the reasons of
	// a refusal, without what the datacenter's loss leaves intact.
	losses []string
}

// lose records a message that makes powering the datacenter off fatal.
func (q *QuorumPlan) lose(msg string) {
	q.Survives = false
	q.Messages = append(q.Messages, msg)
	q.losses = append(q.losses, msg)
}

// EndpointPlan is the control-plane endpoint in the plan.
type EndpointPlan struct {
	policy.Endpoint
	Source string `json:"source"`
	// Reachable is false when the datacenter takes the endpoint with it,
	// nil when that is not known.
	Reachable *bool  `json:"reachable"`
	Reason    string `json:"reason,omitempty"`
}

// QuorumCount counts members of one kind inside and outside the datacenter.
type QuorumCount struct {
	// Source says where members were found: "pods" (etcd or kube-apiserver
	// pods in kube-system), "nodes" (control-plane nodes) or "none".
	Source string `json:"source"`
	Total  int    `json:"total"`
	// InDatacenter are the members that go down with the datacenter.
	InDatacenter int `json:"inDatacenter"`
	// Remaining are the healthy members outside it.
	Remaining int `json:"remaining"`
	// Quorum is how many etcd voters must agree; 0 for API servers.
	Quorum int      `json:"quorum"`
	Nodes  []string `json:"nodes,omitempty"`
}

// UnknownDatacenterError is returned when no node carries the datacenter.
type UnknownDatacenterError struct {
	Datacenter string
	Label      string
	Known      []string
}

func (e *UnknownDatacenterError) Error() string {
	known := "none: no node carries the label"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("datacenter %q matches no node with label %s: %sknown datacenters: %s (set --datacenter-label if the label differs)", e.Datacenter, e.Label, policy.DidYouMean(e.Datacenter, e.Known), known)
}

// KnownDatacenters returns the sorted values of label over nodes.
func KnownDatacenters(nodes []corev1.Node, label string) []string {
	set := map[string]bool{}
	for i := range nodes {
		if dc := policy.DatacenterOf(&nodes[i], label); dc != "" {
			set[dc] = true
		}
	}
	out := make([]string, 0, len(set))
	for dc := range set {
		out = append(out, dc)
	}
	sort.Strings(out)
	return out
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// ComputePlan computes the plan of draining in.Datacenter. It returns an
// *UnknownDatacenterError when no node carries the datacenter.
func ComputePlan(in PlanInput) (*Plan, error) {
	plan := &Plan{
		Datacenter: in.Datacenter, Label: in.Label,
		Nodes: []PlanNode{}, Evict: []PlanPod{}, Skipped: []PlanPod{},
		Blockers: []Blocker{}, Pinned: []PinnedSet{}, NotReady: []string{}, Mode: modeEvict,
		pdbsOf: map[string][]string{},
	}
	if in.DisableEviction {
		plan.Mode = modeDelete
	}
	nodeDC := make(map[string]string, len(in.Nodes))
	nodeIdx := map[string]int{}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		dc := policy.DatacenterOf(n, in.Label)
		nodeDC[n.Name] = dc
		if dc != in.Datacenter {
			continue
		}
		nodeIdx[n.Name] = len(plan.Nodes)
		plan.Nodes = append(plan.Nodes, PlanNode{
			Name: n.Name, Ready: policy.NodeReady(n), Condition: readyCondition(n), Unschedulable: n.Spec.Unschedulable,
			ControlPlane: policy.IsControlPlane(n),
		})
	}
	if len(plan.Nodes) == 0 {
		return nil, &UnknownDatacenterError{Datacenter: in.Datacenter, Label: in.Label, Known: KnownDatacenters(in.Nodes, in.Label)}
	}
	sort.Slice(plan.Nodes, func(i, j int) bool { return plan.Nodes[i].Name < plan.Nodes[j].Name })
	for i := range plan.Nodes {
		nodeIdx[plan.Nodes[i].Name] = i
		if !plan.Nodes[i].Ready {
			plan.NotReady = append(plan.NotReady, plan.Nodes[i].Name)
		}
	}
	away := newElsewhere(in, nodeDC)

	rsOwner := map[string]string{}
	for i := range in.ReplicaSets {
		rs := &in.ReplicaSets[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
			rsOwner[rs.Namespace+"/"+rs.Name] = "Deployment/" + ref.Name
		}
	}
	workloadOf := func(p *corev1.Pod) string {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			return ""
		}
		if ref.Kind == "ReplicaSet" {
			if d, ok := rsOwner[p.Namespace+"/"+ref.Name]; ok {
				return d
			}
		}
		return ref.Kind + "/" + ref.Name
	}

	var unmanaged, emptyDir []string
	var evictPods []*corev1.Pod
	for i := range in.Pods {
		p := &in.Pods[i]
		idx, ok := nodeIdx[p.Spec.NodeName]
		if !ok || p.Spec.NodeName == "" {
			continue
		}
		pp := PlanPod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Owner: workloadOf(p), uid: p.UID, deletion: p.DeletionTimestamp}
		if p.DeletionGracePeriodSeconds != nil {
			pp.grace = *p.DeletionGracePeriodSeconds
		}
		switch {
		case policy.IsMirrorPod(p):
			pp.Reason = skipMirror
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			pp.Reason = skipFinished
		case strings.HasPrefix(pp.Owner, "DaemonSet/"):
			pp.Reason = skipDaemonSet
		}
		if pp.Reason != "" {
			plan.Skipped = append(plan.Skipped, pp)
			plan.Nodes[idx].Skipped++
			continue
		}
		if in.PodSelector != nil && !in.PodSelector.Matches(labels.Set(p.Labels)) {
			plan.Unselected++
			continue
		}
		pp.NotReadyNode = !plan.Nodes[idx].Ready
		if pp.Owner == "" && !in.Force {
			unmanaged = append(unmanaged, podKey(p))
			pp.Blocked = true
		}
		if hasEmptyDir(p) && !in.DeleteEmptyDirData {
			emptyDir = append(emptyDir, podKey(p))
			pp.Blocked = true
		}
		if u := away.usableFor(p); len(u.nodes) == 0 {
			pp.Pinned, pp.PinnedBy = true, u.reason
		}
		plan.Evict = append(plan.Evict, pp)
		evictPods = append(evictPods, p)
		plan.Nodes[idx].Evict++
	}
	sortPlanPods(plan.Evict)
	sortPlanPods(plan.Skipped)
	if len(unmanaged) > 0 {
		sort.Strings(unmanaged)
		plan.Blockers = append(plan.Blockers, Blocker{
			Kind: blockUnmanaged, Object: strings.Join(unmanaged, ", "), Pods: unmanaged, Fatal: true,
			Message: fmt.Sprintf("%d pod(s) have no controller: evicted, they are gone for good", len(unmanaged)),
			Remedy:  "pass --force to evict them anyway, or delete or re-create them under a controller",
		})
	}
	if len(emptyDir) > 0 {
		sort.Strings(emptyDir)
		plan.Blockers = append(plan.Blockers, Blocker{
			Kind: blockEmptyDir, Object: strings.Join(emptyDir, ", "), Pods: emptyDir, Fatal: true,
			Message: fmt.Sprintf("%d pod(s) use emptyDir volumes whose data is deleted with the pod", len(emptyDir)),
			Remedy:  "pass --delete-emptydir-data to evict them anyway",
		})
	}

	pinned := map[*corev1.Pod]string{}
	byKey := make(map[string]*corev1.Pod, len(evictPods))
	for _, p := range evictPods {
		byKey[podKey(p)] = p
		if u := away.usableFor(p); len(u.nodes) == 0 {
			pinned[p] = u.reason
		}
	}
	plan.addPDBs(in, evictPods, pinned, workloadOf)
	plan.Capacity = away.computeCapacity(plan, byKey)
	plan.NotReadyMessage = notReadyMessage(in, plan)
	plan.Quorum = computeQuorum(in, nodeDC)

	for _, b := range plan.Blockers {
		if b.Fatal {
			plan.Refused = true
			plan.Reasons = append(plan.Reasons, b.Message+": "+b.Remedy)
		}
	}
	if !plan.Quorum.Survives && !in.AllowQuorumLoss {
		plan.Refused = true
		plan.Reasons = append(plan.Reasons, plan.Quorum.losses...)
		plan.Reasons = append(plan.Reasons, "pass --allow-quorum-loss to drain anyway")
	}
	return plan, nil
}

func sortPlanPods(ps []PlanPod) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Node != ps[j].Node {
			return ps[i].Node < ps[j].Node
		}
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
}

func hasEmptyDir(p *corev1.Pod) bool {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].EmptyDir != nil {
			return true
		}
	}
	return false
}

func (plan *Plan) addPDBs(in PlanInput, evictPods []*corev1.Pod, pinnedPods map[*corev1.Pod]string, workloadOf func(*corev1.Pod) string) {
	type pinnedAgg struct {
		pods   int
		pdbs   map[string]bool
		block  bool
		reason string
	}
	pinned := map[string]*pinnedAgg{}
	for _, p := range evictPods {
		reason, ok := pinnedPods[p]
		if !ok {
			continue
		}
		w := workloadOf(p)
		if w == "" {
			w = "Pod/" + p.Name
		}
		w = strings.Replace(w, "/", "/"+p.Namespace+"/", 1)
		if pinned[w] == nil {
			pinned[w] = &pinnedAgg{pdbs: map[string]bool{}, reason: reason}
		}
		pinned[w].pods++
	}

	blockedPods := map[string]bool{}
	allPods := make([]*corev1.Pod, len(in.Pods))
	for i := range in.Pods {
		allPods[i] = &in.Pods[i]
	}
	evicted := map[*corev1.Pod]bool{}
	for _, p := range evictPods {
		evicted[p] = true
	}
	pdbs := make([]*policyv1.PodDisruptionBudget, len(in.PDBs))
	for i := range in.PDBs {
		pdbs[i] = &in.PDBs[i]
	}
	plan.PDBs = cluster.PDBVerdicts(pdbs, allPods, func(p *corev1.Pod) bool { return evicted[p] })
	for _, pdb := range pdbs {
		b := policy.PDBBudgetOf(pdb, allPods)
		var covered, coveredPinned []*corev1.Pod
		for _, p := range evictPods {
			if b.Covers(p) {
				covered = append(covered, p)
				if _, ok := pinnedPods[p]; ok {
					coveredPinned = append(coveredPinned, p)
				}
			}
		}
		if len(covered) == 0 {
			continue
		}
		name := pdb.Namespace + "/" + pdb.Name
		for _, p := range covered {
			plan.pdbsOf[podKey(p)] = append(plan.pdbsOf[podKey(p)], name)
		}
		expected, desired := b.Expected, b.DesiredHealthy
		budget := b.AllowedAtFullHealth()
		var blocked []*corev1.Pod
		var msg string
		switch {
		case budget <= 0:
			blocked = covered
			msg = fmt.Sprintf("PDB %s needs %d healthy of %d pods: it never allows a disruption, so eviction of its %d pod(s) here blocks forever", name, desired, expected, len(covered))
		case len(coveredPinned) > budget:
			blocked = coveredPinned[budget:]
			msg = fmt.Sprintf("PDB %s allows %d of %d pods down, but %d of them are pinned to %s and cannot come back elsewhere: %d eviction(s) block forever", name, budget, expected, len(coveredPinned), in.Datacenter, len(coveredPinned)-budget)
		default:
			continue
		}
		keys := make([]string, 0, len(blocked))
		for _, p := range blocked {
			keys = append(keys, podKey(p))
			blockedPods[podKey(p)] = true
		}
		sort.Strings(keys)
		plan.Blockers = append(plan.Blockers, Blocker{
			Kind: blockPDB, Object: name, Pods: keys, Message: msg,
			Remedy: fmt.Sprintf("relax PDB %s (lower minAvailable or raise maxUnavailable), or move the workload out of %s before draining; the drain evicts everything else and stops at --timeout", name, in.Datacenter),
		})
		for _, p := range coveredPinned {
			w := workloadOf(p)
			if w == "" {
				w = "Pod/" + p.Name
			}
			w = strings.Replace(w, "/", "/"+p.Namespace+"/", 1)
			agg := pinned[w]
			agg.pdbs[name] = true
			if len(blocked) > 0 {
				agg.block = true
			}
		}
	}
	for i := range plan.Evict {
		if blockedPods[plan.Evict[i].Namespace+"/"+plan.Evict[i].Name] {
			plan.Evict[i].Blocked = true
		}
	}
	for w, agg := range pinned {
		ps := PinnedSet{Workload: w, Pods: agg.pods, BlocksForever: agg.block, Reason: agg.reason}
		for n := range agg.pdbs {
			ps.PDBs = append(ps.PDBs, n)
		}
		sort.Strings(ps.PDBs)
		ps.Message = fmt.Sprintf("%s is pinned to %s (%s): its %d pod(s) here go Pending when evicted", w, in.Datacenter, agg.reason, agg.pods)
		if agg.block {
			ps.Message += fmt.Sprintf(", and PDB %s blocks their eviction forever", strings.Join(ps.PDBs, ", "))
		}
		plan.Pinned = append(plan.Pinned, ps)
	}
	sort.Slice(plan.Pinned, func(i, j int) bool { return plan.Pinned[i].Workload < plan.Pinned[j].Workload })
	sort.Slice(plan.Blockers, func(i, j int) bool {
		if plan.Blockers[i].Kind != plan.Blockers[j].Kind {
			return plan.Blockers[i].Kind < plan.Blockers[j].Kind
		}
		return plan.Blockers[i].Object < plan.Blockers[j].Object
	})
}

// podRequests returns the effective requests of a pod: the sum over its
// containers, at least the largest init container, plus overhead.
func podRequests(p *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for name, q := range c.Resources.Requests {
			v := out[name]
			v.Add(q)
			out[name] = v
		}
	}
	for _, c := range p.Spec.InitContainers {
		for name, q := range c.Resources.Requests {
			if v, ok := out[name]; !ok || q.Cmp(v) > 0 {
				out[name] = q.DeepCopy()
			}
		}
	}
	for name, q := range p.Spec.Overhead {
		v := out[name]
		v.Add(q)
		out[name] = v
	}
	return out
}

func computeQuorum(in PlanInput, nodeDC map[string]string) QuorumPlan {
	nodes := make([]*corev1.Node, len(in.Nodes))
	nodeReady := map[string]bool{}
	for i := range in.Nodes {
		nodes[i] = &in.Nodes[i]
		nodeReady[in.Nodes[i].Name] = policy.NodeReady(&in.Nodes[i])
	}
	etcdPods, apiPods := in.controlPlanePods()
	at := cluster.Placement{Nodes: nodes, EtcdPods: etcdPods, MemberDatacenters: in.MemberDatacenters, MemberSources: in.MemberSources, DatacenterOf: func(name string) string {
		dc, ok := nodeDC[name]
		switch {
		case !ok:
			return ""
		case dc == "":
			return cluster.Unlabeled
		}
		return dc
	}}
	// The same members, datacenters and health as kubectl dc status.
	etcd := cluster.BuildEtcd(in.Etcd, at)
	voters := cluster.Voters(etcd.Members)
	q := QuorumPlan{Survives: true, Messages: []string{}}
	dc := in.Datacenter

	q.Etcd.Source = etcd.Source
	if len(voters) == 0 {
		q.Etcd.Source = "none"
	}
	n := policy.VotingMembers(voters)
	q.Etcd.Total = n
	q.Etcd.Quorum = policy.Quorum(n)
	for _, v := range voters {
		if v.Learner {
			continue
		}
		if v.Datacenter == dc {
			q.Etcd.InDatacenter++
			q.Etcd.Nodes = append(q.Etcd.Nodes, v.Node)
		} else if v.Healthy {
			q.Etcd.Remaining++
		}
	}
	sort.Strings(q.Etcd.Nodes)
	q.EtcdSurvives = n > 0 && policy.SurvivesLoss(voters, dc)
	switch {
	case len(in.Kine) > 0:
		q.Etcd.Source = cluster.EtcdSourceKine
		q.judgeDatastore(in, nodes, at.DatacenterOf)
	case n > 0:
		if !q.EtcdSurvives {
			unhealthy := n - q.Etcd.InDatacenter - q.Etcd.Remaining
			extra := ""
			if unhealthy > 0 {
				extra = fmt.Sprintf(" (%d more outside it are unhealthy)", unhealthy)
			}
			q.lose(fmt.Sprintf("%s holds %d of %d etcd voters; without it %d remain%s, quorum is %d: powering it off loses etcd quorum",
				dc, q.Etcd.InDatacenter, n, q.Etcd.Remaining, extra, q.Etcd.Quorum))
		} else {
			q.Messages = append(q.Messages, fmt.Sprintf("%s holds %d of %d etcd voters; without it %d remain, quorum is %d: etcd keeps quorum",
				dc, q.Etcd.InDatacenter, n, q.Etcd.Remaining, q.Etcd.Quorum))
		}
	default:
		q.Messages = append(q.Messages, "no etcd pods found (component=etcd in kube-system): etcd quorum not checked")
	}

	// API servers: as kubectl dc status maps them (the kube-apiserver pods
	// and the kubernetes EndpointSlices), else one per control-plane node,
	// as kubeadm runs them.
	servers := cluster.MapAPIServers(in.APIAddresses, apiPods, at)
	if len(servers) > 0 {
		q.APIServers.Source = "pods"
		for _, a := range servers {
			q.APIServers.Total++
			if a.Datacenter == dc {
				q.APIServers.InDatacenter++
				q.APIServers.Nodes = append(q.APIServers.Nodes, a.Node)
			} else if a.Up && (a.Node == "" || nodeReady[a.Node]) {
				q.APIServers.Remaining++
			}
		}
	} else {
		q.APIServers.Source = "nodes"
		for i := range in.Nodes {
			nd := &in.Nodes[i]
			if !policy.IsControlPlane(nd) {
				continue
			}
			q.APIServers.Total++
			if nodeDC[nd.Name] == dc {
				q.APIServers.InDatacenter++
				q.APIServers.Nodes = append(q.APIServers.Nodes, nd.Name)
			} else if policy.NodeReady(nd) {
				q.APIServers.Remaining++
			}
		}
		if q.APIServers.Total == 0 {
			q.APIServers.Source = "none"
		}
	}
	sort.Strings(q.APIServers.Nodes)
	switch {
	case q.APIServers.Total == 0:
		q.Messages = append(q.Messages, "no API servers found (kube-apiserver pods or control-plane nodes): API server availability not checked")
	case q.APIServers.Remaining == 0:
		q.lose(fmt.Sprintf("%s holds %d of %d API servers; without it none remain healthy: the cluster becomes unreachable", dc, q.APIServers.InDatacenter, q.APIServers.Total))
	default:
		q.Messages = append(q.Messages, fmt.Sprintf("%s holds %d of %d API servers; %d remain", dc, q.APIServers.InDatacenter, q.APIServers.Total, q.APIServers.Remaining))
	}
	q.judgeEndpoint(in, nodes, servers)
	return q
}

// judgeDatastore says whether kine's database stays writable without the
// datacenter, as kubectl dc status's survivesLoss of a kine cluster says
// (policy.DatastoreLossVerdict): a datacenter holding the only primary
// needs a failover first and refuses the drain like a quorum loss.
func (q *QuorumPlan) judgeDatastore(in PlanInput, nodes []*corev1.Node, dcOfNode func(string) string) {
	dc := in.Datacenter
	if in.Database == nil {
		q.Messages = append(q.Messages, "the API servers store in kine; where its database's primary runs is not known: give --datastore-dsn to check that "+dc+" does not hold it")
		return
	}
	servers := append([]policy.DatabaseServer{}, in.Database...)
	cluster.PlaceDatabaseServers(servers, in.DatabaseDatacenters, nodes, dcOfNode)
	v := policy.DatastoreLossVerdict(servers, dc)
	primaries := policy.Primaries(servers)
	switch {
	case !v.Known && len(primaries) == 0:
		q.Messages = append(q.Messages, "kine's database has no reachable primary: whether the datastore survives "+dc+" is not known (kubectl dc status --datastore-dsn says more)")
	case !v.Known && len(primaries) > 1:
		q.Messages = append(q.Messages, fmt.Sprintf("kine's database has %d primaries, a split brain: whether the datastore survives %s is not known (kubectl dc status --datastore-dsn says more)", len(primaries), dc))
	case !v.Known:
		q.Messages = append(q.Messages, "a server of kine's database is in no known datacenter (place it with --datastore-datacenters HOST=DC): whether the datastore survives "+dc+" is not known")
	case v.Writable:
		q.EtcdSurvives = true
		q.Messages = append(q.Messages, fmt.Sprintf("kine's database primary %s is outside %s: the datastore stays writable", primaries[0].Address, dc))
	default:
		then := "no replica is left to promote: the API cannot store anything until it is back"
		if v.Promote != "" {
			then = "promote " + v.Promote + " and repoint kine first"
		}
		q.lose(fmt.Sprintf("kine's database primary %s is in %s: powering it off leaves the API servers no writable datastore; %s", primaries[0].Address, dc, then))
	}
}

// judgeEndpoint says whether the control-plane endpoint survives the
// datacenter, as status --lose does; one that does not refuses the drain
// like a quorum loss.
func (q *QuorumPlan) judgeEndpoint(in PlanInput, nodes []*corev1.Node, servers []cluster.APIServerStatus) {
	if in.Endpoint == nil || in.Endpoint.Address == "" {
		return
	}
	ep := in.Endpoint.Classify(nodes, in.Label, "", servers)
	reach := policy.EndpointReachable(ep, []string{in.Datacenter})
	q.Endpoint = &EndpointPlan{Endpoint: ep, Source: in.Endpoint.Source, Reachable: reach.Reachable, Reason: reach.Reason}
	if reach.Reachable == nil || *reach.Reachable {
		return
	}
	q.lose(fmt.Sprintf("the control-plane endpoint %s (from %s) goes with %s: %s; every kubelet and kubectl that dials it loses the API although API servers remain elsewhere",
		ep.Address, in.Endpoint.Source, in.Datacenter, reach.Reason))
}

// controlPlanePods returns the etcd and kube-apiserver pods: the
// snapshot's, else those of Pods.
func (in PlanInput) controlPlanePods() (etcd, api []*corev1.Pod) {
	if in.EtcdPods != nil || in.APIServerPods != nil {
		return in.EtcdPods, in.APIServerPods
	}
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Namespace != metav1.NamespaceSystem || policy.PodTerminal(p) || p.Spec.NodeName == "" {
			continue
		}
		switch p.Labels["component"] {
		case "etcd":
			etcd = append(etcd, p)
		case "kube-apiserver":
			api = append(api, p)
		}
	}
	return etcd, api
}
