package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

const dcLabel = "placement.kubectl-dc.io/datacenter"

var (
	admin   = authenticationv1.UserInfo{Username: "admin", Groups: []string{"system:masters", "system:authenticated"}}
	kubelet = authenticationv1.UserInfo{Username: "system:node:pod-1-1", Groups: []string{"system:nodes", "system:authenticated"}}
)

// macstadium is the example policy with the pinned rule's action set.
func macstadium(pinned v1alpha1.Action) v1alpha1.PlacementPolicy {
	return tu.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(tu.PinnedRule("per-datacenter-services").In("app", "worker", "jupiter-brain").FromLabel(dcLabel).Action(pinned)).
		Spread(tu.Etcd()).Value()
}

// fixture is a Handler over a static three-datacenter cluster (two nodes per
// datacenter, one etcd member in pod-1 and one in pod-2) and its metrics.
type fixture struct {
	h   *Handler
	reg *prometheus.Registry
}

func newFixture(t testing.TB, policies ...v1alpha1.PlacementPolicy) *fixture {
	t.Helper()
	eng, err := policy.NewEngine(policies)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	objs := tu.Nodes(2, "pod-1", "pod-2", "pod-3")
	objs = append(objs,
		tu.Namespace("kube-system"), tu.Namespace("apps"),
		tu.Pod("kube-system", "etcd-pod-1-1").Labels("component", "etcd").NodeName("pod-1-1").Phase(corev1.PodRunning).Obj(),
		tu.Pod("kube-system", "etcd-pod-2-1").Labels("component", "etcd").NodeName("pod-2-1").Phase(corev1.PodRunning).Obj(),
		// Created, not yet bound: the scheduler is about to bind it.
		tu.Pod("kube-system", "etcd-new").Labels("component", "etcd").Phase(corev1.PodPending).Obj(),
	)
	reg := prometheus.NewRegistry()
	return &fixture{
		h: &Handler{
			Engine:             func() *policy.Engine { return eng },
			State:              policy.NewStaticState(objs...),
			AllowedLabelGroups: sets.New("system:masters"),
			Metrics:            NewMetrics(reg),
		},
		reg: reg,
	}
}

