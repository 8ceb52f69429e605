package webhook

import (
	"encoding/json"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// The API server calls the mutating webhooks again (reinvocationPolicy
// IfNeeded) when a mutation that runs after them changed the object, and
// nothing in the second AdmissionReview says it is one: its uid is new.
// The audit counts each request once all the same, by remembering the
// requests it audited (auditLedger).
const (
	// auditWindow is how long an audited request is remembered. A
	// reinvocation comes once the mutations after this webhook have run,
	// each bounded by its webhook's timeout (30 s at most).
	auditWindow = 30 * time.Second
	// auditMemory bounds the requests remembered: beyond it the oldest
	// are forgotten (a reinvocation of one of those is then audited as a
	// request of its own).
	auditMemory = 8192
	// auditMemoryPerRequest bounds those of one identity (pods a
	// controller creates from one template), so that telling them apart
	// stays cheap: a reinvocation follows its first call closely, after
	// few others of its identity.
	auditMemoryPerRequest = 64
)

// auditLedger tells a reinvocation of an audited request from a request
// of its own. A reinvocation is the same request (same operation, kind,
// subresource, namespace, name or generateName, user, dry run, old
// object) whose object has changed since the first call: a later mutation
// changed it, or the API server would not call again. So an invocation of
// an audited request's identity is
//   - a request of its own when its object is the same as that request's
//     was (a controller creating pods by generateName from one template
//     sends the same object each time; a reinvocation never does);
//   - a reinvocation when what the rules judge of its object (judgedHash)
//     is what the first call answered with, and that request has not been
//     reinvoked yet: its verdicts are the first call's, and it is not
//     audited again;
//   - else a request of its own (a DaemonSet's pods, whose node affinity
//     differs), or a reinvocation after a later mutation changed what the
//     rules judge (a label they select on, the placement): its verdicts
//     may differ from the first call's, and it is audited, the one case
//     where a request counts twice.
//
// The zero value is ready.
type auditLedger struct {
	mu      sync.Mutex
	records map[string][]*auditRecord // by request identity
	order   []*auditRecord            // oldest first
	// now is time.Now; tests set it.
	now func() time.Time
}

// auditRecord is one audited request.
type auditRecord struct {
	key string
	at  time.Time
	// raw is the hash of the object as the webhook was sent it; judged
	// that of what the rules judge of the object it answered with.
	raw, judged uint64
	reinvoked   bool
}

// first reports whether an invocation of the request identified by key,
// whose object hashes to raw and judged, is to be audited: it is not a
// reinvocation of a request audited within auditWindow. It returns the
// record of the audited request, for answered.
func (l *auditLedger) first(key string, raw, judged uint64) (*auditRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.expire(now)
	var reinvoked *auditRecord
	for _, r := range l.records[key] {
		if r.raw == raw {
			reinvoked = nil
			break
		}
		if reinvoked == nil && !r.reinvoked && r.judged == judged {
			reinvoked = r
		}
	}
	if reinvoked != nil {
		reinvoked.reinvoked = true
		return nil, false
	}
	r := &auditRecord{key: key, at: now, raw: raw, judged: judged}
	if l.records == nil {
		l.records = map[string][]*auditRecord{}
	}
	l.records[key] = append(l.records[key], r)
	if rs := l.records[key]; len(rs) > auditMemoryPerRequest {
		l.forget(rs[0])
	}
	l.order = append(l.order, r)
	if len(l.order) > auditMemory {
		l.forget(l.order[0])
		l.order = l.order[1:]
	}
	return r, true
}

// answered records that the webhook answered the audited request r with
// an object whose judged fields hash to judged (it injected a
// nodeSelector for a policy it enforces): a reinvocation carries that
// object, with the later mutations.
func (l *auditLedger) answered(r *auditRecord, judged uint64) {
	if r == nil {
		return
	}
	l.mu.Lock()
	r.judged = judged
	l.mu.Unlock()
}

// expire forgets the records older than auditWindow; l.mu is held.
func (l *auditLedger) expire(now time.Time) {
	i := 0
	for i < len(l.order) && now.Sub(l.order[i].at) > auditWindow {
		l.forget(l.order[i])
		i++
	}
	l.order = l.order[i:]
}

// forget removes r from l.records; l.mu is held.
func (l *auditLedger) forget(r *auditRecord) {
	rs := l.records[r.key]
	for i := range rs {
		if rs[i] == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(l.records, r.key)
	} else {
		l.records[r.key] = rs
	}
}

// requestIdentity is what every invocation of one admission request
// shares (its uid does not: each call gets a new one), old being the
// decoded old object of an UPDATE.
func requestIdentity(req admission.Request, obj, old runtime.Object) string {
	var b strings.Builder
	add := func(s string) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	add(string(req.Operation))
	add(req.Kind.Group)
	add(req.Kind.Kind)
	add(req.SubResource)
	add(req.Namespace)
	add(req.Name)
	if m, err := meta.Accessor(obj); err == nil {
		add(m.GetName())
		add(m.GetGenerateName())
	}
	add(req.UserInfo.Username)
	add(req.UserInfo.UID)
	if dryRun(req) {
		add("dry-run")
	}
	if old != nil {
		if m, err := meta.Accessor(old); err == nil {
			add(string(m.GetUID()))
			add(m.GetResourceVersion())
		}
	}
	return b.String()
}

// hashBytes is the FNV-1a hash of data.
func hashBytes(data []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(data)
	return h.Sum64()
}

// judgedTemplate is what the pinned rules read of a pod template.
type judgedTemplate struct {
	Labels                    map[string]string                 `json:"l,omitempty"`
	Learner                   string                            `json:"r,omitempty"`
	NodeName                  string                            `json:"n,omitempty"`
	NodeSelector              map[string]string                 `json:"s,omitempty"`
	Affinity                  *corev1.Affinity                  `json:"a,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"t,omitempty"`
}

// judgedHash hashes what the audited rules (and their compiled policies)
// read of obj in req: the object's labels that their
// selectors and datacenterFromLabel name (keys; all of them when keys is
// nil), and per pod template its placement, its learner annotation and
// those of its labels, or all its labels on an UPDATE of a workload,
// where any change of them makes the update judged. Two objects with the
// same hash get the same verdicts in the same request.
func judgedHash(req admission.Request, obj runtime.Object, keys map[string]bool) uint64 {
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0
	}
	only := func(l map[string]string) map[string]string {
		if keys == nil {
			return l
		}
		out := map[string]string{}
		for k, v := range l {
			if keys[k] {
				out[k] = v
			}
		}
		return out
	}
	_, isPod := obj.(*corev1.Pod)
	wholeTemplateLabels := req.Operation == admissionv1.Update && !isPod
	var j struct {
		Labels    map[string]string `json:"l,omitempty"`
		Templates []judgedTemplate  `json:"t,omitempty"`
	}
	j.Labels = only(m.GetLabels())
	for _, t := range policy.PodTemplates(obj) {
		jt := judgedTemplate{
			Learner:                   t.Meta.Annotations[policy.AnnotationLearner],
			NodeName:                  t.Spec.NodeName,
			NodeSelector:              t.Spec.NodeSelector,
			Affinity:                  t.Spec.Affinity,
			TopologySpreadConstraints: t.Spec.TopologySpreadConstraints,
		}
		if wholeTemplateLabels {
			jt.Labels = t.Meta.Labels
		} else {
			jt.Labels = only(t.Meta.Labels)
		}
		j.Templates = append(j.Templates, jt)
	}
	data, err := json.Marshal(&j)
	if err != nil {
		return 0
	}
	return hashBytes(data)
}
