package drain

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// elsewhere is the set of nodes an evicted pod could land on: the Ready,
// schedulable nodes outside the drained datacenter, with what their pods
// already use. Whether a pod fits one is decided with the scheduler's own
// helpers (nodeSelector and required node affinity, taints and
// tolerations) and host ports, not only by the datacenter label.
type elsewhere struct {
	dc    string
	nodes []*corev1.Node
	// free is what each node has left after its pods' requests.
	free []freeRes
	// ports are the host ports in use on each node.
	ports []map[hostPort]bool
	// bySig caches the answer per scheduling signature: the pods of one
	// workload share it.
	bySig map[string]*usable
}

type freeRes struct {
	cpu, mem resource.Quantity
	pods     int64
}

type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
}

// usable is where one kind of pod can go.
type usable struct {
	// nodes are indices into elsewhere.nodes.
	nodes []int
	// reason says why there is no node, "" when there is one.
	reason string
}

func newElsewhere(in PlanInput, nodeDC map[string]string) *elsewhere {
	e := &elsewhere{dc: in.Datacenter, bySig: map[string]*usable{}}
	idx := map[string]int{}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if nodeDC[n.Name] == in.Datacenter || !policy.NodeSchedulable(n) || n.DeletionTimestamp != nil {
			continue
		}
		idx[n.Name] = len(e.nodes)
		e.nodes = append(e.nodes, n)
		e.free = append(e.free, freeRes{cpu: n.Status.Allocatable.Cpu().DeepCopy(), mem: n.Status.Allocatable.Memory().DeepCopy(), pods: n.Status.Allocatable.Pods().Value()})
		e.ports = append(e.ports, map[hostPort]bool{})
	}
	for i := range in.Pods {
		p := &in.Pods[i]
		j, ok := idx[p.Spec.NodeName]
		if !ok || policy.PodTerminal(p) {
			continue
		}
		req := podRequests(p)
		e.free[j].cpu.Sub(*req.Cpu())
		e.free[j].mem.Sub(*req.Memory())
		e.free[j].pods--
		for _, hp := range hostPortsOf(p) {
			e.ports[j][hp] = true
		}
	}
	return e
}

func hostPortsOf(p *corev1.Pod) []hostPort {
	var out []hostPort
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.HostPort <= 0 {
					continue
				}
				proto := port.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				ip := port.HostIP
				if ip == "" {
					ip = "0.0.0.0"
				}
				out = append(out, hostPort{protocol: proto, ip: ip, port: port.HostPort})
			}
		}
	}
	return out
}

// portsConflict reports whether a pod wanting want can share a node whose
// pods use used: the same port and protocol conflict when either address
// is the wildcard or both are the same.
func portsConflict(want []hostPort, used map[hostPort]bool) (hostPort, bool) {
	for _, w := range want {
		for u := range used {
			if u.port == w.port && u.protocol == w.protocol && (u.ip == w.ip || u.ip == "0.0.0.0" || w.ip == "0.0.0.0") {
				return w, true
			}
		}
	}
	return hostPort{}, false
}

// signature is what decides where a pod may run, as one string.
func signature(p *corev1.Pod) string {
	var req *corev1.NodeSelector
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		req = a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	data, _ := json.Marshal(struct {
		S map[string]string
		A *corev1.NodeSelector
		T []corev1.Toleration
		P []hostPort
	}{p.Spec.NodeSelector, req, p.Spec.Tolerations, hostPortsOf(p)})
	return string(data)
}

func hardTaint(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// usableFor returns the nodes outside the datacenter the pod could be
// scheduled on, and why there are none.
func (e *elsewhere) usableFor(p *corev1.Pod) *usable {
	sig := signature(p)
	if u, ok := e.bySig[sig]; ok {
		return u
	}
	u := &usable{}
	e.bySig[sig] = u
	if len(e.nodes) == 0 {
		u.reason = "no schedulable node outside " + e.dc
		return u
	}
	affinity := nodeaffinity.GetRequiredNodeAffinity(p)
	want := hostPortsOf(p)
	matched, tolerated := 0, 0
	var taint corev1.Taint
	var port hostPort
	logger := klog.Background()
	for i, n := range e.nodes {
		if ok, err := affinity.Match(n); err != nil || !ok {
			continue
		}
		matched++
		if t, untolerated := corev1helpers.FindMatchingUntoleratedTaint(logger, n.Spec.Taints, p.Spec.Tolerations, hardTaint, false); untolerated {
			taint = t
			continue
		}
		tolerated++
		if hp, conflict := portsConflict(want, e.ports[i]); conflict {
			port = hp
			continue
		}
		u.nodes = append(u.nodes, i)
	}
	switch {
	case len(u.nodes) > 0:
	case matched == 0:
		u.reason = fmt.Sprintf("%s matches no schedulable node outside %s", describeSelection(p), e.dc)
	case tolerated == 0:
		u.reason = fmt.Sprintf("no schedulable node outside %s that %s allows tolerates its taints (%s)", e.dc, describeSelection(p), taint.ToString())
	default:
		u.reason = fmt.Sprintf("host port %d/%s is taken on every node outside %s it could use", port.port, port.protocol, e.dc)
	}
	return u
}

// describeSelection names the pod's nodeSelector and required node
// affinity, briefly.
func describeSelection(p *corev1.Pod) string {
	var parts []string
	if len(p.Spec.NodeSelector) > 0 {
		keys := sortedMapKeys(p.Spec.NodeSelector)
		sel := make([]string, 0, len(keys))
		for _, k := range keys {
			sel = append(sel, k+"="+p.Spec.NodeSelector[k])
		}
		parts = append(parts, "nodeSelector "+strings.Join(sel, ","))
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		var terms []string
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			var reqs []string
			for _, r := range append(append([]corev1.NodeSelectorRequirement{}, t.MatchExpressions...), t.MatchFields...) {
				reqs = append(reqs, fmt.Sprintf("%s %s %s", r.Key, r.Operator, strings.Join(r.Values, ",")))
			}
			terms = append(terms, strings.Join(reqs, " and "))
		}
		parts = append(parts, "required node affinity ("+strings.Join(terms, ") or (")+")")
	}
	if len(parts) == 0 {
		return "the pod"
	}
	return "its " + strings.Join(parts, " and ")
}

