package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// crMaxRequestSize is controller-runtime's admission.maxRequestSize
// (unexported): a body of this many bytes or more is refused unread.
const crMaxRequestSize = 7 << 20

// examplePolicy is manifests/examples/macstadium-policy.yaml, the policy
// the fuzz targets judge with, so that they cover what operators deploy.
func examplePolicy(t testing.TB) v1alpha1.PlacementPolicy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "manifests", "examples", "macstadium-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := policy.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding the example policy: %v", err)
	}
	p, ok := obj.(*v1alpha1.PlacementPolicy)
	if !ok {
		t.Fatalf("the example policy decodes to a %T", obj)
	}
	return *p
}

// discardLogs gives controller-runtime a logger. Until one is set it keeps
// every logger it hands out, one per request, so that a long fuzz run slows
// down as they pile up; SetLogger releases them.
func discardLogs() { ctrl.SetLogger(logr.Discard()) }

// served mounts the handlers of h on a webhook server with Register, as
// Serve does, and returns the server's mux: the http.Handler behind
// /validate and /mutate, with controller-runtime's decoding, size limit and
// panic recovery. Nothing listens.
func served(h *Handler) http.Handler {
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{})
	h.Register(srv)
	return srv.WebhookMux()
}

// post sends body to path as the API server does. An empty body arrives
// as http.NoBody, as net/http's server hands it over.
func post(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// reviewBody is the AdmissionReview v1 the API server sends for req.
func reviewBody(t testing.TB, req admission.Request) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// anyReview is an AdmissionReview whose Go type no scheme registers:
// apimachinery's decoders then fill it whatever apiVersion and kind the
// body names, and report those.
type anyReview struct {
	admissionv1.AdmissionReview
}

// reviewDecoder recognises what any Kubernetes decoder does: JSON, YAML
// and protobuf.
var reviewDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(admissionv1.AddToScheme(s))
	utilruntime.Must(admissionv1beta1.AddToScheme(s))
	return serializer.NewCodecFactory(s).UniversalDeserializer()
}()

// reviewOf decodes body the way controller-runtime's webhook does (see
// TestAdmissionMalformed): the request, and the apiVersion and kind the body
// names, which the answer echoes. v1beta1 and v1 share their fields.
func reviewOf(body []byte) (*admissionv1.AdmissionRequest, schema.GroupVersionKind, error) {
	if len(body) == 0 {
		return nil, schema.GroupVersionKind{}, fmt.Errorf("request body is empty")
	}
	var req admissionv1.AdmissionRequest
	ar := anyReview{AdmissionReview: admissionv1.AdmissionReview{Request: &req}}
	_, gvk, err := reviewDecoder.Decode(body, nil, &ar)
	if err != nil {
		return nil, schema.GroupVersionKind{}, err
	}
	return &req, *gvk, nil
}

// answer decodes a webhook's HTTP answer: status 200, whatever the verdict
// (controller-runtime reports errors inside the AdmissionReview), and one
// AdmissionReview with a response, nothing unknown in it, nothing after it.
func answer(t *testing.T, status int, body []byte) admissionv1.AdmissionReview {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200: %s", status, body)
	}
	var out admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("answer is no AdmissionReview: %v: %s", err, body)
	}
	if dec.More() {
		t.Fatalf("answer has more than one JSON value: %s", body)
	}
	if out.Response == nil || out.Request != nil {
		t.Fatalf("answer carries no response, or a request: %s", body)
	}
	return out
}

