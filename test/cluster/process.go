package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one control-plane binary the cluster runs. Its arguments are
// kept so that a stopped process can be started again the same way.
type process struct {
	Name string   `json:"name"`
	Bin  string   `json:"bin"`
	Args []string `json:"args"`
	// Env is added to the caller's environment.
	Env []string `json:"env,omitempty"`
	// UID, when not 0, is the user the process runs as (PostgreSQL
	// refuses root).
	UID uint32 `json:"uid,omitempty"`
	PID int    `json:"pid,omitempty"`

	cmd  *exec.Cmd
	done chan struct{}
	// log is the path of its output.
	log string
}

// exited is the error of a process that died while awaited, with the last
// lines of its log: the cluster's directory, and so the log, is gone once a
// failed start has stopped everything.
func (p *process) exited() error {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return fmt.Errorf("%s exited; the end of its log:\n%s", p.Name, strings.Join(lines, "\n"))
}

// start runs the process with its output in logDir/<name>.log. A detached
// process outlives the caller (dc-cluster up); otherwise the kernel kills it
// when the caller dies, so a crashed test leaves nothing behind.
func (p *process) start(logDir string, detach bool) error {
	if p.running() {
		return nil
	}
	p.log = filepath.Join(logDir, p.Name+".log")
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Bin, p.Args...)
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if p.UID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: p.UID, Gid: p.UID}
		cmd.Dir = "/"
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.PID, p.done = cmd, cmd.Process.Pid, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return nil
}

// running reports whether the process is alive. For a process started by
// another invocation (loaded state) it probes the PID.
func (p *process) running() bool {
	if p.cmd != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	return p.PID > 0 && syscall.Kill(p.PID, 0) == nil
}

// stop sends SIGTERM to the process group, then SIGKILL after grace; a
// zero grace kills at once, as a crash or a power loss would.
func (p *process) stop(grace time.Duration) error {
	if !p.running() {
		p.PID = 0
		return nil
	}
	pid := p.PID
	if grace > 0 {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for p.running() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p.running() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for i := 0; p.running() && i < 100; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if p.running() {
		return errors.New(p.Name + " did not stop")
	}
	p.PID = 0
	return nil
}
