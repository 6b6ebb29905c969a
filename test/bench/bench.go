package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	volumeType   = "tgtfile"
	initiatorIQN = "iqn.2026-11.org.openstack.cinder-provisioner:bench"
	// what the provisioner logs once its informers have synced
	readyLine = "Started provisioner controller"
)

// bench is one run: its provisioner name, cluster id, namespace and class
// are its own, so that nothing else on the stack is touched.
type bench struct {
	s        *framework.Stack
	kube     kubernetes.Interface
	cinder   *gophercloud.ServiceClient
	requests *countingTransport // the floor's Cinder requests
	runID    string
	name     string // provisioner name
	cluster  string
	ns       string
	class    string
	dir      string // logs
	bin      string // the provisioner binary
	// auth is how ours and the floor reach Cinder (noauth or keystone),
	// cloudConf the provisioner's cloud config for it
	auth, cloudConf string
}

func newBench(ctx context.Context, bin, auth string) (*bench, error) {
	s, err := framework.Up()
	if err != nil {
		return nil, fmt.Errorf("local stack: %w", err)
	}
	if bin == "" {
		bin = filepath.Join(s.RepoRoot, "_output", "bin", "cinder-provisioner")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("provisioner binary (make build): %w", err)
	}
	cfg := *s.RESTConfig
	cfg.QPS, cfg.Burst = 500, 1000 // the load generator must not be the bottleneck
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return nil, err
	}
	requests := &countingTransport{next: http.DefaultTransport}
	sc, cloudConf, err := cinderClient(ctx, s, auth, requests)
	if err != nil {
		return nil, err
	}
	sc.Microversion = "3.44"
	id := rand.String(5)
	b := &bench{
		s: s, kube: kube, cinder: sc, requests: requests, runID: id, bin: bin, auth: auth, cloudConf: cloudConf,
		name:    "bench.cinder-provisioner.io/" + id,
		cluster: "bench-" + id,
		ns:      "bench-" + id,
		class:   "bench-" + id,
	}
	if b.dir, err = os.MkdirTemp("", "cinder-provisioner-bench-"); err != nil {
		return nil, err
	}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	policy := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	if _, err := kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: b.class},
		Provisioner:       b.name,
		Parameters:        map[string]string{"type": volumeType},
		ReclaimPolicy:     &policy,
		VolumeBindingMode: &mode,
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create StorageClass: %w", err)
	}
	fmt.Printf("bench %s: provisioner %s, cluster id %s, namespace %s, logs in %s\n", id, b.name, b.cluster, b.ns, b.dir)
	return b, nil
}

// cleanup removes the run's namespace and class; every claim and PV was
// deleted by the part that made it.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = b.kube.CoreV1().Namespaces().Delete(ctx, b.ns, metav1.DeleteOptions{})
	_ = b.kube.StorageV1().StorageClasses().Delete(ctx, b.class, metav1.DeleteOptions{})
}

// defaults reads the provisioner's defaults from its flag table.
func (b *bench) defaults(cfg config) map[string]string {
	out := map[string]string{}
	doc, err := exec.Command(b.bin, "--print-flags-markdown").Output()
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(doc), "\n") {
		for _, f := range []string{"workers", "kube-api-qps", "kube-api-burst"} {
			if strings.HasPrefix(line, "| `--"+f+"` |") {
				cols := strings.Split(line, "|")
				if len(cols) > 3 {
					out[f] = strings.Trim(strings.TrimSpace(cols[3]), "`")
				}
			}
		}
	}
	if cfg.workers > 0 {
		out["workers"] = strconv.Itoa(cfg.workers)
	}
	return out
}

// proc is a provisioner process of the run.
type proc struct {
	cmd     *exec.Cmd
	log     string
	metrics string // http://addr/metrics
	started time.Time
	done    chan struct{}
}

