package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// components of the local stack whose CPU time the bench reports, by the
// program name /proc/<pid>/comm shows (read only; nothing is signalled by
// name).
var components = map[string]string{
	"cinder-api": "cinder-api", "cinder-volume": "cinder-volume", "cinder-schedule": "cinder-scheduler",
	"mariadbd": "mariadb", "beam.smp": "rabbitmq", "tgtd": "tgtd",
	"kube-apiserver": "kube-apiserver", "kube-controller": "kube-controller-manager", "etcd": "etcd",
	"cinder-provisio": "cinder-provisioner",
	// Cinder's root helper: the iSCSI target helper's commands (tgt-admin,
	// tgtadm) run as its children, so their CPU is in its children's time
	"privsep-helper": "cinder-privsep",
}

// withChildren: components whose reaped children's CPU time counts too
// (short-lived commands no sample would see running).
var withChildren = map[string]bool{"cinder-privsep": true, "cinder-volume": true}

// cpuSample is the machine's busy and idle time, and each component's CPU
// seconds, at one moment.
type cpuSample struct {
	busy, idle float64
	byComp     map[string]float64
}

func sampleCPU() cpuSample {
	s := cpuSample{byComp: map[string]float64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			if i == 3 || i == 4 { // idle, iowait
				s.idle += x / 100
			} else if i < 8 {
				s.busy += x / 100
			}
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue
		}
		name, ok := components[strings.TrimSpace(string(comm))]
		if !ok {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		if withChildren[name] {
			cut, _ := strconv.ParseFloat(f[13], 64)
			cst, _ := strconv.ParseFloat(f[14], 64)
			ut, st = ut+cut, st+cst
		}
		s.byComp[name] += (ut + st) / 100
	}
	return s
}

// cpuUse is what happened between two samples.
type cpuUse struct {
	Busy   float64 // share of all cores busy, 0..1
	ByComp map[string]float64
}

func (s cpuSample) since(o cpuSample) cpuUse {
	u := cpuUse{ByComp: map[string]float64{}}
	if total := (s.busy - o.busy) + (s.idle - o.idle); total > 0 {
		u.Busy = (s.busy - o.busy) / total
	}
	for k, v := range s.byComp {
		// processes that started in between count from zero
		u.ByComp[k] = v - o.byComp[k]
		if u.ByComp[k] < 0 {
			u.ByComp[k] = v
		}
	}
	return u
}

// groups of components, for the CPU split of the report
var cpuGroups = []struct {
	Name  string
	Comps []string
}{
	{"Cinder", []string{"cinder-api", "cinder-volume", "cinder-privsep", "cinder-scheduler", "mariadb", "rabbitmq", "tgtd"}},
	{"Kubernetes", []string{"kube-apiserver", "etcd", "kube-controller-manager"}},
	{"cinder-provisioner", []string{"cinder-provisioner"}},
}

// group sums the CPU seconds of a group of components.
func (u cpuUse) group(name string) float64 {
	total := 0.0
	for _, g := range cpuGroups {
		if g.Name == name {
			for _, c := range g.Comps {
				total += u.ByComp[c]
			}
		}
	}
	return total
}

func (u cpuUse) String() string {
	keys := make([]string, 0, len(u.ByComp))
	for k, v := range u.ByComp {
		if v >= 0.05 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return u.ByComp[keys[i]] > u.ByComp[keys[j]] })
	parts := []string{fmt.Sprintf("machine %.0f%% busy", 100*u.Busy)}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f s", k, u.ByComp[k]))
	}
	return strings.Join(parts, ", ")
}
