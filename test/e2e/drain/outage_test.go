package drain

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/drain"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

type drainResult struct {
	Plan    drain.Plan    `json:"plan"`
	Summary drain.Summary `json:"summary"`
}

// setSchedulable cordons or uncordons the workers of dcs as the admin.
func setSchedulable(t *testing.T, c *cluster.Cluster, schedulable bool, dcs ...string) {
	t.Helper()
	for _, dc := range dcs {
		for _, name := range c.Nodes(dc) {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, !schedulable)
			if _, err := c.Client().CoreV1().Nodes().Patch(context.Background(), name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDrainUnderOnePDB drains 200 pods of pod-1 under one PDB of
// maxUnavailable 10% at the default concurrency: concurrent evictions race
// on the PDB (409), and every pod must still be evicted, none counted
// before it was accepted, the drain ending Done long before --timeout, and
// stderr never silent for long while pods wait.
func TestDrainUnderOnePDB(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() { setSchedulable(t, c, true, "pod-2", "pod-3"); uncordon(t, c, "pod-1") })
	// Start with all 200 pods in pod-1; afterwards they may go anywhere.
	setSchedulable(t, c, false, "pod-2", "pod-3")
	const replicas = 200
	create(t, c, ns, replicas, deployment(ns, "bulk", replicas, nil))
	setSchedulable(t, c, true, "pod-2", "pod-3")
	setSchedulable(t, c, true, "pod-1")
	ten := intstr.FromString("10%")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "bulk", Namespace: ns},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &ten, Selector: &metav1.LabelSelector{MatchLabels: labels("bulk")}},
	}
	if _, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "bulk", metav1.GetOptions{})
		return err == nil && p.Status.ExpectedPods == replicas && p.Status.DisruptionsAllowed > 0, nil
	}); err != nil {
		t.Fatalf("PDB never synced: %v", err)
	}
	before := len(podsOn(t, c, ns, "pod-1")["ReplicaSet"])

	// pod-1 holds the control-plane endpoint: --allow-quorum-loss.
	cmd := exec.Command(binary(t), "--kubeconfig", c.Kubeconfig(), "drain", "pod-1", "--allow-quorum-loss", "-o", "json")
	var out syncBuffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var gaps []time.Duration
	last := time.Now()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			now := time.Now()
			gaps = append(gaps, now.Sub(last))
			last = now
			lines = append(lines, sc.Text())
		}
	}()
	<-readDone
	err = cmd.Wait()
	errOut := strings.Join(lines, "\n")
	var got drainResult
	if err != nil || json.Unmarshal([]byte(out.String()), &got) != nil {
		t.Fatalf("drain pod-1 under one PDB: %v\n%s\n%s", err, out.String(), errOut)
	}
	s := got.Summary
	if s.Result != "Done" || len(s.Blocked) != 0 || s.Gone != s.ToEvict || s.Evicted != s.ToEvict || s.ToEvict < before {
		t.Errorf("summary: %s, evicted %d/%d, %d gone, blocked %v; want Done, all %d+ evicted and gone", s.Result, s.Evicted, s.ToEvict, s.Gone, s.Blocked, before)
	}
	if left := podsOn(t, c, ns, "pod-1")["ReplicaSet"]; len(left) != 0 {
		t.Errorf("%d pods of %s still in pod-1", len(left), ns)
	}
	// The default --timeout is 5m: a drain that waited blind would end there.
	if s.ElapsedSeconds > 150 {
		t.Errorf("drain took %.0fs, want it to end with its last eviction, far from --timeout", s.ElapsedSeconds)
	}
	if !strings.Contains(errOut, fmt.Sprintf("total: evicted %d/%d, %d gone, 0 not waited for, 0 remaining", s.Evicted, s.ToEvict, s.Gone)) {
		t.Errorf("progress total does not agree with the summary %+v:\n%s", s, errOut)
	}
	// Stall reports come every 5s: a gap of 25s means stderr fell silent.
	for i, g := range gaps {
		if g > 25*time.Second {
			t.Errorf("stderr silent for %s before %q", g.Round(time.Second), lines[i])
		}
	}
	t.Logf("%d pods drained under one PDB in %.1fs; %d conflict/refusal lines", s.ToEvict, s.ElapsedSeconds, strings.Count(errOut, "waiting for PDB"))
}

