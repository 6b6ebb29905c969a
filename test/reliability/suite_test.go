// Package reliability proves the provisioner's promises under the faults
// users meet, on the real local stack: kill -9 at random moments, outages of
// every service, bad input, two replicas, credentials that must never show,
// least privilege. Each scenario records a row of the table that
// `make test-reliability` prints and writes into docs/reliability.md. Every
// scenario ends by deleting its claims and counting the volumes of its
// cluster id left in Cinder, in any status: the figure must be 0.
//
// RELIABILITY_SCALE=ci runs the same scenarios at smaller counts.
package reliability

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	metaClusterID = "cinder.openstack.org/cluster-id"
	annVolumeID   = "cinder.openstack.org/volume-id"
	initiatorIQN  = "iqn.2026-11.org.cinder-provisioner:reliability"
	// the shipped base's namespace and ServiceAccount: the suite runs the
	// provisioner with that identity and the shipped RBAC (R5)
	baseNamespace      = "cinder-provisioner"
	serviceAccountName = "cinder-provisioner"
)

// scale is the size of the run: "full" (make test-reliability) or "ci".
func scale() string {
	if os.Getenv("RELIABILITY_SCALE") == "ci" {
		return "ci"
	}
	return "full"
}

func pick(full, ci int) int {
	if scale() == "ci" {
		return ci
	}
	return full
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(results.rows) > 0 {
		results.print(os.Stdout)
		if err := results.writeDoc(); err != nil {
			fmt.Fprintln(os.Stderr, "write docs/reliability.md:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// suite is what all scenarios share: the stack, the provisioner's
// ServiceAccount kubeconfig, and every credential seen, for R4.
type suite struct {
	once       sync.Once
	err        error
	s          *framework.Stack
	kubeconfig string // the shipped ServiceAccount's token

	mu      sync.Mutex
	secrets map[string]string // credential -> where it came from
	valued  []valued          // weak credentials, found only as a value
	logs    []string          // every provisioner log of the suite
	texts   []string          // events, PV annotations, /metrics
}

var shared suite

// setup installs the shipped base (without its Deployment: there is no
// kubelet) and mints a token of its ServiceAccount.
func (su *suite) setup(t *testing.T) {
	t.Helper()
	su.s = framework.Get(t)
	su.once.Do(func() { su.err = su.install() })
	if su.err != nil {
		t.Fatalf("install the shipped base: %v", su.err)
	}
}

func (su *suite) install() error {
	s := su.s
	kubectl := filepath.Join(s.OutDir, "kubectl")
	rendered, err := exec.Command(kubectl, "kustomize", filepath.Join(s.RepoRoot, "deploy", "kubernetes")).Output()
	if err != nil {
		return fmt.Errorf("kubectl kustomize deploy/kubernetes: %w", err)
	}
	var keep []string
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		if !strings.Contains(doc, "\nkind: Deployment\n") && !strings.HasPrefix(doc, "kind: Deployment\n") {
			keep = append(keep, doc)
		}
	}
	apply := exec.Command(kubectl, "--kubeconfig", s.Kubeconfig, "apply", "--server-side", "-f", "-")
	apply.Stdin = strings.NewReader(strings.Join(keep, "\n---\n"))
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	ttl := int64(4 * 3600)
	var token string
	// the token controller may need a moment for a new ServiceAccount
	for i := 0; i < 50; i++ {
		tr, err := s.Kube.CoreV1().ServiceAccounts(baseNamespace).CreateToken(context.Background(), serviceAccountName,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
		if err == nil {
			token = tr.Status.Token
			break
		}
		time.Sleep(100 * time.Millisecond) // bounded: 5 s
	}
	if token == "" {
		return fmt.Errorf("no token for ServiceAccount %s/%s", baseNamespace, serviceAccountName)
	}
	su.remember(token, "ServiceAccount token")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: s.RESTConfig.Host, CertificateAuthority: s.RESTConfig.CAFile, CertificateAuthorityData: s.RESTConfig.CAData}
	kc.AuthInfos["provisioner"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["provisioner"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "provisioner"}
	kc.CurrentContext = "provisioner"
	dir, err := os.MkdirTemp("", "reliability-")
	if err != nil {
		return err
	}
	su.kubeconfig = filepath.Join(dir, "kubeconfig")
	if pw := s.Keystone.Password; pw != "" {
		// the local stack's Keystone password is a plain word ("secret")
		// that logs use on their own: it is looked for where a value is
		// given (password=secret, "password": "secret"), and its base64
		su.rememberWeak(pw, "Keystone password")
	}
	return clientcmd.WriteToFile(*kc, su.kubeconfig)
}

// remember records a credential that must never show anywhere.
func (su *suite) remember(secret, what string) {
	if len(secret) < 6 {
		return
	}
	su.mu.Lock()
	defer su.mu.Unlock()
	if su.secrets == nil {
		su.secrets = map[string]string{}
	}
	su.secrets[secret] = what
	su.secrets[base64.StdEncoding.EncodeToString([]byte(secret))] = what + " (base64)"
}

// rememberWeak records a credential that is also an ordinary word: it
// counts as shown only as the value of a key, or in base64.
func (su *suite) rememberWeak(secret, what string) {
	su.mu.Lock()
	defer su.mu.Unlock()
	if su.secrets == nil {
		su.secrets = map[string]string{}
	}
	su.secrets[base64.StdEncoding.EncodeToString([]byte(secret))] = what + " (base64)"
	su.valued = append(su.valued, valued{
		re:   regexp.MustCompile(`(?i)[a-z_-]*(password|passwd|secret|token|credential)[a-z_-]*["']?\s*[:=]\s*["']?` + regexp.QuoteMeta(secret) + `\b`),
		what: what,
	})
}

type valued struct {
	re   *regexp.Regexp
	what string
}

func (su *suite) saw(log string, texts ...string) {
	su.mu.Lock()
	defer su.mu.Unlock()
	su.logs = append(su.logs, log)
	su.texts = append(su.texts, texts...)
}

// fernet matches a Keystone token as Keystone issues them.
var fernet = regexp.MustCompile(`gAAAAA[A-Za-z0-9_-]{40,}`)

// leaks lists every credential found in what the suite saw.
func (su *suite) leaks() (found []string, scanned int) {
	su.mu.Lock()
	defer su.mu.Unlock()
	all := append(append([]string(nil), su.logs...), su.texts...)
	for _, text := range all {
		scanned += len(text)
		for secret, what := range su.secrets {
			if strings.Contains(text, secret) {
				found = append(found, what)
			}
		}
		if m := fernet.FindString(text); m != "" {
			found = append(found, "a Keystone token")
		}
		for _, v := range su.valued {
			if m := v.re.FindString(text); m != "" {
				found = append(found, v.what+" ("+m+")")
			}
		}
	}
	return found, scanned
}

// env is one scenario's world: its own provisioner name, cluster id and
// claim namespace.
type env struct {
	t         *testing.T
	s         *framework.Stack
	name      string
	clusterID string
	ns        string
	cinder    *gophercloud.ServiceClient
	procs     []*framework.Process
	mu        sync.Mutex                    // procs and metrics: supervisors add to them
	metrics   map[*framework.Process]string // its /metrics address
	rng       *rand.Rand
	pvCleanup bool   // retained PVs are removed at the end
	cephNS    string // RBD rows: the namespace of ceph-csi's config map (r9)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	shared.setup(t)
	s := shared.s
	_ = t.TempDir() // removed last: the logs are read before
	id := framework.UniqueName("rel")
	e := &env{
		t: t, s: s,
		name:      id + ".cinder.openstack.org/standalone-cinder",
		clusterID: id,
		ns:        s.Namespace(t, "claims"),
		cinder:    s.CinderClient(t),
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9)),
		metrics:   map[*framework.Process]string{},
	}
	e.cinder.Microversion = "3.54"
	s.CleanupClusterVolumes(t, e.cinder, e.clusterID)
	t.Cleanup(e.collect)
	return e
}

// provisioner starts the binary with the shipped ServiceAccount's identity,
// at -v=10, with /metrics on a port of its own.
func (e *env) provisioner(name string, extra ...string) *framework.Process {
	e.t.Helper()
	addr := freeAddr(e.t)
	a := framework.ProvisionerArgs{
		Kubeconfig: shared.kubeconfig, Name: e.name, ClusterID: e.clusterID, SecretNamespace: baseNamespace,
		Initiator: initiatorIQN, MetricsAddress: addr, Verbosity: 10,
	}
	p := e.s.StartProvisioner(e.t, name, a, append([]string{"--sweep-interval", "15s"}, extra...)...)
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.metrics[p] = addr
	e.mu.Unlock()
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrapeMetrics hands every running provisioner's /metrics to R4.
func (e *env) scrapeMetrics() {
	e.mu.Lock()
	running := map[*framework.Process]string{}
	for p, addr := range e.metrics {
		running[p] = addr
	}
	e.mu.Unlock()
	for p, addr := range running {
		if p.Exited() {
			continue
		}
		// a replica just started may not listen yet: a few tries, bounded
		var resp *http.Response
		err := framework.Retry(5*time.Second, func() (err error) {
			resp, err = http.Get("http://" + addr + "/metrics")
			return err
		})
		if err != nil {
			if !p.Exited() {
				e.t.Errorf("scrape %s: %v", addr, err)
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
			e.t.Errorf("scrape %s: status %d, %d bytes, %v", addr, resp.StatusCode, len(body), err)
			continue
		}
		shared.saw("", string(body))
	}
}

// collect hands every log, event and PV annotation of the scenario to R4.
func (e *env) collect() {
	ctx := context.Background()
	var texts []string
	if evs, err := e.s.Kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, ev := range evs.Items {
			texts = append(texts, ev.Message)
		}
	}
	if evs, err := e.s.Kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{}); err == nil {
		for _, ev := range evs.Items {
			texts = append(texts, ev.Message)
		}
	}
	var logs strings.Builder
	e.mu.Lock()
	for _, p := range e.procs {
		logs.WriteString(p.Log())
	}
	e.mu.Unlock()
	shared.saw(logs.String(), texts...)
}

func (e *env) storageClass(params map[string]string, mutate ...func(*storagev1.StorageClass)) string {
	e.t.Helper()
	p := map[string]string{"type": "tgtfile"}
	for k, v := range params {
		p[k] = v
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("rel")}, Provisioner: e.name, Parameters: p}
	for _, m := range mutate {
		m(sc)
	}
	return framework.CreateStorageClass(e.t, e.s.Kube, sc)
}

func (e *env) claim(name, class, size string, mutate ...func(*corev1.PersistentVolumeClaim)) (*corev1.PersistentVolumeClaim, error) {
	// the API server may be the fault of the moment: retry, bounded
	return framework.CreateClaimRetrying(e.s.Kube, framework.Claim(e.ns, name, class, size, mutate...), 30*time.Second)
}

func (e *env) deleteClaim(pvc *corev1.PersistentVolumeClaim) error {
	return framework.DeleteClaimRetrying(e.s.Kube, e.ns, pvc.Name, 30*time.Second)
}

// volumes lists the scenario's Cinder volumes, any status.
func (e *env) volumes(ctx context.Context) (map[string][]string, error) {
	vols, err := framework.ClusterVolumes(ctx, e.cinder, e.clusterID)
	if err != nil {
		return nil, err
	}
	byName := map[string][]string{}
	for _, v := range vols {
		byName[v.Name] = append(byName[v.Name], v.ID+" "+v.Status)
	}
	return byName, nil
}

// waitBound waits until the claim is Bound.
func (e *env) waitBound(pvc *corev1.PersistentVolumeClaim, timeout time.Duration) {
	e.t.Helper()
	// the API server may be the fault of the moment: its errors are retried
	framework.WaitBound(e.t, e.s.Kube, e.ns, pvc.Name, timeout, true)
}

// waitReleased waits until the provisioner is done with every bound claim:
// it took its finalizer off. A claim bound while a create of a killed
// process may still land is held until no create can land (--create-lands)
// and freed of any late second volume first; counting volumes before that
// would count a volume the provisioner is about to remove.
func (e *env) waitReleased(live []*corev1.PersistentVolumeClaim, timeout time.Duration) {
	e.t.Helper()
	var held []string
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(time.Second) {
		held = held[:0]
		for _, pvc := range live {
			c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
			if err != nil || slices.Contains(c.Finalizers, contract.FinalizerProvisioning) {
				held = append(held, pvc.Name)
			}
		}
		if len(held) == 0 {
			return
		}
	}
	e.t.Errorf("bound claims still held by %s after %s: %v", contract.FinalizerProvisioning, timeout, held)
}

// outcome is what every scenario measures at its end.
type outcome struct {
	bound, live, leaked, double, logins int
	// kept: volumes a Released PV of reclaim policy Retain holds after
	// every claim was deleted (they must stay); wronglyDeleted: such PVs
	// whose volume is gone
	kept, wronglyDeleted int
	recover              time.Duration // slowest claim, from the end of the fault
}

// settle waits until every live claim is bound (or timeout), checks each
// is backed by exactly one volume that an iSCSI login from its PV reads,
// records its CHAP password for R4, then deletes every claim and counts
// the volumes of the cluster id left: leaked.
func (e *env) settle(live []*corev1.PersistentVolumeClaim, everMade []string, since time.Time, timeout time.Duration) outcome {
	e.t.Helper()
	ctx := context.Background()
	e.scrapeMetrics()
	var o outcome
	o.live = len(live)
	deadline := time.Now().Add(timeout)
	for _, pvc := range live {
		// one slow claim must not make the others look unbound
		if left := time.Until(deadline); left < 30*time.Second {
			deadline = time.Now().Add(30 * time.Second)
		}
		var pv *corev1.PersistentVolume
		for time.Now().Before(deadline) {
			c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
			if err == nil && c.Status.Phase == corev1.ClaimBound {
				if pv, err = e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{}); err == nil {
					break
				}
			}
			time.Sleep(250 * time.Millisecond) // bounded by the deadline
		}
		if pv == nil {
			e.t.Errorf("claim %s never bound", pvc.Name)
			continue
		}
		o.bound++
		if d := time.Since(since); d > o.recover {
			o.recover = d
		}
		e.checkPV(pv, &o)
	}
	e.waitReleased(live, 3*time.Minute)
	byName, err := e.volumes(ctx)
	if err != nil {
		e.t.Fatalf("list volumes: %v", err)
	}
	for _, name := range everMade {
		if len(byName[name]) > 1 {
			o.double++
			e.t.Errorf("claim volume %s: %d volumes %v, want at most 1", name, len(byName[name]), byName[name])
		}
	}
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.t.Fatalf("delete claims: %v", err)
	}
	// Every volume left must be held by a PV of reclaim policy Retain (a
	// bound claim of a Retain class: kept on purpose); every such PV's
	// volume must still be there.
	var left map[string][]string
	var retained map[string]string // PV name -> volume id
	for end := time.Now().Add(4 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		left, err = e.volumes(ctx)
		if err != nil {
			continue
		}
		if retained, err = e.retainedPVs(ctx); err != nil {
			continue
		}
		if unheld(left, retained) == 0 {
			break
		}
	}
	for name, vols := range left {
		if _, ok := retained[name]; ok && len(vols) == 1 {
			o.kept++
			continue
		}
		o.leaked += len(vols)
		e.t.Errorf("volume of %s left after every claim was deleted, no Retain PV holds it: %v", name, vols)
	}
	for name, id := range retained {
		if vols := left[name]; len(vols) != 1 || !strings.HasPrefix(vols[0], id+" ") {
			o.wronglyDeleted++
			e.t.Errorf("PV %s (Retain) holds volume %s, which is gone: %v", name, id, vols)
		}
	}
	return o
}