// request builds the admission request the API server sends for obj.
func request(t testing.TB, op admissionv1.Operation, obj, old runtime.Object, user authenticationv1.UserInfo) admission.Request {
	t.Helper()
	gvk := obj.GetObjectKind().GroupVersionKind()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := obj.(metav1.Object)
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"},
		Name:      m.GetName(),
		Namespace: m.GetNamespace(),
		Operation: op,
		UserInfo:  user,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	if gvk.Kind == "Binding" {
		req.Resource.Resource, req.SubResource = "pods", "binding"
	}
	if old != nil {
		if req.OldObject.Raw, err = json.Marshal(old); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

func causes(resp admission.Response) []string {
	if resp.Result == nil || resp.Result.Details == nil {
		return nil
	}
	var out []string
	for _, c := range resp.Result.Details.Causes {
		out = append(out, c.Field)
	}
	return out
}

func TestValidateActions(t *testing.T) {
	worker := tu.Deployment("apps", "worker").Labels("app", "worker")
	tests := []struct {
		name         string
		action       v1alpha1.Action
		obj          runtime.Object
		wantAllowed  bool
		wantCauses   []string
		wantWarnings int
		wantMetric   string // action label counted for the rule
	}{
		{"deny: no datacenter selector", v1alpha1.ActionDeny, worker.Obj(), false,
			[]string{"spec.template.spec.nodeSelector[topology.kubernetes.io/zone]"}, 0, "Deny"},
		{"warn: admitted with a warning", v1alpha1.ActionWarn, tu.Deployment("apps", "worker").Labels("app", "worker").Obj(), true, nil, 1, "Warn"},
		{"audit: admitted silently", v1alpha1.ActionAudit, tu.Deployment("apps", "worker").Labels("app", "worker").Obj(), true, nil, 0, "Audit"},
		{"deny: unknown datacenter", v1alpha1.ActionDeny, tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-9").Obj(), false,
			[]string{"spec.template.spec.nodeSelector[topology.kubernetes.io/zone]"}, 0, "Deny"},
		{"allow: one known datacenter", v1alpha1.ActionDeny, tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-2").Obj(), true, nil, 0, ""},
		{"allow: not selected by any rule", v1alpha1.ActionDeny, tu.Deployment("apps", "web").Labels("app", "web").Obj(), true, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, macstadium(tt.action))
			resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, tt.obj, nil, admin))
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
			if got := causes(resp); strings.Join(got, ",") != strings.Join(tt.wantCauses, ",") {
				t.Errorf("causes = %v, want %v", got, tt.wantCauses)
			}
			if !tt.wantAllowed {
				if resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
					t.Errorf("status = %d %s, want 422 Invalid", resp.Result.Code, resp.Result.Reason)
				}
				if !strings.Contains(resp.Result.Message, "macstadium/per-datacenter-services") || !strings.Contains(resp.Result.Message, "pod-1") {
					t.Errorf("message %q does not name the rule and the known datacenters", resp.Result.Message)
				}
			}
			if len(resp.Warnings) != tt.wantWarnings {
				t.Errorf("warnings = %q, want %d", resp.Warnings, tt.wantWarnings)
			}
			if tt.wantWarnings > 0 && !strings.HasPrefix(resp.Warnings[0], "macstadium/per-datacenter-services: spec.template.spec.nodeSelector") {
				t.Errorf("warning %q does not start with rule and field", resp.Warnings[0])
			}
			if tt.wantMetric != "" {
				got := counterValue(f.h.Metrics.Decisions.WithLabelValues("macstadium/per-datacenter-services", tt.wantMetric, "Deployment", "CREATE"))
				if got != 1 {
					t.Errorf("decisions{%s} = %v, want 1", tt.wantMetric, got)
				}
			}
		})
	}
}

func TestValidateTemplatesOfEveryKind(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	for _, b := range tu.Kinds("apps", "worker") {
		t.Run(b.Kind(), func(t *testing.T) {
			resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, b.Labels("app", "worker").Obj(), nil, admin))
			if resp.Allowed {
				t.Fatalf("%s without a datacenter selector admitted", b.Kind())
			}
			if len(causes(resp)) != 1 || !strings.HasSuffix(causes(resp)[0], "nodeSelector[topology.kubernetes.io/zone]") {
				t.Errorf("causes = %v", causes(resp))
			}
		})
	}
}

func TestValidateUpdateRemovingSelector(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	old := tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-1").Obj()
	updated := tu.Deployment("apps", "worker").Labels("app", "worker").Obj()
	resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Update, updated, old, admin))
	if resp.Allowed {
		t.Fatal("update removing the datacenter selector admitted")
	}
}

func TestValidatePodNodeNameInWrongDatacenter(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	pod := tu.Pod("apps", "worker-0").Labels("app", "worker").InDC("pod-1").NodeName("pod-2-1").Obj()
	resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, pod, nil, admin))
	if resp.Allowed {
		t.Fatal("pod bound to a node of another datacenter admitted")
	}
	if got := causes(resp); len(got) != 1 || got[0] != "spec.nodeName" {
		t.Errorf("causes = %v, want [spec.nodeName]", got)
	}
}

func TestValidateBinding(t *testing.T) {
	tests := []struct {
		name, pod, node string
		wantAllowed     bool
		wantMessage     string
	}{
		{"non-member pod", "web-1", "pod-1-2", true, "not a member pod"},
		{"member into the datacenter without one", "etcd-new", "pod-3-1", true, ""},
		{"member onto a node that holds one", "etcd-new", "pod-1-1", false, "already holds"},
		{"member into a datacenter that holds one", "etcd-new", "pod-2-2", false, "pod-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, macstadium(v1alpha1.ActionDeny))
			resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, tu.Binding("kube-system", tt.pod, tt.node), nil, admin))
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			if !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", msg, tt.wantMessage)
			}
			if !tt.wantAllowed {
				got := causes(resp)
				if len(got) == 0 {
					t.Errorf("no causes")
				}
				for _, c := range got {
					if c != "target.name" {
						t.Errorf("causes = %v, want only target.name", got)
					}
				}
				t.Log(resp.Result.Message)
			}
		})
	}
}

