package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a program a test started; it is stopped, by its PID, when the
// test ends.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	killed  bool // by Kill: its exit error is expected
	// termExitOK: a non-zero exit after SIGTERM is the program's normal
	// stop (kube-scheduler without leader election exits 1)
	termExitOK bool
}

// ProvisionerBinary is the binary `make build` writes.
func (s *Stack) ProvisionerBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(s.RepoRoot, "_output", "bin", "cinder-provisioner")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("provisioner binary missing (run make build): %v", err)
	}
	return bin
}

// Start runs bin with args, its output in a log file under the test's temp
// dir (printed when the test fails). Cleanup sends SIGTERM, then SIGKILL.
func Start(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create log file: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(t); err != nil && !p.killed && !p.termExitOK {
			t.Logf("%s exited: %v", name, err)
		}
		if t.Failed() {
			t.Logf("--- log of %s (pid %d) ---\n%s", name, cmd.Process.Pid, tail(p.Log(), 60))
		}
	})
	return p
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log returns what the process printed so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end: a crash.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to 20 s, then SIGKILL. It returns the
// process's exit error (nil for exit status 0).
func (p *Process) Stop(t testing.TB) error {
	t.Helper()
	if p.Exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within 20s of SIGTERM", p.Name)
	}
}

// LogContains reports whether the log holds s.
func (p *Process) LogContains(s string) bool { return strings.Contains(p.Log(), s) }

// AnyRunning reports whether one of procs has not exited.
func AnyRunning(procs []*Process) bool {
	for _, p := range procs {
		if !p.Exited() {
			return true
		}
	}
	return false
}
