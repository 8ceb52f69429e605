package drain

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// printPlan writes the plan for people.
func printPlan(out io.Writer, plan *Plan) {
	fmt.Fprintf(out, "Drain plan for datacenter %s (label %s)\n\n", plan.Datacenter, plan.Label)
	w := cmdutil.NewTabWriter(out)
	fmt.Fprintln(w, "NODE\tREADY\tCORDONED\tCONTROL-PLANE\tEVICT\tSKIP")
	for _, n := range plan.Nodes {
		fmt.Fprintf(w, "%s\t%s\t%t\t%t\t%d\t%d\n", n.Name, cmdutil.Dash(n.Condition), n.Unschedulable, n.ControlPlane, n.Evict, n.Skipped)
	}
	_ = w.Flush()
	if plan.NotReadyMessage != "" {
		fmt.Fprintf(out, "\nNot Ready: %s\n", plan.NotReadyMessage)
	}
	if plan.Mode == modeDelete {
		fmt.Fprintf(out, "\nPods are DELETED, not evicted (--disable-eviction): PodDisruptionBudgets are not honoured.\n")
	}
	if plan.Unselected > 0 {
		fmt.Fprintf(out, "\n%d pod(s) of the datacenter do not match --pod-selector and are left alone.\n", plan.Unselected)
	}

	byOwner := map[string]int{}
	for _, p := range plan.Evict {
		o := p.Owner
		if o == "" {
			o = "(no controller)"
		}
		byOwner[p.Namespace+"\t"+o]++
	}
	fmt.Fprintf(out, "\nEvict %d pod(s):\n", len(plan.Evict))
	if len(byOwner) > 0 {
		w = cmdutil.NewTabWriter(out)
		fmt.Fprintln(w, "  NAMESPACE\tWORKLOAD\tPODS")
		for _, k := range sortedMapKeys(byOwner) {
			fmt.Fprintf(w, "  %s\t%d\n", k, byOwner[k])
		}
		_ = w.Flush()
	}
	fmt.Fprintf(out, "\nSkip %d pod(s), which keep running until the machines go down:\n", len(plan.Skipped))
	for _, p := range plan.Skipped {
		fmt.Fprintf(out, "  %s/%s on %s: %s\n", p.Namespace, p.Name, p.Node, p.Reason)
	}
	if len(plan.Blockers) > 0 {
		fmt.Fprintf(out, "\nBlockers:\n")
		for _, b := range plan.Blockers {
			if b.Kind == blockForbidden {
				fmt.Fprintf(out, "  RBAC: %s\n    remedy: %s\n", b.Message, b.Remedy)
				continue
			}
			fmt.Fprintf(out, "  %s %s: %s\n    remedy: %s\n", b.Kind, b.Object, b.Message, b.Remedy)
		}
	}
	if len(plan.Pinned) > 0 {
		fmt.Fprintf(out, "\nWorkloads pinned to %s:\n", plan.Datacenter)
		for _, p := range plan.Pinned {
			fmt.Fprintf(out, "  %s\n", p.Message)
		}
	}
	c := plan.Capacity
	verdict := "fits"
	if !c.Fits {
		verdict = "DOES NOT FIT: evicted pods may stay Pending"
	}
	fmt.Fprintf(out, "\nCapacity in the other datacenters (%d schedulable node(s)): %s\n", c.Nodes, verdict)
	fmt.Fprintf(out, "  cpu %s needed, %s free; memory %s needed, %s free; pods %s needed, %s free\n",
		c.CPU.Needed, c.CPU.Free, c.Memory.Needed, c.Memory.Free, c.Pods.Needed, c.Pods.Free)
	for _, u := range c.Unfit {
		fmt.Fprintf(out, "  %s\n", u)
	}
	fmt.Fprintf(out, "\nPowering %s off:\n", plan.Datacenter)
	for _, m := range plan.Quorum.Messages {
		fmt.Fprintf(out, "  %s\n", m)
	}
	if plan.Refused {
		fmt.Fprintf(out, "\nREFUSED:\n")
		for _, r := range plan.Reasons {
			fmt.Fprintf(out, "  %s\n", r)
		}
	}
	fmt.Fprintln(out)
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// printSummary writes the outcome for people.
func printSummary(out io.Writer, s *Summary) {
	fmt.Fprintf(out, "Drain of %s: %s in %.1fs: evicted %d/%d, %d gone, %d not waited for, %d remaining; %d skipped\n",
		s.Datacenter, s.Result, s.ElapsedSeconds, s.Evicted, s.ToEvict, s.Gone, len(s.NotWaited), len(s.Blocked), s.Skipped)
	if len(s.Blocked)+len(s.NotWaited) > 0 {
		w := cmdutil.NewTabWriter(out)
		fmt.Fprintln(w, "NAMESPACE\tPOD\tNODE\tSTATE\tREASON")
		for _, b := range s.NotWaited {
			fmt.Fprintf(w, "%s\t%s\t%s\tnot waited for\t%s\n", b.Namespace, b.Name, b.Node, b.Reason)
		}
		for _, b := range s.Blocked {
			fmt.Fprintf(w, "%s\t%s\t%s\tremaining\t%s\n", b.Namespace, b.Name, b.Node, b.Reason)
		}
		_ = w.Flush()
	}
	if len(s.LeftCordoned) > 0 {
		fmt.Fprintf(out, "Left cordoned: %s; undo with: %s\n", strings.Join(s.LeftCordoned, ", "), s.Undo)
	}
}

// Pod states, as progress tracks them.
const (
	stateQueued    = "queued"
	stateRefused   = "refused"
	stateEvicted   = "evicted"
	stateGone      = "gone"
	stateGaveUp    = "gaveUp"
	stateNotWaited = "notWaited"
)

// podState is where one pod to evict stands, and since when.
type podState struct {
	t     evictTarget
	state string
	// why is what the pod waits on (refused, gaveUp, notWaited).
	why   string
	since time.Time
}

// progress reports on stderr: a line per changed node at most every
// interval, a line when a node is done, one line per PDB refusal at most
// every pdbInterval, and every stallEvery, for the pods whose state has
// not changed for that long, what each of them waits on. The summary's
// counts are taken from the same states, so both always agree.
type progress struct {
	mu          sync.Mutex
	out         io.Writer
	interval    time.Duration
	pdbInterval time.Duration
	stallEvery  time.Duration
	concurrency int
	now         func() time.Time
	started     time.Time
	nodes       map[string]*nodeProgress
	order       []string
	pods        map[string]*podState
	podOrder    []string
	pdbLast     map[string]time.Time
	done        chan struct{}
	stopOnce    sync.Once
	wg          sync.WaitGroup
}

type nodeProgress struct {
	total, evicted, gone, notWaited int
	changed                         bool
}

func newProgress(out io.Writer, plan *Plan, targets []evictTarget) *progress {
	p := &progress{out: out, interval: 2 * time.Second, pdbInterval: 5 * time.Second, stallEvery: 5 * time.Second, now: time.Now,
		nodes: map[string]*nodeProgress{}, pods: map[string]*podState{}, pdbLast: map[string]time.Time{}, done: make(chan struct{})}
	p.started = p.now()
	for _, n := range plan.Nodes {
		p.nodes[n.Name] = &nodeProgress{}
		p.order = append(p.order, n.Name)
	}
	for _, t := range targets {
		if n := p.nodes[t.Node]; n != nil {
			n.total++
		}
		p.pods[t.key()] = &podState{t: t, state: stateQueued, since: p.started}
		p.podOrder = append(p.podOrder, t.key())
	}
	return p
}

func (p *progress) start(ctx context.Context) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		stall := time.NewTicker(p.stallEvery)
		defer stall.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case <-t.C:
				p.flush()
			case <-stall.C:
				p.reportStalled()
			}
		}
	}()
}