func TestValidateMirrorPodWarnedNotDenied(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	// A static etcd pod on a node of a datacenter that already holds one.
	pod := tu.Pod("kube-system", "etcd-pod-1-2").Labels("component", "etcd").NodeName("pod-1-2").Mirror().Obj()
	resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, pod, nil, kubelet))
	if !resp.Allowed {
		t.Fatalf("mirror pod denied: %+v", resp.Result)
	}
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, "\n"), "mirror") {
		t.Errorf("warnings = %q, want a note about the mirror pod", resp.Warnings)
	}
}

func TestLabelGuard(t *testing.T) {
	// pod-1-2 holds no etcd member; pod-1-1 does.
	node := func(dc string, extra ...string) *corev1.Node {
		b := tu.Node("pod-1-2").Label(extra...)
		if dc != "" {
			b = b.InDC(dc)
		}
		return b.Obj()
	}
	tests := []struct {
		name        string
		op          admissionv1.Operation
		obj, old    *corev1.Node
		user        authenticationv1.UserInfo
		wantAllowed bool
		wantMessage string
	}{
		{"kubelet moves its node", admissionv1.Update, node("pod-2"), node("pod-1"), kubelet, false, `change "pod-1" to "pod-2"`},
		{"kubelet removes the label", admissionv1.Update, node(""), node("pod-1"), kubelet, false, "may not remove"},
		{"kubelet registers into a datacenter", admissionv1.Create, node("pod-1"), nil, kubelet, false, `may not set "pod-1"`},
		{"kubelet changes another label", admissionv1.Update, node("pod-1", "disk", "ssd"), node("pod-1"), kubelet, true, ""},
		{"kubelet registers without the label", admissionv1.Create, node(""), nil, kubelet, true, ""},
		{"admin moves the node", admissionv1.Update, node("pod-2"), node("pod-1"), admin, true, ""},
		{"admin moves a member's node into a datacenter that holds one", admissionv1.Update,
			tu.Node("pod-1-1").InDC("pod-2").Obj(), tu.Node("pod-1-1").InDC("pod-1").Obj(), admin, false, "holds member kube-system/etcd-pod-1-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, macstadium(v1alpha1.ActionDeny))
			var old runtime.Object
			if tt.old != nil {
				old = tt.old
			}
			resp := f.h.Validate().Handle(context.Background(), request(t, tt.op, tt.obj, old, tt.user))
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
			if tt.wantAllowed {
				return
			}
			if got := causes(resp); len(got) == 0 || got[0] != "metadata.labels[topology.kubernetes.io/zone]" {
				t.Errorf("causes = %v", got)
			}
			if tt.user.Username == admin.Username {
				if !strings.Contains(resp.Result.Message, tt.wantMessage) {
					t.Errorf("message %q lacks %q", resp.Result.Message, tt.wantMessage)
				}
				return
			}
			if got := causes(resp); len(got) != 1 {
				t.Errorf("causes = %v, want only the guard's", got)
			}
			if !strings.Contains(resp.Result.Message, tt.wantMessage) || !strings.Contains(resp.Result.Message, "system:masters") {
				t.Errorf("message %q lacks %q or the allowed groups", resp.Result.Message, tt.wantMessage)
			}
			if got := counterValue(f.h.Metrics.Decisions.WithLabelValues(RuleLabelGuard, "Deny", "Node", string(tt.op))); got != 1 {
				t.Errorf("label-guard decisions = %v, want 1", got)
			}
		})
	}
}

