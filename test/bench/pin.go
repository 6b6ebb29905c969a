package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// With -pin the bench splits the two cores the way a real deployment
// splits machines: every Cinder process (API, scheduler, volume, database,
// message queue, target, Keystone) on CPU 0; the Kubernetes control plane,
// the provisioner and the bench itself on CPU 1. Our run and the floor then
// get the same Cinder; the Kubernetes control plane's own work no longer
// takes Cinder's CPU, as it does not when they are different machines.
// Affinities are set by PID, with taskset, and reset to every core at the
// end.

var (
	cinderComms = map[string]bool{
		"cinder-api": true, "cinder-volume": true, "cinder-schedule": true, "privsep-helper": true,
		"mariadbd": true, "beam.smp": true, "epmd": true, "tgtd": true, "uwsgi_python311": true,
	}
	kubeComms = map[string]bool{"kube-apiserver": true, "etcd": true, "kube-controller": true}
)

// pinned is the CPU list given to provisioner processes the bench starts;
// "" when not pinning.
var pinned string

func pinStack() error {
	if err := setAffinity(cinderComms, "0"); err != nil {
		return err
	}
	if err := setAffinity(kubeComms, "1"); err != nil {
		return err
	}
	// the bench: every thread of this process
	if err := taskset("1", os.Getpid()); err != nil {
		return err
	}
	pinned = "1"
	fmt.Println("pinned: Cinder on CPU 0; kube-apiserver, etcd, kube-controller-manager, the provisioner and the bench on CPU 1")
	return nil
}

func unpinStack() {
	all := map[string]bool{}
	for k := range cinderComms {
		all[k] = true
	}
	for k := range kubeComms {
		all[k] = true
	}
	if err := setAffinity(all, "0-1"); err != nil {
		fmt.Printf("unpin: %v\n", err)
	}
	pinned = ""
}

func setAffinity(comms map[string]bool, cpus string) error {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || !comms[strings.TrimSpace(string(comm))] {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if err := taskset(cpus, pid); err != nil {
			return err
		}
	}
	return nil
}

func taskset(cpus string, pid int) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s %d: %w: %s", cpus, pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}
