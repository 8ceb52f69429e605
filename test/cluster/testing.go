package cluster

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

var shared *Cluster

// TestMain starts the package's shared cluster, runs the tests and stops
// it. Use it as `func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m, opts)) }`.
// With -short the cluster is not started and tests that call Shared skip.
// KEEP_CLUSTER=1 keeps a failed run's directory for its logs.
func TestMain(m *testing.M, opts Options) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared = c
	code := m.Run()
	if code != 0 && os.Getenv("KEEP_CLUSTER") != "" {
		c.ownsDir = false
		fmt.Fprintf(os.Stderr, "cluster: kept %s for its logs\n", c.Dir)
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: stop:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Shared returns the cluster TestMain started, or nil under -short.
func Shared() *Cluster { return shared }

// Require returns the shared cluster, skipping t when there is none (-short).
func Require(t testing.TB) *Cluster {
	t.Helper()
	if shared == nil {
		t.Skip("no local control plane (-short)")
	}
	return shared
}

var nsClean = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a fresh namespace for t, waits until its default
// ServiceAccount exists (pods need it), and deletes it when t ends.
func Namespace(t testing.TB, c *Cluster) string {
	t.Helper()
	name := nsClean.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + randomToken()[:6]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := c.Client()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Client().CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", name, err)
	}
	return name
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// BuildBinary builds a main package of this module (e.g. "./cmd/kubectl-dc")
// into .cache/bin and returns the binary's path. Each test process builds a
// package once. The build is `go install` into .cache/bin/stage under a
// file lock, so that the test packages of one `make test` link each binary
// once between them (go install skips an up-to-date binary); the result is
// copied and renamed into place, so a binary another test process is
// running is never rewritten under it.
func BuildBinary(pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := built[pkg]; ok {
		return path, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "bin")
	stage := filepath.Join(dir, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	// Built as make build builds it, sharing its build cache.
	cmd := exec.Command("go", "install", "-trimpath", pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+stage)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", pkg, err, msg)
	}
	name := filepath.Base(pkg)
	out := filepath.Join(dir, name)
	if err := copyFile(filepath.Join(stage, name), out); err != nil {
		return "", err
	}
	built[pkg] = out
	return out, nil
}

// copyFile copies the executable src to dst through a temporary file and
// a rename.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// KubectlDC runs the kubectl-dc binary of this checkout (built once per test
// process) against c with args, and returns its stdout, stderr and exit
// code. It fails t when the command cannot run or outlives timeout.
func KubectlDC(t testing.TB, c *Cluster, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// Build first: the first call of a test process compiles the binary,
	// which on a loaded machine takes longer than a command may.
	if _, err := BuildBinary("./cmd/kubectl-dc"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stdout, stderr, code, err := RunKubectlDC(ctx, c, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, code
}

// RunKubectlDC runs the built kubectl-dc against c until ctx ends and
// returns its output and exit code; err says why it could not run or
// finish. Host names resolve through c's HostsFile when it has one. Safe
// to call from any goroutine.
func RunKubectlDC(ctx context.Context, c *Cluster, args ...string) (stdout, stderr string, code int, err error) {
	bin, err := BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		return "", "", 0, err
	}
	cmd := c.Command(ctx, bin, append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out.String(), errOut.String(), 0, fmt.Errorf("kubectl dc %s did not finish in time: %s", strings.Join(args, " "), errOut.String())
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode(), nil
	case err != nil:
		return out.String(), errOut.String(), 0, fmt.Errorf("kubectl dc %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0, nil
}