func TestValidateEdgeCases(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	worker := tu.Deployment("apps", "worker").Labels("app", "worker").Obj()

	del := request(t, admissionv1.Delete, worker, nil, admin)
	if resp := f.h.Validate().Handle(context.Background(), del); !resp.Allowed {
		t.Errorf("DELETE denied: %+v", resp.Result)
	}

	bad := request(t, admissionv1.Create, worker, nil, admin)
	bad.Object.Raw = []byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":"three"}}`)
	resp := f.h.Validate().Handle(context.Background(), bad)
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, "cannot decode") {
		t.Errorf("malformed object: allowed=%v result=%+v, want a 400 saying it cannot be decoded", resp.Allowed, resp.Result)
	}

	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "c"}}
	if resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, cm, nil, admin)); !resp.Allowed {
		t.Errorf("ConfigMap denied: %+v", resp.Result)
	}

	deleting := tu.Deployment("apps", "worker").Labels("app", "worker").Deleting().Obj()
	if resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Update, deleting, worker, admin)); !resp.Allowed {
		t.Errorf("update of an object being deleted denied: %+v", resp.Result)
	}

	empty, err := policy.NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.h.Engine = func() *policy.Engine { return empty }
	if resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, worker, nil, admin)); !resp.Allowed {
		t.Errorf("denied with no PlacementPolicy: %+v", resp.Result)
	}
}

// TestNotReadyIsNeverAllowed: before its engine is built (the URL layout
// has no readiness gate in front of it) the webhook answers with an error,
// so that the API server applies the failure policy, and never "allowed".
func TestNotReadyIsNeverAllowed(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	f.h.Engine = func() *policy.Engine { return nil }
	worker := tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-1").Obj()
	for name, h := range map[string]admission.Handler{"validate": f.h.Validate(), "mutate": f.h.Mutate()} {
		resp := h.Handle(context.Background(), request(t, admissionv1.Create, worker, nil, admin))
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, "not ready") {
			t.Errorf("%s without an engine: allowed=%v result=%+v, want a 503 saying it is not ready", name, resp.Allowed, resp.Result)
		}
	}
}

// TestContextHonoured: a request whose context has ended is never admitted.
func TestContextHonoured(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pod := tu.Pod("apps", "worker").Labels("app", "worker").InDC("pod-1").Obj()
	for name, h := range map[string]admission.Handler{"validate": f.h.Validate(), "mutate": f.h.Mutate()} {
		if resp := h.Handle(ctx, request(t, admissionv1.Create, pod, nil, admin)); resp.Allowed {
			t.Errorf("%s admitted a request whose context had ended", name)
		}
	}
}

// TestValidateUpdatesJudgedOnWhatTheyChange: controller updates of a
// workload admitted before a rule applied (scale-downs, status) and
// image-only updates are admitted; a change of placement is judged.
func TestValidateUpdatesJudgedOnWhatTheyChange(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	rs := func() *tu.ObjectBuilder {
		return tu.ReplicaSet("apps", "worker-1").Labels("app", "worker").Replicas(13)
	}
	tests := []struct {
		name        string
		obj, old    runtime.Object
		wantAllowed bool
	}{
		{"scale-down to 0", rs().Replicas(0).Obj(), rs().Obj(), true},
		{"scale-down by one", rs().Replicas(12).Obj(), rs().Obj(), true},
		{"image only", rs().Edit(func(s *corev1.PodSpec) { s.Containers[0].Image = "registry.example/app:2" }).Obj(), rs().Obj(), true},
		{"placement change", rs().NodeSelector("disk", "ssd").Obj(), rs().Obj(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Update, tt.obj, tt.old, admin))
			if resp.Allowed != tt.wantAllowed {
				t.Errorf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
		})
	}
}