// start runs the provisioner with the run's identity; workers 0 keeps its
// default.
func (b *bench) start(cfg config, label string, workers int) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := framework.ProvisionerArgs{
		Kubeconfig:      b.s.Kubeconfig,
		CloudConfig:     b.cloudConf,
		Name:            b.name,
		ClusterID:       b.cluster,
		SecretNamespace: b.ns,
		Initiator:       initiatorIQN,
		MetricsAddress:  "127.0.0.1:" + strconv.Itoa(port),
		Verbosity:       2,
	}.Args()
	if workers > 0 {
		args = append(args, "--workers", strconv.Itoa(workers))
	}
	if cfg.qps > 0 {
		args = append(args, "--kube-api-qps", strconv.FormatFloat(cfg.qps, 'f', -1, 64))
	}
	if cfg.burst > 0 {
		args = append(args, "--kube-api-burst", strconv.Itoa(cfg.burst))
	}
	args = append(args, cfg.extraArgs...)
	logPath := filepath.Join(b.dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.bin, args...)
	if pinned != "" {
		// taskset execs the binary: the PID is the provisioner's
		cmd = exec.Command("taskset", append([]string{"-c", pinned, b.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, log: logPath, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits for the line the library logs once its caches have
// synced and returns the time from exec to it.
func (p *proc) waitReady(ctx context.Context) (time.Duration, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, at, ok := p.findLine(readyLine); ok {
			return at.Sub(p.started), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.done:
			return 0, fmt.Errorf("provisioner exited before it was ready; log %s", p.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("provisioner not ready after 2 min; log %s", p.log)
}

// findLine returns the first log line containing s and the time klog
// stamped on it.
func (p *proc) findLine(s string) (string, time.Time, bool) {
	f, err := os.Open(p.log)
	if err != nil {
		return "", time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, s) {
			continue
		}
		// klog header: Lmmdd hh:mm:ss.uuuuuu
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return line, time.Now(), true
		}
		at, err := time.ParseInLocation("0102 15:04:05.000000", fields[0][1:]+" "+fields[1], time.Local)
		if err != nil {
			return line, time.Now(), true
		}
		now := time.Now()
		return line, at.AddDate(now.Year(), 0, 0), true
	}
	return "", time.Time{}, false
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after 15 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// usage is what /proc says of the process: resident memory now and at its
// peak, and CPU seconds used.
type usage struct {
	RSSMiB  float64
	PeakMiB float64
	CPUSec  float64
}

func (p *proc) usage() (usage, error) {
	pid := p.cmd.Process.Pid
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			u.RSSMiB = kb / 1024
		case "VmHWM":
			u.PeakMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th fields of the whole line
	rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
	f := strings.Fields(rest)
	if len(f) < 13 {
		return u, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	u.CPUSec = (ut + st) / 100 // USER_HZ is 100 on Linux
	return u, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores, %s", host, runtime.NumCPU(), runtime.Version())
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// cinderClient is the floor's (and the bench's own) Cinder client, counting
// its requests, with the same auth as the provisioner's cloud config it
// returns: noauth straight to cinder-api, or Keystone, whose catalog names
// the endpoint and whose token the client reuses, as the provisioner does.
func cinderClient(ctx context.Context, s *framework.Stack, auth string, requests *countingTransport) (*gophercloud.ServiceClient, string, error) {
	switch auth {
	case "noauth":
		pc, err := noauth.NewClient(gophercloud.AuthOptions{Username: "admin", TenantName: s.Cinder.ProjectID})
		if err != nil {
			return nil, "", err
		}
		pc.HTTPClient = http.Client{Transport: requests}
		sc, err := noauth.NewBlockStorageNoAuthV3(pc, noauth.EndpointOpts{CinderEndpoint: s.Cinder.BaseEndpoint()})
		return sc, s.CloudConf, err
	case "keystone":
		conf := s.Env["CLOUD_CONFIG_KEYSTONE"]
		if conf == "" || s.Keystone.AuthURL == "" {
			return nil, "", fmt.Errorf("-auth keystone: the local stack runs without Keystone (CLOUD_CONFIG_KEYSTONE unset)")
		}
		pc, err := openstack.NewClient(s.Keystone.AuthURL)
		if err != nil {
			return nil, "", err
		}
		pc.HTTPClient = http.Client{Transport: requests}
		err = openstack.Authenticate(ctx, pc, gophercloud.AuthOptions{
			IdentityEndpoint: s.Keystone.AuthURL, Username: s.Keystone.Username, Password: s.Keystone.Password,
			TenantName: s.Keystone.ProjectName, DomainName: s.Keystone.DomainName, AllowReauth: true,
		})
		if err != nil {
			return nil, "", fmt.Errorf("keystone: %w", err)
		}
		sc, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{Region: s.Keystone.Region})
		return sc, conf, err
	}
	return nil, "", fmt.Errorf("-auth %q: want noauth or keystone", auth)
}
