// Package hack tests the shell helpers of hack/lib.sh that the local-stack,
// demo, image and release scripts share.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// bash runs script with lib.sh sourced and a one-second progress interval;
// it returns stdout and stderr. Each script waits for what it expects to
// see rather than for a time: no assertion here depends on how fast the
// machine is.
func bash(t *testing.T, dir, script string) (string, string, error) {
	t.Helper()
	lib, err := filepath.Abs("lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	stderrFile := filepath.Join(dir, "stderr")
	cmd := exec.Command("bash", "-c", "set -euo pipefail; LOG_TAG=t; source "+lib+"; PROGRESS_EVERY=1\n"+script)
	cmd.Dir = dir
	f, err := os.Create(stderrFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stderr = f
	out, err := cmd.Output()
	stderr, _ := os.ReadFile(stderrFile)
	return string(out), string(stderr), err
}

// The ticker says what the step is, how long it has run and the last line
// of the step's log, while the step runs; it is gone when the step ends,
// and the step's exit status comes back.
func TestProgressRunTicksWithTheLogsLastLineAndEndsWithTheStep(t *testing.T) {
	dir := t.TempDir()
	// the step logs a line, then waits until a tick has been printed (the
	// script's stderr is the file "stderr"), then fails with status 3
	stdout, stderr, err := bash(t, dir, `
step() {
  echo "compiling k8s.io/apiserver/pkg/server"
  for i in $(seq 1 600); do grep -q "still running" stderr && exit 3; sleep 0.1; done
  exit 9
}
rc=0
progress_run "building Kubernetes" step.log step || rc=$?
echo "rc=$rc"
echo "children=$(jobs -p | wc -l)"
echo "ticker=${PROGRESS_PID:-none}"
`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, stderr)
	}
	for _, want := range []string{"rc=3\n", "children=0\n", "ticker=none\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", strings.TrimSpace(want), stdout)
		}
	}
	tick := regexp.MustCompile(`(?m)^\[t +\d+\.\ds\] building Kubernetes: still running after \d+s; last: compiling k8s\.io/apiserver/pkg/server$`)
	if !tick.MatchString(stderr) {
		t.Errorf("no tick with the step, its time and its log's last line on stderr:\n%s", stderr)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "step.log")); !strings.Contains(string(log), "compiling") {
		t.Errorf("the step's output did not go to its log: %q", log)
	}
}

// A ticker started on a PID ends by itself when that process ends, and
// progress_stop stops one by its PID.
func TestProgressStartEndsWithItsProcessAndStopsByPID(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := bash(t, dir, `
( for i in $(seq 1 600); do grep -q "still running" stderr && exit 0; sleep 0.1; done ) &
step=$!
progress_start "waiting on the step" $step
ticker=$PROGRESS_PID
wait $step
for i in $(seq 1 100); do alive $ticker || break; sleep 0.1; done
alive $ticker && echo "ticker outlived its process" || echo "ticker ended with its process"

sleep 600 &
long=$!
progress_start "a long step" $long
ticker=$PROGRESS_PID
progress_stop $ticker
alive $ticker && echo "ticker still alive" || echo "ticker stopped"
kill $long
`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, stderr)
	}
	for _, want := range []string{"ticker ended with its process", "ticker stopped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
}

// wait_for says it is still waiting, and for how long of its limit.
func TestWaitForSaysItIsStillWaiting(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := bash(t, dir, `
ready() { grep -q "still waiting" stderr; }
wait_for 60 "the API server" ready && echo ready
wait_for 1 "nothing" false || echo "gave up"
`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "ready\n") || !strings.Contains(stdout, "gave up\n") {
		t.Errorf("stdout = %q, want ready and gave up", stdout)
	}
	if !regexp.MustCompile(`still waiting for the API server \(\d+s of at most 60s\)`).MatchString(stderr) {
		t.Errorf("no progress line from wait_for on stderr:\n%s", stderr)
	}
}

// A nested ticker's line reads "outer > inner > what" in the outer one.
func TestLastLineFlattensNestedTicks(t *testing.T) {
	dir := t.TempDir()
	log := "[local-kube   61.0s] building Kubernetes v1.37.2: still running after 1m00s; last: k8s.io/kubectl/pkg/cmd\n\n"
	if err := os.WriteFile(filepath.Join(dir, "l"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := bash(t, dir, `last_line l`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, stderr)
	}
	if want := "building Kubernetes v1.37.2 > k8s.io/kubectl/pkg/cmd\n"; stdout != want {
		t.Errorf("last_line = %q, want %q", stdout, want)
	}
}

// A daemon started through close_fds holds no descriptor of its caller's
// beyond stdin, stdout and stderr: no lock the caller took (flock LOCK make
// demo) stays held for the daemon's life. $! is the daemon's own PID.
func TestCloseFdsLeavesADaemonOnlyItsStandardDescriptors(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := bash(t, dir, `
exec 7> lock
flock 7
( close_fds; exec setsid sleep 600 ) > /dev/null 2>&1 < /dev/null &
d=$!
for i in $(seq 1 100); do [ "$(cat /proc/$d/comm)" = sleep ] && break; sleep 0.1; done
echo "comm=$(cat /proc/$d/comm) fds=$(ls /proc/$d/fd | sort -n | tr '\n' ' ')"
kill $d
`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, stderr)
	}
	if want := "comm=sleep fds=0 1 2 \n"; stdout != want {
		t.Errorf("daemon: %q, want %q", stdout, want)
	}
}