// TestValidateStatefulSetScale: statefulsets/scale is judged as the patch
// of spec.replicas it is.
func TestValidateStatefulSetScale(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	sts := tu.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3).TopologySpread(tu.Zone, corev1.DoNotSchedule).StatefulSet()
	f.h.State.(*policy.StaticState).Add(sts)
	scale := func(n int32) admission.Request {
		s := &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "etcd"}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
		req := request(t, admissionv1.Update, s, s, admin)
		req.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
		req.SubResource = "scale"
		return req
	}
	if resp := f.h.Validate().Handle(context.Background(), scale(4)); resp.Allowed || !strings.Contains(resp.Result.Message, "4 voting members over 3 datacenter(s)") {
		t.Errorf("scale to 4: allowed=%v result=%+v, want denied as 4 over 3", resp.Allowed, resp.Result)
	}
	for _, n := range []int32{5, 1} {
		if resp := f.h.Validate().Handle(context.Background(), scale(n)); !resp.Allowed {
			t.Errorf("scale to %d denied: %+v", n, resp.Result)
		}
	}
}

func TestHandlerRecoversPanics(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	f.h.Engine = func() *policy.Engine { panic("boom") }
	for name, h := range map[string]admission.Handler{"validate": f.h.Validate(), "mutate": f.h.Mutate()} {
		resp := h.Handle(context.Background(), request(t, admissionv1.Create, tu.Deployment("apps", "worker").Obj(), nil, admin))
		if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "internal error") {
			t.Errorf("%s: allowed=%v warnings=%q, want an admission with an internal-error warning", name, resp.Allowed, resp.Warnings)
		}
	}
	if got := counterValue(f.h.Metrics.Panics); got != 2 {
		t.Errorf("panics = %v, want 2", got)
	}
}

func TestValidatePolicy(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	bad := tu.Policy("bad").Spread(tu.SpreadPods("etcd", nil)).Obj()
	bad.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PlacementPolicy"}
	resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, bad, nil, admin))
	if resp.Allowed {
		t.Fatal("policy whose spread rule selects every pod admitted")
	}
	if len(causes(resp)) == 0 || !strings.HasPrefix(causes(resp)[0], "spec.spread[0]") {
		t.Errorf("causes = %v, want spec.spread[0]...", causes(resp))
	}
	good := tu.Policy("good").Datacenters("pod-1", "pod-2", "pod-3").Spread(tu.Etcd()).Obj()
	good.TypeMeta = bad.TypeMeta
	if resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, good, nil, admin)); !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("valid policy denied or warned: %+v %q", resp.Result, resp.Warnings)
	}
	other := tu.Policy("other").Pinned(tu.PinnedRule("svc").In("app", "svc").FromLabel("example.com/dc")).Obj()
	other.TypeMeta = bad.TypeMeta
	resp = f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, other, nil, admin))
	// Every replica scopes the mutating webhook to the live policies'
	// datacenterFromLabel keys, so another key needs no manual edit.
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("policy with another datacenterFromLabel: allowed=%v warnings=%q, want admitted without warning", resp.Allowed, resp.Warnings)
	}
}

