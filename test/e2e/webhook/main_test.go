// Package webhook_test drives dc-webhook, running as a local process, through
// the real API servers of the local MacStadium control plane, registered from
// the webhook configurations of manifests/ rendered with a loopback URL.
package webhook_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/pinnedrows"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

func TestMain(m *testing.M) {
	// The suite's controller-runtime clients have nothing to log.
	ctrllog.SetLogger(logr.Discard())
	code := cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()})
	if local != nil {
		_ = local.Stop()
	}
	os.Exit(code)
}

var (
	setupOnce sync.Once
	setupErr  error
	local     *webhooktest.Local
	root      string
)

// Rules of the extra policies the suite installs besides the MacStadium
// example: the same check with the Warn and Audit actions.
const (
	warnApp  = pinnedrows.WarnApp
	denyRule = pinnedrows.DenyRule
	etcdRule = "macstadium/etcd"
	dcLabel  = pinnedrows.DCLabel
)

// env returns the shared cluster with the CRD, the MacStadium policy, the
// e2e policy and the webhook installed, setting them up on first use.
func env(t *testing.T) *cluster.Cluster {
	t.Helper()
	c := cluster.Require(t)
	setupOnce.Do(func() { setupErr = setup(c) })
	if setupErr != nil {
		t.Fatalf("webhook setup: %v", setupErr)
	}
	return c
}

func setup(c *cluster.Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if root, err = cluster.ModuleRoot(); err != nil {
		return err
	}
	manifests := filepath.Join(root, "manifests")
	if err := webhooktest.InstallExample(ctx, c.RESTConfig(), manifests); err != nil {
		return err
	}
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		return err
	}
	actions := pinnedrows.Actions()
	if err := cl.Create(ctx, actions); err != nil {
		return fmt.Errorf("creating policy e2e-actions: %w", err)
	}
	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		return err
	}
	// The local process scopes its own configurations, as the deployed
	// replicas do theirs: every row below runs through the scoped
	// matchConditions.
	local, err = webhooktest.Start(ctx, webhooktest.Options{
		Binary: bin, Kubeconfig: c.Kubeconfig(), REST: c.RESTConfig(), ManifestsDir: manifests,
		Args: []string{"--webhook-configuration", "dc-webhook" + webhook.LocalSuffix},
	})
	if err != nil {
		return err
	}
	// Ready when the API server calls the webhook and the engine holds all
	// three rules' policies: a warn-me Deployment draws a warning.
	err = local.Install(ctx, func(ctx context.Context) (bool, error) {
		warnings := &recorder{}
		wcs := clientWithWarnings(c, warnings)
		d := tu.Deployment("default", "probe").Labels("app", warnApp).Deployment()
		_, err := wcs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && len(warnings.get()) > 0, nil
	})
	if err != nil {
		return err
	}
	return waitScoped(ctx, c)
}

// waitScoped waits until the local webhook has scoped its validating
// configuration's workload webhooks to the rules' selectors.
func waitScoped(ctx context.Context, c *cluster.Cluster) error {
	return webhooktest.WaitCondition(ctx, c.Client(), "dc-webhook"+webhook.LocalSuffix, "selected-by-a-rule", func(expr string) bool { return expr != "true" })
}

// recorder collects the API server's warning headers.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, text)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func clientWithWarnings(c *cluster.Cluster, r *recorder) kubernetes.Interface {
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.WarningHandler = r
	return kubernetes.NewForConfigOrDie(cfg)
}

// eventually polls cond for up to a minute.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, cond); err != nil {
		t.Fatalf("%s: %v\nwebhook log:\n%s", what, err, local.LogTail())
	}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
