package drain

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// nodePatchConcurrency bounds the node patches of one cordon or uncordon
// in flight: a datacenter's nodes are patched together, not one after
// another, within what the client's rate limit lets through anyway.
const nodePatchConcurrency = 16

// patchNodes sends the merge patch to every node in names, in parallel,
// and returns the error of each (nil where the patch was applied), in the
// order of names; what names each error with what (cordon, uncordon).
func patchNodes(ctx context.Context, c kubernetes.Interface, names []string, patch []byte, what string) []error {
	errs := make([]error, len(names))
	sem := make(chan struct{}, nodePatchConcurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := c.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				errs[i] = fmt.Errorf("%s node %s: %w", what, name, err)
			}
		}()
	}
	wg.Wait()
	return errs
}
