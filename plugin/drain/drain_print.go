package drain

import (
	"context"
	"fmt"
	"io"
	"sort"
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
		fmt.Fprintf(w, "%s\t%t\t%t\t%t\t%d\t%d\n", n.Name, n.Ready, n.Unschedulable, n.ControlPlane, n.Evict, n.Skipped)
	}
	_ = w.Flush()

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
	fmt.Fprintf(out, "Drain of %s: %s in %.1fs: %d evicted, %d skipped, %d blocked\n",
		s.Datacenter, s.Result, s.ElapsedSeconds, s.Evicted, s.Skipped, len(s.Blocked))
	if len(s.Blocked) == 0 {
		return
	}
	w := cmdutil.NewTabWriter(out)
	fmt.Fprintln(w, "NAMESPACE\tPOD\tNODE\tREASON")
	for _, b := range s.Blocked {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Namespace, b.Name, b.Node, b.Reason)
	}
	_ = w.Flush()
}

// progress reports per-node progress and PDB waits on stderr, rate
// limited: a line per changed node at most every interval, a line when a
// node is done, and one line per PDB at most every pdbInterval.
type progress struct {
	mu          sync.Mutex
	out         io.Writer
	interval    time.Duration
	pdbInterval time.Duration
	nodes       map[string]*nodeProgress
	order       []string
	pdbLast     map[string]time.Time
	done        chan struct{}
	stopOnce    sync.Once
	wg          sync.WaitGroup
}

type nodeProgress struct {
	total, evicted, gone int
	changed              bool
}

func newProgress(out io.Writer, plan *Plan) *progress {
	p := &progress{out: out, interval: 2 * time.Second, pdbInterval: 5 * time.Second,
		nodes: map[string]*nodeProgress{}, pdbLast: map[string]time.Time{}, done: make(chan struct{})}
	for _, n := range plan.Nodes {
		p.nodes[n.Name] = &nodeProgress{total: n.Evict}
		p.order = append(p.order, n.Name)
	}
	return p
}

func (p *progress) start(ctx context.Context) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case <-t.C:
				p.flush()
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
		fmt.Fprintf(p.out, "%s: evicted %d/%d, %d remaining\n", name, n.evicted, n.total, n.total-n.gone)
	}
}

func (p *progress) evicted(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.nodes[node]; n != nil {
		n.evicted++
		n.changed = true
	}
}

func (p *progress) gone(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nodes[node]
	if n == nil {
		return
	}
	n.gone++
	n.changed = true
	if n.gone == n.total {
		n.changed = false
		fmt.Fprintf(p.out, "%s: drained, %d pod(s) gone\n", node, n.total)
	}
}

func (p *progress) pdbWait(pdb, pod, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := pdb
	if key == "" {
		key = "(api server throttling)"
	}
	now := time.Now()
	if last, ok := p.pdbLast[key]; ok && now.Sub(last) < p.pdbInterval {
		return
	}
	p.pdbLast[key] = now
	if pdb == "" {
		fmt.Fprintf(p.out, "waiting: the API server throttles evictions (%s): %s\n", pod, message)
		return
	}
	fmt.Fprintf(p.out, "waiting for PDB %s: %s (pod %s)\n", pdb, message, pod)
}