// checkAnswer asserts what /validate or /mutate (verb "judged" or
// "mutated") must answer to body, whatever it holds. It returns the request
// as decoded, nil when body is no AdmissionReview, and the response.
func checkAnswer(t *testing.T, f *fixture, verb string, body []byte, w *httptest.ResponseRecorder) (*admissionv1.AdmissionRequest, *admissionv1.AdmissionResponse) {
	t.Helper()
	out := answer(t, w.Code, w.Body.Bytes())
	resp := out.Response
	if got := counterValue(f.h.Metrics.Panics); got != 0 {
		t.Fatalf("the handler panicked (%v times); answer %s", got, w.Body)
	}
	req, gvk, err := reviewOf(body)
	if err != nil {
		// controller-runtime's own error answer: untyped, no uid, a 400
		// (413 past its size limit) with the reason.
		want := int32(http.StatusBadRequest)
		if len(body) >= crMaxRequestSize {
			want = http.StatusRequestEntityTooLarge
		}
		if out.APIVersion != "" || out.Kind != "" || resp.UID != "" || resp.Allowed || resp.Result == nil ||
			resp.Result.Code != want || resp.Result.Message == "" || len(resp.Patch) > 0 {
			t.Fatalf("undecodable body (%v): answer %s, want an untyped %d denial with a message", err, w.Body, want)
		}
		return nil, resp
	}

	// The answer names the review's own apiVersion and kind, v1 when the
	// body names none, and the request's uid.
	wantGVK := gvk
	if gvk.Empty() {
		wantGVK = admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	}
	if got := out.GroupVersionKind(); got != wantGVK {
		t.Fatalf("answer is a %v, want %v: %s", got, wantGVK, w.Body)
	}
	if resp.UID != req.UID {
		t.Fatalf("answer uid %q, want the request's %q", resp.UID, req.UID)
	}
	if resp.Result == nil {
		t.Fatalf("answer has no status: %s", w.Body)
	}
	for _, warning := range resp.Warnings {
		if strings.Contains(warning, "internal error") {
			t.Fatalf("admitted after an internal error: %q", warning)
		}
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		if want := fmt.Sprintf("operation %q is not %s", req.Operation, verb); !resp.Allowed || resp.Result.Message != want || len(resp.Patch) > 0 {
			t.Fatalf("operation %q: answer %s, want an admission saying %q", req.Operation, w.Body, want)
		}
	}
	if resp.Allowed {
		if resp.Result.Code != http.StatusOK {
			t.Fatalf("admitted with status %d: %s", resp.Result.Code, w.Body)
		}
		return req, resp
	}
	if resp.Result.Message == "" {
		t.Fatalf("denied without a message: %s", w.Body)
	}
	switch resp.Result.Code {
	case http.StatusBadRequest:
		if !strings.HasPrefix(resp.Result.Message, "dc-webhook cannot decode ") {
			t.Fatalf("400 that does not say what cannot be decoded: %q", resp.Result.Message)
		}
	case http.StatusUnprocessableEntity:
		if verb != "judged" || resp.Result.Reason != metav1.StatusReasonInvalid || resp.Result.Details == nil || len(resp.Result.Details.Causes) == 0 {
			t.Fatalf("422 without an Invalid status and its causes: %s", w.Body)
		}
	default:
		t.Fatalf("denied with status %d, want 400 (undecodable object) or 422 (rule violated): %s", resp.Result.Code, w.Body)
	}
	return req, resp
}

// jsonValue parses data keeping numbers as written.
func jsonValue(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return v
}

// jsonPointer escapes a key for a JSON pointer (RFC 6901).
var jsonPointer = strings.NewReplacer("~", "~0", "/", "~1")

// additions returns the JSON pointers and values of the scalars patched
// holds where orig holds nothing (or null), and fails if patched changes or
// drops anything orig holds.
func additions(t *testing.T, at string, orig, patched any, out map[string]any) {
	t.Helper()
	om, isMap := orig.(map[string]any)
	switch {
	case orig == nil && patched != nil:
		leaves(at, patched, out)
	case isMap:
		pm, ok := patched.(map[string]any)
		if !ok {
			t.Fatalf("%s: the patch turns an object into %v", at, patched)
		}
		for k, v := range pm {
			p := at + "/" + jsonPointer.Replace(k)
			if ov, had := om[k]; had {
				additions(t, p, ov, v, out)
			} else {
				leaves(p, v, out)
			}
		}
		for k := range om {
			if _, ok := pm[k]; !ok {
				t.Fatalf("%s: the patch removes %q", at, k)
			}
		}
	case !reflect.DeepEqual(orig, patched):
		t.Fatalf("%s: the patch changes %v into %v", at, orig, patched)
	}
}

// leaves adds to out the JSON pointers and values of the scalars in v.
func leaves(at string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[at] = v
		return
	}
	for k, e := range m {
		leaves(at+"/"+jsonPointer.Replace(k), e, out)
	}
}