// applyPatch applies a mutation response to the request object.
func applyPatch(t *testing.T, req admission.Request, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patches) == 0 {
		return req.Object.Raw
	}
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(req.Object.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMutate(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	obj := tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Obj()
	req := request(t, admissionv1.Create, obj, nil, admin)
	resp := f.h.Mutate().Handle(context.Background(), req)
	if !resp.Allowed {
		t.Fatalf("mutation denied: %+v", resp.Result)
	}
	if len(resp.Patches) != 1 || resp.Patches[0].Operation != "add" || resp.Patches[0].Path != "/spec/template/spec/nodeSelector" {
		t.Fatalf("patches = %+v, want one add of the template nodeSelector", resp.Patches)
	}
	patched := applyPatch(t, req, resp)
	if !strings.Contains(string(patched), `"nodeSelector":{"topology.kubernetes.io/zone":"pod-2"}`) {
		t.Errorf("patched object lacks the nodeSelector: %s", patched)
	}
	if got := counterValue(f.h.Metrics.Mutations.WithLabelValues("Deployment")); got != 1 {
		t.Errorf("mutations = %v, want 1", got)
	}

	// Reinvocation: the patched object needs nothing more.
	req.Object.Raw = patched
	if again := f.h.Mutate().Handle(context.Background(), req); !again.Allowed || len(again.Patches) != 0 {
		t.Errorf("second mutation patched again: %+v", again.Patches)
	}
	// And the validating webhook admits what the mutation produced.
	if v := f.h.Validate().Handle(context.Background(), req); !v.Allowed {
		t.Errorf("mutated object denied: %+v", v.Result)
	}
}

// TestMutatePatchesOnlyTheNodeSelector sends objects as a newer API server
// would (fields this build does not know, values the types normalise) and
// degenerate ones: the patch must add the nodeSelector and leave the rest
// as sent.
func TestMutatePatchesOnlyTheNodeSelector(t *testing.T) {
	const meta = `"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"worker","namespace":"apps","labels":{"app":"worker","placement.kubectl-dc.io/datacenter":"pod-2"}}`
	const selector = `{"topology.kubernetes.io/zone":"pod-2"}`
	tests := []struct {
		name, spec, want string // the object's spec, before and after the patch
	}{
		{"unknown fields and a quantity kept as written",
			`{"futureField":{"a":1},"template":{"spec":{"futurePodField":true,"containers":[{"name":"main","image":"i","resources":{"limits":{"cpu":"1000m"}}}]}}}`,
			`{"futureField":{"a":1},"template":{"spec":{"futurePodField":true,"containers":[{"name":"main","image":"i","resources":{"limits":{"cpu":"1000m"}}}],"nodeSelector":` + selector + `}}}`},
		{"other selector entries kept",
			`{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}`,
			`{"template":{"spec":{"nodeSelector":{"disk":"ssd","topology.kubernetes.io/zone":"pod-2"}}}}`},
		{"null nodeSelector", `{"template":{"spec":{"nodeSelector":null}}}`, `{"template":{"spec":{"nodeSelector":` + selector + `}}}`},
		{"no template", `{}`, `{"template":{"spec":{"nodeSelector":` + selector + `}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, macstadium(v1alpha1.ActionDeny))
			req := request(t, admissionv1.Create, tu.Deployment("apps", "worker").Obj(), nil, admin)
			req.Object.Raw = []byte(`{` + meta + `,"spec":` + tt.spec + `}`)
			resp := f.h.Mutate().Handle(context.Background(), req)
			if !resp.Allowed || len(resp.Patches) == 0 {
				t.Fatalf("allowed=%v patches=%+v, want a patch", resp.Allowed, resp.Patches)
			}
			got, want := jsonOf(t, applyPatch(t, req, resp)), jsonOf(t, []byte(`{`+meta+`,"spec":`+tt.want+`}`))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("patch %+v makes\n%v\nwant\n%v", resp.Patches, got, want)
			}
		})
	}
}

func jsonOf(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

func TestMutateNeverTouchesMirrorPods(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	pod := tu.Pod("apps", "worker-static").Labels("app", "worker", dcLabel, "pod-1").Mirror().Obj()
	resp := f.h.Mutate().Handle(context.Background(), request(t, admissionv1.Create, pod, nil, kubelet))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("mirror pod mutated: allowed=%v patches=%+v", resp.Allowed, resp.Patches)
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestHandlerConcurrent runs requests in parallel (run it with -race).
func TestHandlerConcurrent(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	reqs := []admission.Request{
		request(t, admissionv1.Create, tu.Deployment("apps", "worker").Labels("app", "worker").Obj(), nil, admin),
		request(t, admissionv1.Create, tu.Binding("kube-system", "etcd-new", "pod-3-1"), nil, admin),
		request(t, admissionv1.Update, tu.Node("pod-1-1").InDC("pod-2").Obj(), tu.Node("pod-1-1").InDC("pod-1").Obj(), kubelet),
	}
	want := []bool{false, true, false}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				k := (g + i) % len(reqs)
				if got := f.h.Validate().Handle(context.Background(), reqs[k]).Allowed; got != want[k] {
					done <- fmt.Errorf("request %d: allowed = %v, want %v", k, got, want[k])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestValidateNodeMembers(t *testing.T) {
	p := tu.Policy("cp").Datacenters("pod-1", "pod-2", "pod-3").Spread(tu.SpreadNodes("control-plane", "node-role.kubernetes.io/control-plane", "")).Value()
	f := newFixture(t, p)
	f.h.State = policy.NewStaticState(append(tu.Nodes(1, "pod-1", "pod-2", "pod-3"),
		tu.Node("pod-1-cp-1").InDC("pod-1").ControlPlane().Obj(),
		tu.Node("pod-2-cp-1").InDC("pod-2").ControlPlane().Obj())...)
	second := tu.Node("pod-1-cp-2").InDC("pod-1").ControlPlane().Obj()
	resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, second, nil, admin))
	if resp.Allowed {
		t.Fatal("a second control-plane node in pod-1 admitted")
	}
	if !strings.Contains(resp.Result.Message, "cp/control-plane") {
		t.Errorf("message %q does not name the rule", resp.Result.Message)
	}
	third := tu.Node("pod-3-cp-1").InDC("pod-3").ControlPlane().Obj()
	if resp := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, third, nil, admin)); !resp.Allowed {
		t.Errorf("the witness control plane in pod-3 denied: %+v", resp.Result)
	}
}

// TestMutateLeavesUnchangedUpdatesAlone: an update that changes neither the
// templates nor the labels (a scale-down) of a workload admitted before
// the policy is not mutated, which would roll it out; one that changes its
// template is.
func TestMutateLeavesUnchangedUpdatesAlone(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	rs := func() *tu.ObjectBuilder {
		return tu.ReplicaSet("apps", "worker-1").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Replicas(3)
	}
	resp := f.h.Mutate().Handle(context.Background(), request(t, admissionv1.Update, rs().Replicas(0).Obj(), rs().Obj(), admin))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("scale-down mutated: allowed=%v patches=%+v", resp.Allowed, resp.Patches)
	}
	changed := rs().Edit(func(s *corev1.PodSpec) { s.Containers[0].Image = "registry.example/app:2" }).Obj()
	resp = f.h.Mutate().Handle(context.Background(), request(t, admissionv1.Update, changed, rs().Obj(), admin))
	if !resp.Allowed || len(resp.Patches) != 1 {
		t.Errorf("template change not mutated: allowed=%v patches=%+v", resp.Allowed, resp.Patches)
	}
}

// TestLargeRequestsBounded: while DefaultHeavyRequests large requests are
// judged, another is refused (429) rather than admitted unjudged, and small
// requests are not held up.
func TestLargeRequestsBounded(t *testing.T) {
	f := newFixture(t, macstadium(v1alpha1.ActionDeny))
	big := tu.Pod("kube-system", "big").Labels("app", "worker").InDC("pod-1").Annotations("blob", strings.Repeat("x", HeavyRequestBytes)).Obj()
	bigReq := request(t, admissionv1.Create, big, nil, admin)
	for i := 0; i < DefaultHeavyRequests; i++ {
		release, busy := f.h.acquireHeavy(context.Background(), bigReq)
		if busy != nil {
			t.Fatalf("slot %d refused: %+v", i, busy.Result)
		}
		defer release()
	}
	resp := f.h.Validate().Handle(context.Background(), bigReq)
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusTooManyRequests {
		t.Errorf("large request beyond the bound: allowed=%v result=%+v, want 429", resp.Allowed, resp.Result)
	}
	small := request(t, admissionv1.Create, tu.Pod("apps", "small").Labels("app", "worker").InDC("pod-1").Obj(), nil, admin)
	if resp := f.h.Validate().Handle(context.Background(), small); !resp.Allowed {
		t.Errorf("small request held up: %+v", resp.Result)
	}
}