// TestDrainDatacenterDown powers pod-3 off and drains it: the plan names
// the NotReady node, the pods are evicted and not waited for, the drain
// ends Done well before --timeout; with --force-delete-unreachable the
// pods are gone, each said so.
func TestDrainDatacenterDown(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	const replicas = 3
	// A grace period: with 0 the API server deletes at once, and no pod
	// would wait for a kubelet.
	edge := deployment(ns, "edge", replicas, map[string]string{c.Label(): "pod-3"})
	thirty := int64(30)
	edge.Spec.Template.Spec.TerminationGracePeriodSeconds = &thirty
	create(t, c, ns, replicas, edge)
	if err := c.DatacenterDown(ctx, "pod-3"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DatacenterUp(ctx, "pod-3"); err != nil {
			t.Errorf("pod-3 up: %v", err)
		}
		uncordon(t, c, "pod-3")
	})
	out, errOut, code := run(t, c, "drain", "pod-3", "--timeout", "5m", "-o", "json")
	var got drainResult
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("drain of powered-off pod-3: exit %d\n%s\n%s", code, out, errOut)
	}
	if !slices.Contains(got.Plan.NotReady, "pod-3-worker-1") || !strings.Contains(got.Plan.NotReadyMessage, "not Ready") {
		t.Errorf("plan: notReady %v, %q; want pod-3-worker-1 named", got.Plan.NotReady, got.Plan.NotReadyMessage)
	}
	notWaited := 0
	for _, p := range got.Summary.NotWaited {
		if p.Namespace == ns {
			notWaited++
		}
	}
	if got.Summary.Result != "Done" || notWaited != replicas || got.Summary.ElapsedSeconds > 150 {
		t.Errorf("summary: %s in %.0fs, %d pods of %s not waited for; want Done well before 5m with %d", got.Summary.Result, got.Summary.ElapsedSeconds, notWaited, ns, replicas)
	}
	if !strings.Contains(errOut, "is not Ready: no kubelet confirms") {
		t.Errorf("stderr does not say why the pods are not waited for:\n%s", errOut)
	}

	list, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var terminating []string
	for _, p := range list.Items {
		if p.Spec.NodeName == "pod-3-worker-1" && p.DeletionTimestamp != nil {
			terminating = append(terminating, p.Name)
		}
	}
	if len(terminating) != replicas {
		t.Fatalf("%d pods of %s terminating on pod-3-worker-1 after the first drain, want %d", len(terminating), ns, replicas)
	}
	out, errOut, code = run(t, c, "drain", "pod-3", "--force-delete-unreachable", "-o", "json")
	if code != 0 {
		t.Fatalf("drain --force-delete-unreachable: exit %d\n%s\n%s", code, out, errOut)
	}
	// Each pod is accounted for once: force-deleted, or already gone when
	// its force deletion came (removed by something else meanwhile).
	if n := strings.Count(errOut, "force-deleted "+ns+"/") + strings.Count(errOut, "already gone: "+ns+"/"); n != replicas {
		t.Errorf("%d force deletions of %s said, want %d:\n%s", n, ns, replicas, errOut)
	}
	for _, name := range terminating {
		if !strings.Contains(errOut, "force-deleted "+ns+"/"+name+" on pod-3-worker-1") && !strings.Contains(errOut, "already gone: "+ns+"/"+name+" on pod-3-worker-1") {
			t.Errorf("stderr does not say what became of %s/%s:\n%s", ns, name, errOut)
		}
	}
	var forced drainResult
	if err := json.Unmarshal([]byte(out), &forced); err != nil || forced.Summary.Result != "Done" || forced.Summary.Evicted != forced.Summary.ToEvict || forced.Summary.Gone != forced.Summary.ToEvict {
		t.Errorf("summary of the force deletions: %+v (%v); want Done, every pod evicted and gone", forced.Summary, err)
	}
	if list, err = c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Spec.NodeName == "pod-3-worker-1" {
			t.Errorf("pod %s still on pod-3-worker-1 (deleting: %v)", p.Name, p.DeletionTimestamp != nil)
		}
	}
}