// checkPatch asserts that a mutation only injects the datacenter of the
// object's datacenter label into the nodeSelector of its pod templates: the
// patch applies to the object as sent, adds that and nothing else, changes
// nothing when applied twice, and the patched object needs no more patching.
func checkPatch(t *testing.T, mux http.Handler, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	if len(resp.Patch) == 0 {
		if resp.PatchType != nil {
			t.Fatalf("patch type %s without a patch", *resp.PatchType)
		}
		return
	}
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("a patch with allowed=%v and patch type %v", resp.Allowed, resp.PatchType)
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("patch is no JSON patch: %v: %s", err, resp.Patch)
	}
	patched, err := patch.Apply(req.Object.Raw)
	if err != nil {
		t.Fatalf("patch %s does not apply to the object: %v", resp.Patch, err)
	}
	twice, err := patch.Apply(patched)
	if err != nil || !reflect.DeepEqual(jsonValue(t, twice), jsonValue(t, patched)) {
		t.Fatalf("patch %s applied twice: %v: %s, want %s", resp.Patch, err, twice, patched)
	}

	obj, _, err := policy.Codecs.UniversalDeserializer().Decode(req.Object.Raw, nil, nil)
	if err != nil {
		t.Fatalf("a patch for an object that does not decode: %v", err)
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("a patch for a %T", obj)
	}
	want := m.GetLabels()[MutationLabel]
	allowed := map[string]bool{}
	for _, tmpl := range policy.PodTemplates(obj) {
		allowed["/"+strings.ReplaceAll(tmpl.Path.String(), ".", "/")+"/nodeSelector/"+jsonPointer.Replace(tu.Zone)] = true
	}
	added := map[string]any{}
	additions(t, "", jsonValue(t, req.Object.Raw), jsonValue(t, patched), added)
	if len(added) == 0 {
		t.Fatalf("patch %s adds nothing", resp.Patch)
	}
	for path, v := range added {
		if !allowed[path] || v != want {
			t.Fatalf("patch %s adds %s=%v, want only %q in a pod template's nodeSelector[%s]", resp.Patch, path, v, want, tu.Zone)
		}
	}

	again := *req
	again.Object = runtime.RawExtension{Raw: patched}
	w := post(mux, PathMutate, reviewBody(t, admission.Request{AdmissionRequest: again}))
	if out := answer(t, w.Code, w.Body.Bytes()); !out.Response.Allowed || len(out.Response.Patch) > 0 {
		t.Fatalf("the patched object is patched again: %s", w.Body)
	}
}

// fuzzSeeds are AdmissionReviews the API server sends, one per kind the
// webhook judges, for f.Add; the hand-made malformed ones are files under
// testdata/fuzz.
func fuzzSeeds(t testing.TB) [][]byte {
	worker := func(b *tu.ObjectBuilder) runtime.Object { return b.Labels("app", "worker").Obj() }
	labelled := func(b *tu.ObjectBuilder) runtime.Object {
		return b.Labels("app", "worker").ObjectLabels(MutationLabel, "pod-2").Obj()
	}
	example := examplePolicy(t)
	example.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PlacementPolicy"}
	reqs := []admission.Request{
		request(t, admissionv1.Create, worker(tu.Pod("apps", "worker-0")), nil, admin),
		request(t, admissionv1.Create, worker(tu.Deployment("apps", "worker").InDC("pod-2")), nil, admin),
		request(t, admissionv1.Update, worker(tu.Deployment("apps", "worker")), worker(tu.Deployment("apps", "worker").InDC("pod-1")), admin),
		request(t, admissionv1.Create, worker(tu.CronJob("apps", "worker")), nil, admin),
		request(t, admissionv1.Create, worker(tu.ReplicationController("apps", "worker").InDC("pod-1")), nil, admin),
		request(t, admissionv1.Create, tu.Binding("kube-system", "etcd-new", "pod-1-2"), nil, admin),
		request(t, admissionv1.Create, tu.Pod("kube-system", "etcd-pod-3-1").Labels("component", "etcd").NodeName("pod-3-1").Obj(), nil, admin),
		request(t, admissionv1.Update, tu.Node("pod-1-1").InDC("pod-2").Obj(), tu.Node("pod-1-1").InDC("pod-1").Obj(), kubelet),
		request(t, admissionv1.Create, &example, nil, admin),
		request(t, admissionv1.Delete, worker(tu.Deployment("apps", "worker")), nil, admin),
		request(t, admissionv1.Create, labelled(tu.Deployment("apps", "worker")), nil, admin),
		request(t, admissionv1.Create, labelled(tu.CronJob("apps", "worker")), nil, admin),
		request(t, admissionv1.Create, labelled(tu.Pod("apps", "worker-1").NodeSelector("disk", "ssd")), nil, admin),
		request(t, admissionv1.Create, labelled(tu.PodTemplate("apps", "worker")), nil, admin),
	}
	out := make([][]byte, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, reviewBody(t, r))
	}
	return out
}

