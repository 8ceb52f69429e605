package status

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	dcstatus "github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lastFrame is what status -w printed last: the text after the last
// frame separator.
func lastFrame(out string) string {
	if i := strings.LastIndex(out, "\n--- "); i >= 0 {
		return out[i:]
	}
	return out
}

// TestOutageDay powers pod-3 off under a running `kubectl dc status -w`:
// a new frame says pod-3 is down first, a one-shot report says so in JSON
// and as the first, critical finding with what still holds; when pod-3
// comes back a new frame no longer says so; Ctrl-C ends the watch with
// exit 0.
func TestOutageDay(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	w := exec.Command(bin, "--kubeconfig", c.Kubeconfig(), "status", "-w", "--cache-dir", t.TempDir())
	w.Stdout, w.Stderr = &out, &errOut
	w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	defer func() {
		if w.ProcessState == nil {
			_ = w.Process.Kill()
		}
	}()
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			return cond(out.String()), nil
		})
		if err != nil {
			t.Fatalf("status -w never showed %s; stdout:\n%s\nstderr:\n%s", what, out.String(), errOut.String())
		}
	}
	waitFor("a first report", func(s string) bool { return strings.Contains(s, "survives loss of:") })

	if err := c.DatacenterDown(ctx, "pod-3"); err != nil {
		t.Fatal(err)
	}
	up := false
	defer func() {
		if !up {
			_ = c.DatacenterUp(ctx, "pod-3")
		}
	}()
	waitFor("pod-3 down", func(s string) bool {
		return strings.Contains(lastFrame(s), "DATACENTER pod-3 IS DOWN") && strings.Contains(lastFrame(s), "pod-3 (DOWN)")
	})

	stdout, stderr, _ := cluster.KubectlDC(t, c, time.Minute, "status", "-o", "json", "--cache-dir", t.TempDir())
	var r dcstatus.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("status -o json: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, `"kind": "StatusReport"`) || !strings.Contains(stdout, `"apiVersion": "kubectl-dc.io/v1alpha1"`) {
		t.Errorf("status -o json carries no apiVersion and kind:\n%s", stdout)
	}
	for _, d := range r.Datacenters {
		if d.Down != (d.Name == "pod-3") {
			t.Errorf("datacenter %s: down = %v", d.Name, d.Down)
		}
		for _, m := range d.Members {
			if strings.ContainsAny(m, "*()") {
				t.Errorf("datacenter %s: member %q carries a table decoration", d.Name, m)
			}
		}
	}
	if len(r.Findings) == 0 || r.Findings[0].Severity != "critical" || !strings.HasPrefix(r.Findings[0].Message, "datacenter pod-3 is DOWN") ||
		!strings.Contains(r.Findings[0].Message, "etcd keeps quorum with 4 of 5 voters") {
		t.Errorf("first finding = %+v, want pod-3 down with what still holds", r.Findings)
	}

	if err := c.DatacenterUp(ctx, "pod-3"); err != nil {
		t.Fatal(err)
	}
	up = true
	waitFor("pod-3 back", func(s string) bool {
		f := lastFrame(s)
		return strings.Contains(s, "DATACENTER pod-3 IS DOWN") && strings.Contains(f, "survives loss of:") && !strings.Contains(f, "IS DOWN")
	})

	if err := w.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("status -w after Ctrl-C: %v; stderr:\n%s", err, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("status -w did not end on Ctrl-C")
	}
}