// TestDrainPinnedBeyondTheLabel: workloads pinned by kubernetes.io/hostname
// or by required affinity on another label are listed as pinned.
func TestDrainPinnedBeyondTheLabel(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	node := "pod-2-worker-1"
	patch := `{"metadata":{"labels":{"example.com/disk":"nvme-` + ns + `"}}}`
	if _, err := c.Client().CoreV1().Nodes().Patch(ctx, node, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.Client().CoreV1().Nodes().Patch(ctx, node, "application/merge-patch+json", []byte(`{"metadata":{"labels":{"example.com/disk":null}}}`), metav1.PatchOptions{})
	})
	byHost := deployment(ns, "by-host", 2, map[string]string{"kubernetes.io/hostname": node})
	byDisk := deployment(ns, "by-disk", 2, nil)
	byDisk.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "example.com/disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"nvme-" + ns}}}}},
	}}}
	free := deployment(ns, "free", 2, nil)
	create(t, c, ns, 6, byHost, byDisk, free)
	out, errOut, code := run(t, c, "drain", "pod-2", "--dry-run", "-o", "json")
	var plan drain.Plan
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("drain pod-2 --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	pinned := map[string]string{}
	for _, p := range plan.Pinned {
		pinned[p.Workload] = p.Reason
	}
	for _, w := range []string{"Deployment/" + ns + "/by-host", "Deployment/" + ns + "/by-disk"} {
		if _, ok := pinned[w]; !ok {
			t.Errorf("%s is not listed as pinned: %v", w, pinned)
		}
	}
	if _, ok := pinned["Deployment/"+ns+"/free"]; ok {
		t.Errorf("free is listed as pinned: %v", pinned)
	}
	if !strings.Contains(pinned["Deployment/"+ns+"/by-host"], "kubernetes.io/hostname="+node) {
		t.Errorf("by-host's reason %q does not name its nodeSelector", pinned["Deployment/"+ns+"/by-host"])
	}
	for _, p := range plan.Evict {
		if p.Namespace == ns && strings.HasPrefix(p.Name, "by-") && !p.Pinned {
			t.Errorf("pod %s not marked pinned", p.Name)
		}
	}
}

