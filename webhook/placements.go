package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// AnnotationPlacements is the annotation of the placement Lease that holds
// the member placements admitted lately, as JSON.
const AnnotationPlacements = "placement.kubectl-dc.io/placements"

// Defaults of a PlacementLedger.
const (
	// DefaultPlacementTTL is how long an admitted placement is counted
	// from the ledger: long enough for every replica's member informer to
	// see the pod bound, after which the caches count it.
	DefaultPlacementTTL = 30 * time.Second
	// placementAttempts bounds the retries of a placement that lost the
	// race for the Lease.
	placementAttempts = 8
)

// PlacementLedger serialises member placements across every replica of the
// webhook: the placements admitted lately live in one Lease on the API
// server, and a placement is admitted only by the replica that writes it
// there with the resourceVersion it judged against. Two replicas judging
// at once both read version v; the API server takes one write and answers
// the other 409 Conflict, and the loser judges again with the winner's
// placement counted. This is the one API call on the admission path, and
// only member placements (rare) make it.
type PlacementLedger struct {
	Client kubernetes.Interface
	// Namespace and Name of the Lease, which must exist (manifests/ creates
	// it); the webhook never creates it.
	Namespace, Name string
	// TTL: see DefaultPlacementTTL; 0 means the default.
	TTL time.Duration

	now func() time.Time
}

type ledgerEntry struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Node      string            `json:"node"`
	Labels    map[string]string `json:"labels,omitempty"`
	At        time.Time         `json:"at"`
}

var errPlacementConflict = errors.New("placement ledger changed meanwhile")

func (l *PlacementLedger) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

func (l *PlacementLedger) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return DefaultPlacementTTL
}

// load returns the Lease and its unexpired entries.
func (l *PlacementLedger) load(ctx context.Context) (*coordinationv1.Lease, []ledgerEntry, error) {
	lease, err := l.Client.CoordinationV1().Leases(l.Namespace).Get(ctx, l.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the placement Lease %s/%s: %w", l.Namespace, l.Name, err)
	}
	var all, live []ledgerEntry
	if raw := lease.Annotations[AnnotationPlacements]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &all); err != nil {
			// A ledger nobody can read is started afresh: the caches still
			// count every member older than the TTL.
			all = nil
		}
	}
	cutoff := l.clock().Add(-l.ttl())
	for _, e := range all {
		if e.At.After(cutoff) {
			live = append(live, e)
		}
	}
	return lease, live, nil
}

// store writes entries to lease, conditional on the resourceVersion lease
// was read at.
func (l *PlacementLedger) store(ctx context.Context, lease *coordinationv1.Lease, entries []ledgerEntry) error {
	raw, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	lease = lease.DeepCopy()
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[AnnotationPlacements] = string(raw)
	_, err = l.Client.CoordinationV1().Leases(l.Namespace).Update(ctx, lease, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return errPlacementConflict
	}
	if err != nil {
		return fmt.Errorf("writing the placement Lease %s/%s: %w", l.Namespace, l.Name, err)
	}
	return nil
}

func entryPods(entries []ledgerEntry) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(entries))
	for _, e := range entries {
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name, Labels: e.Labels},
			Spec:       corev1.PodSpec{NodeName: e.Node},
			Status:     corev1.PodStatus{Phase: corev1.PodPending},
		})
	}
	return out
}

// serialise judges the member placements of preq again with the ledger's
// placements counted, and records them there when admitted, retrying when
// another replica wrote first. It returns the verdicts (placements denied
// are not recorded, nor is a dry run), or the response to give when the
// ledger cannot be used: an error, which denies, since the rules that call
// for serialisation are Deny rules.
func (h *Handler) serialise(ctx context.Context, eng *policy.Engine, preq policy.Request, places []policy.Placement, req admission.Request) (policy.Results, *admission.Response) {
	l := h.Placements
	unusable := func(err error) *admission.Response {
		resp := admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("dc-webhook cannot serialise member placements, so it does not admit this one: %w", err))
		return &resp
	}
	for attempt := 0; attempt < placementAttempts; attempt++ {
		lease, entries, err := l.load(ctx)
		if err != nil {
			return nil, unusable(err)
		}
		var others []ledgerEntry
		for _, e := range entries {
			mine := false
			for _, p := range places {
				mine = mine || (e.Namespace == p.Pod.Namespace && e.Name == p.Pod.Name)
			}
			if !mine {
				others = append(others, e)
			}
		}
		results, err := evaluate(ctx, eng, preq, policy.WithPods(h.State, entryPods(others)))
		if err != nil {
			resp := unjudged(ctx, err, req)
			return nil, &resp
		}
		results = h.Audit.current(eng).stepAside(preq.Object, results)
		if len(results.Denied()) > 0 || dryRun(req) {
			return results, nil
		}
		now := l.clock()
		for _, p := range places {
			others = append(others, ledgerEntry{Namespace: p.Pod.Namespace, Name: p.Pod.Name, Node: p.Pod.Spec.NodeName, Labels: p.Pod.Labels, At: now})
		}
		err = l.store(ctx, lease, others)
		if err == nil {
			if h.Metrics != nil {
				h.Metrics.PlacementAttempts.Observe(float64(attempt + 1))
			}
			return results, nil
		}
		if !errors.Is(err, errPlacementConflict) {
			return nil, unusable(err)
		}
		// Lost the race: judge again against the winner's placement, after
		// a short random pause so that the losers do not collide again.
		select {
		case <-ctx.Done():
			resp := cutShort(ctx.Err())
			return nil, &resp
		case <-time.After(time.Duration(rand.Int64N(int64(5*time.Millisecond) << min(attempt, 4)))):
		}
	}
	resp := admission.Errored(http.StatusConflict, fmt.Errorf("dc-webhook: too many member placements at once for rule(s) of %s; retry", subject(req)))
	return nil, &resp
}