// FuzzValidateHTTP sends arbitrary bodies to /validate as served, judged
// with the MacStadium example policy: every body gets an AdmissionReview
// answer, never a panic, a denial always says why, and a decoded request
// gets its uid back.
func FuzzValidateHTTP(f *testing.F) {
	discardLogs()
	fx := newFixture(f, examplePolicy(f))
	mux := served(fx.h)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, fx, "judged", body, post(mux, PathValidate, body))
	})
}

// FuzzMutateHTTP is FuzzValidateHTTP for /mutate, and asserts that a patch
// only ever adds the labelled datacenter to pod templates' nodeSelectors.
func FuzzMutateHTTP(f *testing.F) {
	discardLogs()
	fx := newFixture(f, examplePolicy(f))
	mux := served(fx.h)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, resp := checkAnswer(t, fx, "mutated", body, post(mux, PathMutate, body))
		if req == nil {
			return
		}
		checkPatch(t, mux, req, resp)
	})
}

// TestAdmissionMalformed pins what each malformed request gets, through a
// real HTTP server: controller-runtime answers HTTP 200 with a denial for
// what it cannot read, and the handlers admit what they do not judge and
// deny what they cannot, each with a message naming what is wrong.
func TestAdmissionMalformed(t *testing.T) {
	fx := newFixture(t, examplePolicy(t))
	srv := httptest.NewServer(served(fx.h))
	t.Cleanup(srv.Close)

	worker := tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(MutationLabel, "pod-2").Obj()
	valid := request(t, admissionv1.Create, worker, nil, admin)
	review := func(edit func(r *admissionv1.AdmissionRequest)) []byte {
		r := valid
		r.AdmissionRequest = *valid.DeepCopy()
		edit(&r.AdmissionRequest)
		return reviewBody(t, r)
	}
	withObject := func(raw string) []byte {
		return review(func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(raw) })
	}
	bigPod := func(size int) []byte {
		pod := tu.Pod("apps", "big").Labels("app", "web").Annotations("note", strings.Repeat("x", size)).Obj()
		return reviewBody(t, request(t, admissionv1.Create, pod, nil, admin))
	}
	// verdict is what one webhook says: allowed, the status code, a
	// fragment of the message, and whether it patches.
	type verdict struct {
		allowed bool
		code    int32
		message string
		patched bool
	}
	allow := func(message string) verdict { return verdict{true, http.StatusOK, message, false} }
	deny := func(code int32, message string) verdict { return verdict{false, code, message, false} }
	both := func(v verdict) [2]verdict { return [2]verdict{v, v} }
	tests := []struct {
		name        string
		body        []byte
		contentType string // application/json if empty
		// apiVersion and uid the answer carries; both empty for
		// controller-runtime's untyped error answer.
		apiVersion, uid string
		want            [2]verdict // of /validate and /mutate
	}{
		{name: "empty body", body: nil, want: both(deny(400, "request body is empty"))},
		{name: "not JSON", body: []byte(`{"apiVersion":`), want: both(deny(400, "unexpected end of JSON input"))},
		{name: "wrong content type", body: reviewBody(t, valid), contentType: "application/yaml",
			want: both(deny(400, "contentType=application/yaml, expected application/json"))},
		// controller-runtime stops reading at 7 MiB; a body of exactly
		// that size is refused too.
		{name: "over the size limit", body: bigPod(crMaxRequestSize),
			want: both(deny(413, "request entity is too large; limit is 7340032 bytes"))},
		{name: "at the size limit", body: bytes.Repeat([]byte(" "), crMaxRequestSize),
			want: both(deny(413, "request entity is too large; limit is 7340032 bytes"))},
		// Past the API server's 3 MiB object limit, under controller-runtime's:
		// judged like any other.
		{name: "4 MiB object", body: bigPod(4 << 20), apiVersion: "admission.k8s.io/v1", uid: "uid-1", want: both(allow(""))},
		{name: "unknown kind", apiVersion: "admission.k8s.io/v1", uid: "uid-1", body: review(func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
			r.Resource = metav1.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
			r.Object.Raw = []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"apps","labels":{"app":"worker"}}}`)
		}), want: [2]verdict{allow("Widget.example.com is not judged by placement policies"), allow("Widget.example.com has no pod template")}},
		{name: "unknown operation", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: review(func(r *admissionv1.AdmissionRequest) { r.Operation = "PATCH" }),
			want: [2]verdict{allow(`operation "PATCH" is not judged`), allow(`operation "PATCH" is not mutated`)}},
		{name: "no operation", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: review(func(r *admissionv1.AdmissionRequest) { r.Operation = "" }),
			want: [2]verdict{allow(`operation "" is not judged`), allow(`operation "" is not mutated`)}},
		{name: "missing object", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: review(func(r *admissionv1.AdmissionRequest) { r.Object.Raw = nil }),
			want: both(deny(400, "dc-webhook cannot decode Deployment apps/worker: request carries no object"))},
		{name: "object is an array", apiVersion: "admission.k8s.io/v1", uid: "uid-1", body: withObject(`[1,2]`),
			want: both(deny(400, "dc-webhook cannot decode Deployment apps/worker: couldn't get version/kind"))},
		{name: "object without kind", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: withObject(`{"apiVersion":"apps/v1","metadata":{"name":"worker"}}`),
			want: both(deny(400, "dc-webhook cannot decode Deployment apps/worker: Object 'Kind' is missing"))},
		{name: "object in an unknown version", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: withObject(`{"apiVersion":"apps/v2","kind":"Deployment","metadata":{"name":"worker"}}`),
			want: both(deny(400, "Deployment is judged as apps/v1 only, not apps/v2"))},
		// Registered, but not the version the webhook configurations ask
		// for: refused, not waved through as a kind the rules ignore.
		{name: "object in an old version", apiVersion: "admission.k8s.io/v1", uid: "uid-1",
			body: withObject(`{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"worker","labels":{"app":"worker"}}}`),
			want: both(deny(400, "Deployment is judged as apps/v1 only, not apps/v1beta1"))},
		{name: "AdmissionReview v1beta1", apiVersion: "admission.k8s.io/v1beta1", uid: "uid-1",
			body: bytes.Replace(reviewBody(t, valid), []byte(`admission.k8s.io/v1"`), []byte(`admission.k8s.io/v1beta1"`), 1),
			want: [2]verdict{deny(422, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]: Required value"), {true, 200, "", true}}},
		// controller-runtime decodes any apiVersion and kind as a review and
		// echoes them; an API server never sends such a review.
		{name: "AdmissionReview of an unknown version", apiVersion: "admission.k8s.io/v2", uid: "uid-1",
			body: bytes.Replace(reviewBody(t, valid), []byte(`admission.k8s.io/v1"`), []byte(`admission.k8s.io/v2"`), 1),
			want: [2]verdict{deny(422, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]: Required value"), {true, 200, "", true}}},
		// YAML is decoded too, and null is an empty review.
		{name: "JSON null", body: []byte("null"), apiVersion: "admission.k8s.io/v1",
			want: [2]verdict{allow(`operation "" is not judged`), allow(`operation "" is not mutated`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contentType := tt.contentType
			if contentType == "" {
				contentType = "application/json"
			}
			for i, path := range []string{PathValidate, PathMutate} {
				want := tt.want[i]
				hr, err := http.Post(srv.URL+path, contentType, bytes.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(hr.Body)
				_ = hr.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				out := answer(t, hr.StatusCode, body)
				resp := out.Response
				if resp.Result == nil || resp.Allowed != want.allowed || resp.Result.Code != want.code ||
					!strings.Contains(resp.Result.Message, want.message) || (!want.allowed && resp.Result.Message == "") {
					t.Errorf("%s: answer %s, want allowed=%v, code %d and a message with %q", path, body, want.allowed, want.code, want.message)
				}
				if patched := len(resp.Patch) > 0; patched != want.patched {
					t.Errorf("%s: patch %s, want one: %v", path, resp.Patch, want.patched)
				}
				if out.APIVersion != tt.apiVersion || string(resp.UID) != tt.uid {
					t.Errorf("%s: answer apiVersion %q uid %q, want %q %q", path, out.APIVersion, resp.UID, tt.apiVersion, tt.uid)
				}
			}
			if got := counterValue(fx.h.Metrics.Panics); got != 0 {
				t.Fatalf("the handler panicked %v times", got)
			}
		})
	}
}