// capacityGroup is the pods to evict that share the nodes they can use.
type capacityGroup struct {
	workload string
	u        *usable
	cpu, mem resource.Quantity
	pods     int64
}

// computeCapacity compares what the pods to evict request with what the
// nodes each of them could use have free: in total over every node some
// evicted pod could use, and per workload over its own nodes.
func (e *elsewhere) computeCapacity(plan *Plan, pods map[string]*corev1.Pod) Capacity {
	union := map[int]bool{}
	groups := map[*usable]*capacityGroup{}
	var cpuNeed, memNeed resource.Quantity
	var podsNeed int64
	for _, pp := range plan.Evict {
		p := pods[pp.Namespace+"/"+pp.Name]
		if p == nil || pp.Pinned {
			continue
		}
		u := e.usableFor(p)
		for _, i := range u.nodes {
			union[i] = true
		}
		req := podRequests(p)
		cpuNeed.Add(*req.Cpu())
		memNeed.Add(*req.Memory())
		podsNeed++
		g := groups[u]
		if g == nil {
			g = &capacityGroup{u: u, workload: pp.Owner}
			if g.workload == "" {
				g.workload = "Pod/" + pp.Name
			}
			g.workload = strings.Replace(g.workload, "/", "/"+pp.Namespace+"/", 1)
			groups[u] = g
		}
		g.cpu.Add(*req.Cpu())
		g.mem.Add(*req.Memory())
		g.pods++
	}
	sum := func(nodes []int) (cpu, mem resource.Quantity, n int64) {
		for _, i := range nodes {
			f := e.free[i]
			if f.cpu.Sign() > 0 {
				cpu.Add(f.cpu)
			}
			if f.mem.Sign() > 0 {
				mem.Add(f.mem)
			}
			if f.pods > 0 {
				n += f.pods
			}
		}
		return cpu, mem, n
	}
	all := make([]int, 0, len(union))
	for i := range union {
		all = append(all, i)
	}
	if podsNeed == 0 {
		// Nothing to place: report what the untainted nodes of the other
		// datacenters have.
		all = all[:0]
		for i, n := range e.nodes {
			if !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return hardTaint(&t) }) {
				all = append(all, i)
			}
		}
	}
	cpuFree, memFree, podsFree := sum(all)
	fit := func(need, have resource.Quantity) ResourceFit {
		return ResourceFit{Needed: need.String(), Free: have.String(), Fits: need.Cmp(have) <= 0}
	}
	c := Capacity{
		CPU: fit(cpuNeed, cpuFree), Memory: fit(memNeed, memFree),
		Pods:  fit(*resource.NewQuantity(podsNeed, resource.DecimalSI), *resource.NewQuantity(podsFree, resource.DecimalSI)),
		Nodes: len(all),
	}
	c.Fits = c.CPU.Fits && c.Memory.Fits && c.Pods.Fits
	if len(e.nodes) == 0 && len(plan.Evict) > 0 {
		c.Fits = false
		c.Unfit = append(c.Unfit, "no schedulable node outside "+e.dc+": every evicted pod goes Pending")
	}
	for _, g := range groups {
		if len(g.u.nodes) == len(all) {
			continue
		}
		cpu, mem, n := sum(g.u.nodes)
		if g.cpu.Cmp(cpu) <= 0 && g.mem.Cmp(mem) <= 0 && g.pods <= n {
			continue
		}
		c.Fits = false
		c.Unfit = append(c.Unfit, fmt.Sprintf("%s: %d pod(s) need cpu %s, memory %s; the %d node(s) outside %s they can use have cpu %s, memory %s, %d pod slot(s) free",
			g.workload, g.pods, g.cpu.String(), g.mem.String(), len(g.u.nodes), e.dc, cpu.String(), mem.String(), n))
	}
	sort.Strings(c.Unfit)
	return c
}
