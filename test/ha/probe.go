package ha

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// DryRunBad creates, as a server-side dry run, a worker Deployment that
// selects no datacenter, which the MacStadium policy denies: the error
// says what answered.
func DryRunBad(ctx context.Context, cs kubernetes.Interface, ns string) error {
	d := tu.Deployment(ns, "probe").Labels("app", "worker").Deployment()
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// DeniedByPolicy reports whether err is the webhook's field-level denial,
// not a failure to call it.
func DeniedByPolicy(err error) bool {
	return err != nil && strings.Contains(err.Error(), "nodeSelector") && !strings.Contains(err.Error(), "failed calling webhook")
}

// WaitEnforced waits until twenty denials in a row come from the policy:
// whichever replica the API server picks answers.
func WaitEnforced(ctx context.Context, cs kubernetes.Interface, ns string) error {
	streak := 0
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		last = DryRunBad(ctx, cs, ns)
		if DeniedByPolicy(last) {
			streak++
		} else {
			streak = 0
		}
		return streak >= 20, nil
	})
	if err != nil {
		return fmt.Errorf("webhook not enforcing through the Service: %w (last answer: %w)", err, last)
	}
	return nil
}

// WaitNotCalled waits until the API server no longer calls the webhook
// (after Uninstall): the probe Deployment is admitted.
func WaitNotCalled(ctx context.Context, cs kubernetes.Interface, ns string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = DryRunBad(ctx, cs, ns)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("webhook still called after its configurations were deleted: %w (last answer: %w)", err, last)
	}
	return nil
}
