package webhookha_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
)

// clients of the load that runs during the faults: enough to keep every
// replica busy, few enough to leave the 2-core CI machine room.
const faultClients = 30

// background runs the load until stop is called, which returns its result.
func background(t *testing.T, c *cluster.Cluster, ns string) (stop func() *ha.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *ha.Result, 1)
	go func() {
		out <- ha.Load{Client: loadClient(c), Namespace: ns, Clients: faultClients, Enforced: true}.Run(ctx, time.Hour)
	}()
	return func() *ha.Result {
		cancel()
		res := <-out
		t.Log(res.Summary())
		return res
	}
}

// settle lets the load run for d before a fault, so that the fault hits
// requests in flight.
func settle(d time.Duration) { time.Sleep(d) }

func restart(ctx context.Context, t *testing.T, f *ha.Fleet, rs ...*ha.Replica) {
	t.Helper()
	for _, r := range rs {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WaitListed(ctx, len(f.Replicas)); err != nil {
		t.Fatal(err)
	}
}

func wantNoUnexpected(t *testing.T, res *ha.Result, what string) {
	t.Helper()
	if len(res.Samples) == 0 {
		t.Fatalf("%s: the load made no request", what)
	}
	if bad := res.Unexpected(); len(bad) > 0 {
		t.Fatalf("%s: %d of %d creates had an unexpected outcome:\n%s", what, len(bad), len(res.Samples), ha.Describe(bad, 10))
	}
	if len(res.DeleteErrors) > 0 {
		t.Fatalf("%s: %d deletes failed, first: %v", what, len(res.DeleteErrors), res.DeleteErrors[0])
	}
}

// TestReplicaTerminated: a replica stopped the way Kubernetes stops a pod
// (SIGTERM; it fails readiness, answers during --shutdown-delay, then
// exits) costs no request.
func TestReplicaTerminated(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	stop := background(t, c, ns)
	settle(2 * time.Second)
	r := f.Replicas[0]
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitListed(ctx, len(f.Replicas)-1); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.Wait(waitCtx); err != nil {
		t.Fatal(err)
	}
	settle(time.Second)
	res := stop()
	// Back to three replicas before judging: a failure here must not
	// leave the next tests one replica short.
	restart(ctx, t, f, r)
	wantNoUnexpected(t, res, "replica 1 terminated under load")
}

// TestReplicaCrashed: a replica killed outright (SIGKILL) fails only the
// requests sent to it before its endpoint turns unready, every one of
// them on its address or on a connection its death cut; once the Service
// has dropped it nothing fails.
func TestReplicaCrashed(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	stop := background(t, c, ns)
	settle(2 * time.Second)
	r := f.Replicas[1]
	if err := r.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitListed(ctx, len(f.Replicas)-1); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	if err := ha.WaitEnforced(ctx, c.Client(), ns); err != nil {
		t.Fatal(err)
	}
	during := stop()
	addr := r.Host.IP.String()
	for _, s := range during.Unexpected() {
		if !onKilled(s, addr, dropped) {
			t.Errorf("a request failed other than on the killed replica %s: %s", addr, ha.Describe([]ha.Sample{s}, 1))
		}
	}
	t.Logf("while replica 2 was still listed: %d of %d creates failed, all on %s", len(during.Unexpected()), len(during.Samples), addr)

	after := ha.Load{Client: loadClient(c), Namespace: ns, Clients: faultClients, Enforced: true}.Run(ctx, 3*time.Second)
	t.Log("after the Service dropped it: " + after.Summary())
	restart(ctx, t, f, r)
	wantNoUnexpected(t, after, "two replicas left")
}

// onKilled reports whether sample s failed on the killed replica at addr,
// which the Service dropped at dropped: its error names the address (a
// connection refused), or a connection was cut (EOF, reset, broken pipe:
// the API server's error then names only the Service) by a request that
// started while the replica was still listed. A live replica cuts none.
func onKilled(s ha.Sample, addr string, dropped time.Time) bool {
	if s.Err == nil {
		return false
	}
	msg := s.Err.Error()
	if strings.Contains(msg, addr) {
		return true
	}
	cut := strings.HasSuffix(msg, ": EOF") || strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe")
	return cut && s.Start.Before(dropped)
}

// timeoutOf returns the timeoutSeconds of the installed webhook name.
func timeoutOf(ctx context.Context, t *testing.T, f *ha.Fleet, name string) time.Duration {
	t.Helper()
	v, m, err := f.Configurations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range v.Webhooks {
		if w.Name == name {
			return time.Duration(*w.TimeoutSeconds) * time.Second
		}
	}
	for _, w := range m.Webhooks {
		if w.Name == name {
			return time.Duration(*w.TimeoutSeconds) * time.Second
		}
	}
	t.Fatalf("no webhook %s installed", name)
	return 0
}

// TestAllReplicasHung: with every replica frozen and still listed (their
// probes not yet failed), requests wait no longer than the configured
// timeout, then follow each webhook's failure policy: Fail for workloads,
// Ignore for kube-system.
func TestAllReplicasHung(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	timeout := timeoutOf(ctx, t, f, "workloads.placement.kubectl-dc.io")
	// Scheduling, slow disks and a busy machine add to the timeout; the
	// bound is what separates it from the API server's own 10 s and 30 s.
	bound := timeout + 4*time.Second

	f.PauseProbes(true)
	defer f.PauseProbes(false)
	for _, r := range f.Replicas {
		if err := r.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		for _, r := range f.Replicas {
			_ = r.Signal(syscall.SIGCONT)
		}
	}
	defer resume()

	start := time.Now()
	err := ha.DryRunBad(ctx, cs, ns)
	took := time.Since(start)
	t.Logf("workload with every replica hung: %v after %s", err, took.Round(time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Fatalf("failurePolicy Fail: want the request refused with \"failed calling webhook\", got %v", err)
	}
	if took > bound {
		t.Errorf("refused after %s: the webhook's timeoutSeconds is %s", took, timeout)
	}

	pinned := tu.Pod(ns, "pinned").Labels("app", "worker").InDC("pod-1").Pod()
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pinned, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("failurePolicy Fail: a pinned worker pod must be refused while no replica answers, got %v", err)
	}

	start = time.Now()
	sys := tu.Pod("kube-system", "e2e-hung").Labels("app", "recovery").Pod()
	_, err = cs.CoreV1().Pods("kube-system").Create(ctx, sys, metav1.CreateOptions{})
	took = time.Since(start)
	if err != nil {
		t.Fatalf("failurePolicy Ignore: a kube-system pod must be admitted while no replica answers, got %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods("kube-system").Delete(context.Background(), sys.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	t.Logf("kube-system pod with every replica hung: admitted after %s", took.Round(time.Millisecond))
	if took > bound {
		t.Errorf("admitted after %s: the webhook's timeoutSeconds is %s", took, timeout)
	}

	resume()
	f.PauseProbes(false)
	if err := ha.WaitEnforced(ctx, cs, ns); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryNeverBlocked: with every replica down, what brings a cluster
// back is still admitted; when the replicas return, enforcement resumes on
// its own; and the webhook configurations can always be deleted.
// waitNodesScoped waits until the replicas have scoped the nodes webhook's
// labels condition to the policies' label keys, and the workload webhooks
// to the rules' selectors.
func waitNodesScoped(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "dc-webhook", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, w := range v.Webhooks {
			for _, c := range w.MatchConditions {
				if w.Name == "workloads.placement.kubectl-dc.io" && c.Name == "selected-by-a-rule" && c.Expression == "true" {
					return false, nil
				}
				if w.Name == "nodes.placement.kubectl-dc.io" && c.Name == "create-or-labels-change" && !strings.Contains(c.Expression, `"topology.kubernetes.io/zone"`) {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the nodes webhook was never scoped to the policies' label keys: %v", err)
	}
}

func TestRecoveryNeverBlocked(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	down := func() { t.Helper(); killEveryReplica(ctx, t, f) }
	// Made while the webhook answers, changed while it is down.
	worker, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "scaled").Labels("app", "worker").InDC("pod-1").Replicas(2).Deployment(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitNodesScoped(ctx, t, cs)
	down()

	t.Run("scale-down", func(t *testing.T) {
		// An UPDATE that changes no template, no label and no member
		// count up is never sent (update-changes-what-is-judged).
		patch := []byte(`{"spec":{"replicas":0}}`)
		if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, worker.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("scaling a Deployment down with the webhook down: %v", err)
		}
	})
	t.Run("tenant pod no rule selects", func(t *testing.T) {
		// The workload webhooks are scoped to the rules' selectors.
		createPod(ctx, t, cs, ns, "e2e-recovery-unrelated")
	})
	t.Run("node label other than the datacenter's", func(t *testing.T) {
		// The nodes webhook is scoped to the label keys the policies
		// judge; a label outside them is never sent.
		name := c.Nodes("pod-1")[len(c.Nodes("pod-1"))-1]
		set := []byte(`{"metadata":{"labels":{"e2e.kubectl-dc.io/recovery":"true"}}}`)
		if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, set, metav1.PatchOptions{}); err != nil {
			t.Errorf("labelling node %s with the webhook down: %v", name, err)
		}
		t.Cleanup(func() {
			_, _ = cs.CoreV1().Nodes().Patch(context.Background(), name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"e2e.kubectl-dc.io/recovery":null}}}`), metav1.PatchOptions{})
		})
		if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"topology.kubernetes.io/zone":"pod-1"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Logf("re-setting the same datacenter label (no change) is not sent either: %v", err)
		}
		move := []byte(`{"metadata":{"labels":{"topology.kubernetes.io/zone":"pod-2"}}}`)
		if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, move, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("moving node %s to another datacenter with the webhook down: %v, want refused (failurePolicy Fail)", name, err)
		}
	})

	if err := ha.DryRunBad(ctx, cs, ns); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("failurePolicy Fail: a workload must be refused while the webhook is down, got %v", err)
	}
	t.Run("kube-system pod", func(t *testing.T) {
		createPod(ctx, t, cs, "kube-system", "e2e-recovery")
	})
	t.Run("dc-system pod", func(t *testing.T) {
		// The webhook's own namespace: its replicas can always start.
		createPod(ctx, t, cs, ha.Namespace, "e2e-recovery")
	})
	t.Run("lease", func(t *testing.T) {
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-recovery", Namespace: ns},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("e2e"), LeaseDurationSeconds: ptr.To[int32](10)},
		}
		got, err := cs.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a Lease with the webhook down: %v", err)
		}
		got.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if _, err := cs.CoordinationV1().Leases(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("renewing a Lease with the webhook down: %v", err)
		}
	})
	t.Run("node status", func(t *testing.T) {
		name := c.Nodes("pod-1")[len(c.Nodes("pod-1"))-1]
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
			Type: "E2ERecovery", Status: corev1.ConditionTrue, Reason: "WebhookDown", LastHeartbeatTime: metav1.Now(),
		})
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating node %s's status with the webhook down: %v", name, err)
		}
	})

	restart(ctx, t, f, f.Replicas...)
	if err := ha.WaitEnforced(ctx, cs, ns); err != nil {
		t.Fatalf("enforcement did not resume on its own: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "pinned").Labels("app", "worker").InDC("pod-2").Deployment(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pinned worker must be admitted again: %v", err)
	}

	t.Run("configurations deletable", func(t *testing.T) {
		down()
		if err := f.Uninstall(ctx); err != nil {
			t.Fatalf("deleting the webhook configurations with the webhook down: %v", err)
		}
		if err := ha.DryRunBad(ctx, cs, ns); err != nil {
			t.Fatalf("with the configurations deleted nothing calls the webhook, got %v", err)
		}
		restart(ctx, t, f, f.Replicas...)
		if err := f.Install(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ha.WaitEnforced(ctx, cs, ns); err != nil {
			t.Fatal(err)
		}
	})
}

// killEveryReplica kills every replica and waits until the Service lists
// none.
func killEveryReplica(ctx context.Context, t *testing.T, f *ha.Fleet) {
	t.Helper()
	for _, r := range f.Replicas {
		if err := r.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WaitListed(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

func createPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	pod := tu.Pod(ns, name).Labels("app", "recovery").Pod()
	// dc-system enforces the restricted Pod Security Standard.
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s with the webhook down: %v", ns, name, err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
}

// TestCertRotationUnderLoad: a new CA and serving certificates, rolled out
// while the load runs, cost no request.
func TestCertRotationUnderLoad(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	old := f.CA()
	stop := background(t, c, ns)
	settle(2 * time.Second)
	start := time.Now()
	if err := f.RotateCerts(ctx, 1); err != nil {
		stop()
		t.Fatal(err)
	}
	t.Logf("rotation took %s", time.Since(start).Round(time.Millisecond))
	settle(2 * time.Second)
	res := stop()
	wantNoUnexpected(t, res, "certificate rotation")
	if string(f.CA()) == string(old) {
		t.Fatal("the CA did not change")
	}
	if err := ha.WaitEnforced(ctx, c.Client(), ns); err != nil {
		t.Fatal(err)
	}
}

// probePolicy adds a policy whose rule only the pods of app select, so
// that a replica denying such a pod proves its caches saw the change.
func probePolicy(ctx context.Context, t *testing.T, c *cluster.Cluster, name, app string) {
	t.Helper()
	createPolicy(ctx, t, c, tu.Policy(name).Datacenters("pod-1", "pod-2", "pod-3").Pinned(tu.PinnedRule("pinned").In("app", app)).Obj())
}

// createPolicy creates the PlacementPolicy p for the test and deletes it
// when the test ends.
func createPolicy(ctx context.Context, t *testing.T, c *cluster.Cluster, p client.Object) {
	t.Helper()
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, p); err != nil {
		t.Fatalf("creating policy %s: %v", p.GetName(), err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), p) })
}

// TestAPIServerRestart: every API server stops and comes back; the
// replicas reconnect without restarting, and their caches follow changes
// made afterwards.
func TestAPIServerRestart(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	pids := map[int]int{}
	for i, r := range f.Replicas {
		pids[i] = r.Pid()
	}
	if err := c.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	// Every watch breaks as the servers die. A short outage keeps the
	// informers' relist backoff (0.8 s doubling, with jitter) short too:
	// the longer the API is gone, the longer a replica waits after it is
	// back before it sees a change.
	settle(time.Second)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	began := time.Now()
	if err := c.StartAPIServer(startCtx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API servers ready again after %s", time.Since(began).Round(time.Millisecond))
	probePolicy(ctx, t, c, "e2e-ha-restart", "ha-restart")
	began = time.Now()
	everyReplicaDecides(ctx, t, f, tu.Pod(ns, "after-restart").Labels("app", "ha-restart").Pod(), false)
	t.Logf("every replica enforced the new policy %s after it was created", time.Since(began).Round(time.Millisecond))
	everyReplicaDecides(ctx, t, f, tu.Pod(ns, "after-restart-pinned").Labels("app", "ha-restart").InDC("pod-3").Pod(), true)
	for i, r := range f.Replicas {
		if r.Pid() != pids[i] {
			t.Errorf("replica %d restarted (pid %d, was %d): it must reconnect on its own", i+1, r.Pid(), pids[i])
		}
	}
	if err := ha.WaitEnforced(ctx, c.Client(), ns); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdMemberLoss: one of three etcd members crashes under load; the
// webhook answers every request it gets and its caches follow a change
// made while the member is down.
func TestEtcdMemberLoss(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	member := c.Members()[0].Name
	stop := background(t, c, ns)
	settle(2 * time.Second)
	if err := c.StopMember(member); err != nil {
		stop()
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = c.StartMember(member)
		}
	}()
	probePolicy(ctx, t, c, "e2e-ha-etcd", "ha-etcd")
	everyReplicaDecides(ctx, t, f, tu.Pod(ns, "member-down").Labels("app", "ha-etcd").Pod(), false)
	settle(2 * time.Second)
	res := stop()
	for _, s := range res.Unexpected() {
		if s.Err != nil && strings.Contains(s.Err.Error(), "failed calling webhook") {
			t.Errorf("the webhook lost an answer with etcd member %s down: %s", member, ha.Describe([]ha.Sample{s}, 1))
		}
	}
	t.Logf("with etcd member %s down: %d of %d creates unexpected (the API server's, not the webhook's):\n%s", member, len(res.Unexpected()), len(res.Samples), ha.Describe(res.Unexpected(), 5))
	for i, err := range res.DeleteErrors {
		if i < 3 {
			t.Logf("failed delete: %v", err)
		}
	}
	if err := c.StartMember(member); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if err := ha.WaitEnforced(ctx, c.Client(), ns); err != nil {
		t.Fatal(err)
	}
}
