package celtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// SeedCorpora are the committed seed corpora of the fuzz targets that hold
// objects (policy's FuzzEvaluatePinned: the bytes that build one) or
// AdmissionReviews (webhook's FuzzValidateHTTP and FuzzMutateHTTP), under
// the module root. FuzzEvaluateSpread's seeds judge spread rules, which
// the compiled policies leave to the webhook; plugin/check's FuzzDecodeFile
// commits no corpus.
var SeedCorpora = []string{
	"policy/testdata/fuzz/FuzzEvaluatePinned",
	"webhook/testdata/fuzz/FuzzValidateHTTP",
	"webhook/testdata/fuzz/FuzzMutateHTTP",
}

// Seeds reads the seed corpora under root (the module root) into requests
// in the namespaces nss, in turn: every seed whose object is a judged kind
// in a create or an update. skipped counts the seeds that are not (the
// malformed bodies the webhook's fuzz targets start from, other kinds,
// deletes).
func Seeds(root string, nss []*corev1.Namespace) (reqs []Request, skipped int, err error) {
	for _, dir := range SeedCorpora {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return nil, 0, fmt.Errorf("reading the seed corpus %s: %w", dir, err)
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, name := range names {
			path := filepath.Join(root, dir, name)
			data, err := readSeed(path)
			if err != nil {
				return nil, 0, err
			}
			ns := nss[len(reqs)%len(nss)]
			what := "seed " + filepath.Base(dir) + "/" + name
			var req *Request
			if filepath.Base(dir) == "FuzzEvaluatePinned" {
				b, _ := testutil.FuzzPinnedObject(data)
				req = &Request{Op: admission.Create, Obj: b.Obj()}
			} else {
				req = reviewRequest(data)
			}
			if req == nil {
				skipped++
				continue
			}
			req.NS, req.What = ns, what
			for _, o := range []runtime.Object{req.Obj, req.Old} {
				if m, ok := o.(metav1.Object); ok {
					m.SetNamespace(ns.Name)
					m.SetName(fmt.Sprintf("seed-%03d", len(reqs)))
					m.SetGenerateName("")
				}
			}
			reqs = append(reqs, *req)
		}
	}
	return reqs, skipped, nil
}

// readSeed reads one file of a seed corpus: "go test fuzz v1" and one
// []byte value.
func readSeed(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitN(bytes.TrimSpace(raw), []byte("\n"), 2)
	if len(lines) != 2 || string(lines[0]) != "go test fuzz v1" {
		return nil, fmt.Errorf("%s is not a seed of go test fuzz v1", path)
	}
	v := bytes.TrimSpace(lines[1])
	if !bytes.HasPrefix(v, []byte("[]byte(")) || !bytes.HasSuffix(v, []byte(")")) {
		return nil, fmt.Errorf("%s: the seed is not one []byte value", path)
	}
	s, err := strconv.Unquote(string(v[len("[]byte(") : len(v)-1]))
	if err != nil {
		return nil, fmt.Errorf("%s: the seed's value does not unquote: %w", path, err)
	}
	return []byte(s), nil
}

// reviewRequest is the create or update an AdmissionReview body carries
// when its object (and old object) is a judged kind; nil otherwise.
func reviewRequest(body []byte) *Request {
	var review admissionv1.AdmissionReview
	if err := yaml.Unmarshal(body, &review); err != nil || review.Request == nil {
		return nil
	}
	r := review.Request
	decode := func(raw runtime.RawExtension) runtime.Object {
		if len(raw.Raw) == 0 || bytes.Equal(raw.Raw, []byte("null")) {
			return nil
		}
		obj, _, err := policy.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if err != nil {
			return nil
		}
		if _, ok := policy.JudgedKindOf(obj); !ok {
			return nil
		}
		return obj
	}
	obj := decode(r.Object)
	if obj == nil {
		return nil
	}
	switch r.Operation {
	case admissionv1.Create:
		return &Request{Op: admission.Create, Obj: obj}
	case admissionv1.Update:
		old := decode(r.OldObject)
		if old == nil || reflect.TypeOf(old) != reflect.TypeOf(obj) {
			return nil
		}
		return &Request{Op: admission.Update, Obj: obj, Old: old}
	}
	return nil
}

// WebhookOnly reports whether the engine's result r is one the compiled
// policies leave to the webhook: a pod's spec.nodeName in another
// datacenter (it needs the Node).
func WebhookOnly(r policy.Result) bool {
	return r.Field() == "spec.nodeName"
}

// EngineJudged is EngineAdmit less the results the compiled policies leave
// to the webhook (WebhookOnly): what the compiled policies must agree with.
// skipped counts the results taken out.
func EngineJudged(e *policy.Engine, state policy.State, req Request) (obj runtime.Object, rs policy.Results, skipped int) {
	obj, all := EngineAdmit(e, state, req)
	for _, r := range all {
		if WebhookOnly(r) {
			skipped++
			continue
		}
		rs = append(rs, r)
	}
	return obj, rs, skipped
}
