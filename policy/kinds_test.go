package policy_test

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestJudgedKinds(t *testing.T) {
	kinds := policy.JudgedKinds()
	builders := testutil.Kinds("ns", "x")
	if len(kinds) != len(builders) {
		t.Fatalf("%d judged kinds, %d testutil.Kinds builders: keep them in step", len(kinds), len(builders))
	}
	for i, k := range kinds {
		t.Run(k.Kind, func(t *testing.T) {
			if b := builders[i]; b.Kind() != k.Kind {
				t.Errorf("testutil.Kinds()[%d] is a %s, the table has %s", i, b.Kind(), k.Kind)
			}
			obj := k.New()
			if got := obj.GetObjectKind().GroupVersionKind(); got != k.GVK() {
				t.Errorf("New() TypeMeta = %v, want %v", got, k.GVK())
			}
			gvks, _, err := policy.Scheme.ObjectKinds(obj)
			if err != nil || len(gvks) != 1 || gvks[0] != k.GVK() {
				t.Errorf("Scheme kinds of New() = %v, %v; want %v", gvks, err, k.GVK())
			}
			if k.GVR() != (schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}) {
				t.Errorf("GVR() = %v", k.GVR())
			}
			list := k.NewList()
			if _, err := meta.ExtractList(list); err != nil {
				t.Errorf("NewList() is not a list: %v", err)
			}
			if got, want := list.GetObjectKind().GroupVersionKind().Kind, k.Kind+"List"; got != want {
				t.Errorf("NewList() kind %q, want %q", got, want)
			}
			if got, ok := policy.JudgedKindOf(obj); !ok || got.Kind != k.Kind {
				t.Errorf("JudgedKindOf(New()) = %v, %v", got.Kind, ok)
			}
			if got, ok := policy.JudgedKindFor(schema.GroupKind{Group: k.Group, Kind: k.Kind}); !ok || got.GVK() != k.GVK() {
				t.Errorf("JudgedKindFor = %v, %v", got.GVK(), ok)
			}

			// Templates and PodTemplates agree with the table's paths.
			full := builders[i].Obj()
			ts := k.Templates(full)
			if len(ts) != len(k.TemplatePaths) {
				t.Fatalf("%d templates, %d paths", len(ts), len(k.TemplatePaths))
			}
			for j := range ts {
				if ts[j].Path.String() != k.TemplatePaths[j].String() {
					t.Errorf("template %d at %s, the table says %s", j, ts[j].Path, k.TemplatePaths[j])
				}
			}
			if got := policy.PodTemplates(full); !reflect.DeepEqual(got, ts) {
				t.Errorf("PodTemplates and Kind.Templates disagree")
			}
			if policy.WorkloadKinds[i] != k.GVK() {
				t.Errorf("WorkloadKinds[%d] = %v, want %v", i, policy.WorkloadKinds[i], k.GVK())
			}
		})
	}
	if _, ok := policy.JudgedKindOf(testutil.Node("a").Obj()); ok {
		t.Error("a Node is a judged kind")
	}
	if _, ok := policy.JudgedKindFor(schema.GroupKind{Group: "extensions", Kind: "Deployment"}); ok {
		t.Error("extensions Deployment is a judged kind")
	}
	kinds[0].Kind = "Changed"
	if policy.JudgedKinds()[0].Kind != "Pod" {
		t.Error("JudgedKinds returns the table itself")
	}
}

// workloadWebhooks are the webhooks of manifests/base that judge or mutate
// the workload kinds; the others (pods/binding, nodes, placementpolicies)
// must name none of them.
var workloadWebhooks = map[string]bool{
	"workloads.placement.kubectl-dc.io":   true,
	"kube-system.placement.kubectl-dc.io": true,
}

// TestWebhookRulesMatchJudgedKinds fails when the workload webhooks of the
// manifests ask for other resources than the kind table (subresources
// aside), so that a kind added to one is added to the other.
func TestWebhookRulesMatchJudgedKinds(t *testing.T) {
	var want []string
	judged := map[string]bool{}
	for _, k := range policy.JudgedKinds() {
		want = append(want, gvrString(k.GVR()))
		judged[k.GVR().GroupResource().String()] = true
	}
	sort.Strings(want)

	check := func(file string, webhook string, rules []admissionregistrationv1.RuleWithOperations) {
		t.Helper()
		var got []string
		for _, r := range rules {
			for _, res := range r.Resources {
				if strings.Contains(res, "/") {
					continue
				}
				for _, g := range r.APIGroups {
					for _, v := range r.APIVersions {
						gvr := schema.GroupVersionResource{Group: g, Version: v, Resource: res}
						if workloadWebhooks[webhook] {
							got = append(got, gvrString(gvr))
						} else if judged[gvr.GroupResource().String()] {
							t.Errorf("%s: webhook %s, which is not a workload webhook, names the judged resource %s", file, webhook, gvr.GroupResource())
						}
					}
				}
			}
		}
		if !workloadWebhooks[webhook] {
			return
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: webhook %s asks for\n  %s\nthe kind table (policy/kinds.go) has\n  %s", file, webhook, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}

	seen := map[string]int{}
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	readYAML(t, "../manifests/base/webhook-validating.yaml", &validating)
	for _, w := range validating.Webhooks {
		check("webhook-validating.yaml", w.Name, w.Rules)
		seen[w.Name]++
	}
	var mutating admissionregistrationv1.MutatingWebhookConfiguration
	readYAML(t, "../manifests/base/webhook-mutating.yaml", &mutating)
	for _, w := range mutating.Webhooks {
		check("webhook-mutating.yaml", w.Name, w.Rules)
		seen[w.Name]++
	}
	for name := range workloadWebhooks {
		if seen[name] != 2 {
			t.Errorf("webhook %s is in %d of the two configurations, want both", name, seen[name])
		}
	}
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// gvrString spells gvr as group/version/resource, "core" for the core group.
func gvrString(gvr schema.GroupVersionResource) string {
	g := gvr.Group
	if g == "" {
		g = "core"
	}
	return g + "/" + gvr.Version + "/" + gvr.Resource
}