// unheld counts the volumes no Retain PV of their name holds.
func unheld(left map[string][]string, retained map[string]string) int {
	n := 0
	for name, vols := range left {
		if _, ok := retained[name]; !ok || len(vols) != 1 {
			n += len(vols)
		}
	}
	return n
}

// retainedPVs lists this scenario's PVs of reclaim policy Retain (name ->
// volume id), and removes them when the test ends (their volumes go with
// the cluster id's cleanup).
func (e *env) retainedPVs(ctx context.Context) (map[string]string, error) {
	pvs, err := e.s.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != e.name || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
			continue
		}
		out[pv.Name] = pv.Annotations["cinder.openstack.org/volume-id"]
	}
	if len(out) > 0 && !e.pvCleanup {
		e.pvCleanup = true
		e.t.Cleanup(e.deleteRetainedPVs)
	}
	return out, nil
}

func (e *env) deleteRetainedPVs() {
	ctx := context.Background()
	pvs, err := e.s.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] == e.name {
			_ = e.s.Kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		}
	}
}

// checkPV asserts the PV's one volume and logs in from the PV's fields.
func (e *env) checkPV(pv *corev1.PersistentVolume, o *outcome) {
	ctx := context.Background()
	texts := []string{}
	for k, v := range pv.Annotations {
		texts = append(texts, k+"="+v)
	}
	shared.saw("", texts...)
	if pv.Spec.CSI != nil && e.cephNS != "" {
		e.checkRBDPV(pv, o) // r9_rbd_test.go
		return
	}
	if pv.Spec.ISCSI == nil || pv.Spec.ISCSI.SecretRef == nil {
		e.t.Errorf("PV %s has no iSCSI source with CHAP", pv.Name)
		return
	}
	ref := pv.Spec.ISCSI.SecretRef
	sec, err := e.s.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Errorf("CHAP Secret of %s: %v", pv.Name, err)
		return
	}
	password := string(sec.Data["node.session.auth.password"])
	shared.remember(password, "CHAP password")
	lun := pv.Spec.ISCSI.Lun
	login := framework.ISCSILogin{Initiator: *pv.Spec.ISCSI.InitiatorName, Portal: pv.Spec.ISCSI.TargetPortal, IQN: pv.Spec.ISCSI.IQN,
		LUN: lun, Username: string(sec.Data["node.session.auth.username"]), Password: password}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if size, err := framework.ReadCapacity(lctx, login); err != nil || size <= 0 {
		e.t.Errorf("iSCSI login from PV %s: size %d, %v", pv.Name, size, err)
		return
	}
	o.logins++
}