// TestDrainParityFlags: kubectl drain's flags change what they name.
func TestDrainParityFlags(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() { uncordon(t, c, "pod-3") })
	keep := deployment(ns, "keep", 2, map[string]string{c.Label(): "pod-3"})
	slow := deployment(ns, "slow", 2, map[string]string{c.Label(): "pod-3"})
	create(t, c, ns, 4, keep, slow)

	// A typo gets a hint; usage errors are exit 2.
	if _, errOut, code := run(t, c, "drain", "pod3", "--dry-run"); code != 2 || !strings.Contains(errOut, "did you mean pod-3?") {
		t.Errorf("drain pod3: exit %d, want 2 with a did-you-mean:\n%s", code, errOut)
	}
	if _, errOut, code := run(t, c, "uncordon", "pod3"); code != 2 || !strings.Contains(errOut, "did you mean pod-3?") {
		t.Errorf("uncordon pod3: exit %d, want 2 with a did-you-mean:\n%s", code, errOut)
	}
	// --dry-run=server and the bare form both change nothing.
	for _, dry := range []string{"--dry-run=server", "--dry-run", "--dry-run=client"} {
		out, errOut, code := run(t, c, "drain", "pod-3", dry, "--ignore-daemonsets", "-o", "json")
		if code != 0 || !strings.Contains(errOut, "--ignore-daemonsets changes nothing") {
			t.Errorf("drain %s --ignore-daemonsets: exit %d, want 0 with the note\n%s\n%s", dry, code, out, errOut)
		}
	}
	if n := podsOn(t, c, ns, "pod-3")["ReplicaSet"]; len(n) != 4 {
		t.Fatalf("dry runs changed pod-3: %d pods left, want 4", len(n))
	}
	// --pod-selector: only slow's pods go; --grace-period: seen on them.
	w, err := c.Client().CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{LabelSelector: "app=slow"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	graces := make(chan int64, 16)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && p.DeletionGracePeriodSeconds != nil {
				graces <- *p.DeletionGracePeriodSeconds
			}
		}
	}()
	out, errOut, code := run(t, c, "drain", "pod-3", "--pod-selector", "app=slow", "--grace-period", "3", "-o", "json")
	if code != 0 {
		t.Fatalf("drain --pod-selector app=slow: exit %d\n%s\n%s", code, out, errOut)
	}
	left := podsOn(t, c, ns, "pod-3")["ReplicaSet"]
	for _, name := range left {
		if strings.HasPrefix(name, "slow-") {
			t.Errorf("%s still in pod-3 after --pod-selector app=slow", name)
		}
	}
	if len(left) != 2 {
		t.Errorf("pod-3 keeps %v, want keep's 2 pods", left)
	}
	select {
	case g := <-graces:
		if g != 3 {
			t.Errorf("deleted pod's grace period %d, want 3 (--grace-period)", g)
		}
	case <-time.After(30 * time.Second):
		t.Error("no deleted slow pod seen with a grace period")
	}
	// --disable-eviction deletes, with a warning.
	_, errOut, code = run(t, c, "drain", "pod-3", "--disable-eviction")
	if code != 0 || !strings.Contains(errOut, "Warning: --disable-eviction deletes pods") {
		t.Errorf("drain --disable-eviction: exit %d\n%s", code, errOut)
	}
	if left := podsOn(t, c, ns, "pod-3")["ReplicaSet"]; len(left) != 0 {
		t.Errorf("pod-3 keeps %v after --disable-eviction", left)
	}
}

// TestDrainReadOnlyUser: a user who may only get and list is told by the
// preflight: --dry-run shows the RBAC blockers and exits 3, the drain
// cordons nothing.
func TestDrainReadOnlyUser(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	create(t, c, ns, 2, deployment(ns, "ro", 2, map[string]string{c.Label(): "pod-3"}))
	user := "dc-readonly-" + ns
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"", "apps", "policy", "discovery.k8s.io", "placement.kubectl-dc.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}
	if _, err := c.Client().RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client().RbacV1().ClusterRoleBindings().Delete(ctx, user, metav1.DeleteOptions{})
		_ = c.Client().RbacV1().ClusterRoles().Delete(ctx, user, metav1.DeleteOptions{})
	})
	out, errOut, code := run(t, c, "--as", user, "drain", "pod-3", "--dry-run")
	if code != drain.ExitDrainRefused || !strings.Contains(out, "RBAC: you may not cordon the datacenter's nodes") || !strings.Contains(out, "create pods/eviction in namespace "+ns) {
		t.Errorf("drain --dry-run as a read-only user: exit %d, want %d with the RBAC blockers\n%s\n%s", code, drain.ExitDrainRefused, out, errOut)
	}
	out, errOut, code = run(t, c, "--as", user, "drain", "pod-3")
	if code != drain.ExitDrainRefused {
		t.Errorf("drain as a read-only user: exit %d, want %d\n%s\n%s", code, drain.ExitDrainRefused, out, errOut)
	}
	for _, name := range c.Nodes("pod-3") {
		n, err := c.Client().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable {
			t.Errorf("node %s cordoned by a refused drain", name)
		}
	}
	if left := podsOn(t, c, ns, "pod-3")["ReplicaSet"]; len(left) != 2 {
		t.Errorf("refused drain changed pod-3: %v left, want 2", left)
	}
}