func (p *progress) stop() {
	p.stopOnce.Do(func() {
		close(p.done)
		p.wg.Wait()
		p.flush()
	})
}

func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range p.order {
		n := p.nodes[name]
		if !n.changed {
			continue
		}
		n.changed = false
		fmt.Fprintf(p.out, "%s: %s\n", name, n.line())
	}
}

func (n *nodeProgress) line() string {
	s := fmt.Sprintf("evicted %d/%d, %d gone", n.evicted, n.total, n.gone)
	if n.notWaited > 0 {
		s += fmt.Sprintf(", %d not waited for", n.notWaited)
	}
	return s + fmt.Sprintf(", %d remaining", n.total-n.gone-n.notWaited)
}

// set moves a pod to state; it returns the old state, "" for an unknown
// pod.
func (p *progress) set(t evictTarget, state, why string) string {
	ps := p.pods[t.key()]
	if ps == nil {
		return ""
	}
	old := ps.state
	if old == stateGone || old == stateNotWaited {
		return old
	}
	if old != state || ps.why != why {
		ps.since = p.now()
	}
	ps.state, ps.why = state, why
	return old
}

func (p *progress) evicted(t evictTarget) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.set(t, stateEvicted, ""); old == "" || old == stateEvicted || old == stateGone || old == stateNotWaited {
		return
	}
	if n := p.nodes[t.Node]; n != nil {
		n.evicted++
		n.changed = true
	}
}

