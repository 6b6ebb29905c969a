package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// The RBD rows: the same promises with Cinder's real RBD driver on the
// stack's one-node Ceph (hack/local-ceph.sh). Every bound PV is proven from
// its own fields through librbd (framework.RBDImageFromPV), and the pool is
// counted: it must hold as many images after the scenario as before.

const (
	r9CephConfig = "ceph-csi-config"
	r9CephSecret = "csi-rbd-secret"
)

// rbdClass sets up what a Ceph admin deploys for ceph-csi (its config map,
// the Ceph user's Secret, and, as deploy/README.md says, a Role with get on
// that Secret for the shipped ServiceAccount) and returns an RBD class.
func (e *env) rbdClass() string {
	e.t.Helper()
	ctx := context.Background()
	ceph := e.s.Ceph(e.t)
	ns := e.s.Namespace(e.t, "ceph-csi")
	e.cephNS = ns
	e.s.CephCSIConfigMap(e.t, ns, r9CephConfig, ceph.FSID)
	e.s.CephSecret(e.t, ns, r9CephSecret)
	shared.remember(ceph.UserKey(e.t), "Ceph userKey")
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cinder-provisioner-ceph-secret", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{r9CephSecret}}},
	}
	if _, err := e.s.Kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create Role: %v", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cinder-provisioner-ceph-secret", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccountName, Namespace: baseNamespace}},
	}
	if _, err := e.s.Kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create RoleBinding: %v", err)
	}
	return e.storageClass(map[string]string{"type": "rbd", "clusterID": ceph.FSID, "cephSecretName": r9CephSecret, "cephSecretNamespace": ns})
}

// checkRBDPV proves an RBD PV: its image opens through librbd with the PV's
// fields, the Secret it names and the config map's monitors only, and has
// a size. Called by checkPV for CSI sources.
func (e *env) checkRBDPV(pv *corev1.PersistentVolume, o *outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	img, err := framework.RBDImageFromPV(ctx, e.s.Kube, pv, e.cephNS, r9CephConfig)
	if err != nil {
		e.t.Errorf("%v", err)
		return
	}
	if size, err := img.Size(ctx); err != nil || size <= 0 {
		e.t.Errorf("librbd open of PV %s's image: size %d, %v", pv.Name, size, err)
		return
	}
	o.logins++
}

// poolImages counts the pool's images (the stack lock makes the scenario
// the only user of the rbd backend while it runs).
func (e *env) poolImages() int {
	e.t.Helper()
	imgs, err := e.s.Ceph(e.t).Images(context.Background())
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return len(imgs)
}

// imagesBack waits until the pool holds before images again and returns
// how many more it holds (0 when nothing leaked).
func (e *env) imagesBack(before int) int {
	e.t.Helper()
	n := 0
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if n = e.poolImages() - before; n <= 0 {
			return 0
		}
	}
	e.t.Errorf("the pool holds %d images more than before the scenario", n)
	return n
}

// TestR9RBDCrashAnywhere is R1 with an RBD class: kill -9 at random moments
// of a mix of RBD claim creates and deletes.
func TestR9RBDCrashAnywhere(t *testing.T) {
	e := newEnv(t)
	class := e.rbdClass()
	before := e.poolImages()
	nClaims, nKills := pick(40, 12), pick(20, 6)
	start := time.Now()
	l := e.killsDuringChurn("r9", []string{class}, nClaims, nKills, 10*time.Minute)

	o := e.settle(l.live, l.made, l.end, 6*time.Minute)
	leakedImages := e.imagesBack(before)
	results.add(row{
		scenario: "R1 crash anywhere, RBD",
		load:     fmt.Sprintf("%d RBD claims created, %d deleted during the run", nClaims, l.deleted),
		faults:   fmt.Sprintf("%d × kill -9 at random moments, restarted each time", l.kills),
		bound:    o.bound, claims: o.live, leaked: max(o.leaked, leakedImages), wronglyDeleted: o.wronglyDeleted, double: o.double,
		events:   fmt.Sprintf("%d librbd opens from PVs; %d images left in the pool", o.logins, leakedImages),
		recover:  fmt.Sprintf("all bound %.0fs after the last kill", o.recover.Seconds()),
		duration: time.Since(start), passed: !t.Failed(),
	})
}

// TestR9RBDCephOutages is R2 for Ceph: the OSD, then the monitor, killed
// (SIGKILL) while RBD claims are in flight, claims created and deleted
// during the outage, the daemon started again.
func TestR9RBDCephOutages(t *testing.T) {
	d := time.Duration(pick(30, 15)) * time.Second
	for _, service := range []string{"ceph-osd", "ceph-mon"} {
		t.Run(service, func(t *testing.T) {
			e := newEnv(t)
			start := time.Now()
			sv := e.supervise()
			class := e.rbdClass()
			before := e.poolImages()
			l := e.throughOutage(service, class, d)
			res := e.settle(l.live, l.made, l.end, 5*time.Minute)
			sv.end()
			leakedImages := e.imagesBack(before)
			results.add(row{
				scenario: "R2 " + service + " down, RBD",
				load:     fmt.Sprintf("%d RBD claims, %d deleted during the outage", len(l.made), l.deleted),
				faults:   fmt.Sprintf("%s killed for %s; provisioner restarted %d×", service, d, sv.restarts),
				bound:    res.bound, claims: res.live, leaked: max(res.leaked, leakedImages), wronglyDeleted: res.wronglyDeleted, double: res.double,
				events:   fmt.Sprintf("%d librbd opens from PVs; %d images left in the pool", res.logins, leakedImages),
				recover:  fmt.Sprintf("%.0fs after %s returned", res.recover.Seconds(), service),
				duration: time.Since(start), passed: !t.Failed(),
			})
		})
	}
}