func (p *progress) gone(t evictTarget) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set(t, stateGone, "")
	if old == "" || old == stateGone || old == stateNotWaited {
		return
	}
	n := p.nodes[t.Node]
	if n == nil {
		return
	}
	if old != stateEvicted {
		// Gone before its eviction was seen accepted: deleted by someone
		// else, or accepted while the answer was lost.
		n.evicted++
	}
	n.gone++
	n.changed = true
	if n.gone == n.total {
		n.changed = false
		fmt.Fprintf(p.out, "%s: drained, %d pod(s) gone\n", t.Node, n.total)
	}
}

func (p *progress) notWaited(t evictTarget, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set(t, stateNotWaited, why)
	if old == "" || old == stateGone || old == stateNotWaited {
		return
	}
	if n := p.nodes[t.Node]; n != nil {
		// A pod terminating since before this run is not waited for
		// without an eviction of its own: it is not counted as evicted.
		n.notWaited++
		n.changed = true
	}
	fmt.Fprintf(p.out, "not waiting for %s: %s\n", t.key(), why)
}

func (p *progress) gaveUp(t evictTarget, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set(t, stateGaveUp, why)
}

// forced says, per pod, that it was force-deleted; lost is the error of
// an earlier attempt whose answer was lost, after which the pod was found
// gone.
func (p *progress) forced(t evictTarget, lost string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	how := "node not Ready, grace period 0"
	if lost != "" {
		how += "; the answer was lost (" + lost + ") and the retry found the pod gone"
	}
	fmt.Fprintf(p.out, "force-deleted %s on %s (%s): its containers may still run if the node is only cut off\n", t.key(), t.Node, how)
}

// alreadyGone says, per pod, that its eviction or deletion found it gone
// or replaced: the drain counts it, and says it did not remove it.
func (p *progress) alreadyGone(t evictTarget, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "already gone: %s on %s: %s\n", t.key(), t.Node, why)
}

func (p *progress) pdbWait(t evictTarget, pdb, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	why := message
	if pdb != "" {
		why = "PDB " + pdb + ": " + message
	}
	p.set(t, stateRefused, why)
	key := pdb
	if key == "" {
		key = "(api server throttling)"
	}
	now := p.now()
	if last, ok := p.pdbLast[key]; ok && now.Sub(last) < p.pdbInterval {
		return
	}
	p.pdbLast[key] = now
	if pdb == "" {
		fmt.Fprintf(p.out, "waiting: the API server throttles evictions (%s): %s\n", t.key(), message)
		return
	}
	fmt.Fprintf(p.out, "waiting for PDB %s: %s (pod %s)\n", pdb, message, t.key())
}

// maxNamed bounds the pods named per line of a stall report.
const maxNamed = 5

// reportStalled writes, for the pods whose state has not changed for
// stallEvery, what they wait on, one line per cause.
func (p *progress) reportStalled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	byWhy := map[string][]string{}
	stalled := 0
	for _, k := range p.podOrder {
		ps := p.pods[k]
		if ps.state == stateGone || ps.state == stateNotWaited || now.Sub(ps.since) < p.stallEvery {
			continue
		}
		var why string
		switch ps.state {
		case stateQueued:
			why = fmt.Sprintf("not evicted yet: waiting for a free eviction slot (--concurrency %d)", p.concurrency)
		case stateEvicted:
			why = "evicted, waiting for the pod to terminate"
			if ps.t.NotReady {
				why += " (node " + ps.t.Node + " is not Ready: no kubelet confirms it)"
			}
		case stateGaveUp:
			why = "eviction refused for good: " + ps.why
		default:
			why = "eviction refused, retrying: " + ps.why
		}
		byWhy[why] = append(byWhy[why], k)
		stalled++
	}
	if stalled == 0 {
		return
	}
	left := 0
	for _, ps := range p.pods {
		if ps.state != stateGone && ps.state != stateNotWaited {
			left++
		}
	}
	fmt.Fprintf(p.out, "after %s: %d of %d pod(s) left, %d unchanged for %s or more:\n", now.Sub(p.started).Round(time.Second), left, len(p.pods), stalled, p.stallEvery)
	for _, why := range sortedMapKeys(byWhy) {
		pods := byWhy[why]
		named := pods
		more := ""
		if len(named) > maxNamed {
			named, more = named[:maxNamed], fmt.Sprintf(" and %d more", len(pods)-maxNamed)
		}
		fmt.Fprintf(p.out, "  %d pod(s) %s: %s%s\n", len(pods), why, strings.Join(named, ", "), more)
	}
}

// counts returns how many pods were evicted (the API accepted the
// eviction or deletion), are gone, and were not waited for.
func (p *progress) counts() (evicted, gone, notWaited int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nodes {
		evicted += n.evicted
		gone += n.gone
		notWaited += n.notWaited
	}
	return evicted, gone, notWaited
}

// states returns every pod's state.
func (p *progress) states() map[string]podState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]podState, len(p.pods))
	for k, ps := range p.pods {
		out[k] = *ps
	}
	return out
}
