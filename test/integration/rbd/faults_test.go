package rbd

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// burstSize is the number of RBD claims of each fault test.
const burstSize = 5

// burst makes burstSize claims of class and waits until the first volume of
// the burst exists in Cinder: the fault then hits a burst in flight.
func (e *env) burst(class, prefix string) []*corev1.PersistentVolumeClaim {
	e.t.Helper()
	var claims []*corev1.PersistentVolumeClaim
	for i := range burstSize {
		claims = append(claims, e.claim(claimName(prefix, i), class, "1Gi"))
	}
	framework.Eventually(e.t, bindTimeout, "no volume made before the fault", func(ctx context.Context) (bool, error) {
		return len(e.volumes()) > 0, nil
	})
	return claims
}

// allBoundOneImageEach checks every claim bound to a PV of its one volume
// whose image opens through librbd from the PV, and that the pool holds
// exactly one image per claim: nothing doubled, nothing leaked.
func (e *env) allBoundOneImageEach(claims []*corev1.PersistentVolumeClaim, since time.Time) {
	e.t.Helper()
	for _, pvc := range claims {
		pv := e.waitBoundWithin(pvc, recoverTimeout)
		e.checkRBDPV(pvc, pv, gib(1))
	}
	e.t.Logf("all %d claims bound %.1fs after the fault ended", len(claims), time.Since(since).Seconds())
	if n := len(e.volumes()); n != len(claims) {
		e.t.Errorf("%d volumes of the cluster id for %d claims", n, len(claims))
	}
	if imgs := e.images(); len(imgs) != len(claims) {
		e.t.Errorf("the pool holds %d images of the test (%v) for %d claims", len(imgs), imgs, len(claims))
	}
}

// kill -9 of the provisioner during a burst of RBD claims; a second one
// takes over.
func TestRBDProvisionerKilledDuringABurst(t *testing.T) {
	e := newEnv(t)
	p := e.provisioner("provisioner-1")
	claims := e.burst(e.rbdClass(), "kill")
	p.Kill(t)
	start := time.Now()
	e.provisioner("provisioner-2")
	e.allBoundOneImageEach(claims, start)
}

// cinder-volume killed (SIGKILL) during a burst and started again 20 s later.
func TestRBDCinderVolumeOutageDuringABurst(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	claims := e.burst(e.rbdClass(), "cv")
	e.s.StopService(t, "cinder-volume")
	time.Sleep(20 * time.Second)
	e.s.StartService(t, "cinder-volume")
	back := time.Now()
	e.resetLostCreates(claims, back)
	e.allBoundOneImageEach(claims, back)
}

// lostAfter is how long after cinder-volume is back a volume made before
// still creating counts as lost: the creates queued while it was down are
// done in seconds once it runs.
const lostAfter = time.Minute

// resetLostCreates does what an admin does for a create that cinder-volume
// lost. Cinder's RPC acknowledges a message when it is received, before
// cinder-volume records that it works on the volume, so a create received
// just before the kill is lost: the volume stays creating for ever, Cinder
// refuses to delete it, and cinder-volume's own cleanup at start does not
// see it. No client can end that (the provisioner reports it as
// CinderVolumeStuck, naming this fix); once reset to error, the provisioner
// removes it and makes the claim's volume anew. Volumes made before back
// and still creating lostAfter later are reset; the rest is untouched.
func (e *env) resetLostCreates(claims []*corev1.PersistentVolumeClaim, back time.Time) {
	e.t.Helper()
	for time.Now().Before(back.Add(lostAfter)) {
		bound := 0
		for _, pvc := range claims {
			if e.getClaim(pvc).Status.Phase == corev1.ClaimBound {
				bound++
			}
		}
		if bound == len(claims) {
			return
		}
		time.Sleep(2 * time.Second)
	}
	for _, v := range e.volumes() {
		if v.Status != "creating" || !v.CreatedAt.Before(back) {
			continue
		}
		e.t.Logf("volume %s (%s) still creating %v after cinder-volume came back, made %v before: its create was lost with the killed cinder-volume; resetting it to error as an admin does",
			v.ID, v.Name, time.Since(back).Round(time.Second), back.Sub(v.CreatedAt).Round(time.Second))
		err := volumes.ResetStatus(context.Background(), e.cinder, v.ID, volumes.ResetStatusOpts{Status: "error"}).ExtractErr()
		if err != nil {
			e.t.Fatalf("reset volume %s to error: %v", v.ID, err)
		}
	}
}

// The Ceph OSD killed (SIGKILL) during a burst and started again 20 s
// later: BlueStore recovers, the images written before hold their data.
func TestRBDOSDOutageDuringABurst(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.rbdClass()
	first := e.claim("before", class, "1Gi", blockMode)
	firstPV := e.waitBound(first)
	p := newPattern(uint64(time.Now().UnixNano()) + 11)
	e.writePattern(firstPV, p)
	claims := e.burst(class, "osd")
	e.s.StopService(t, "ceph-osd")
	time.Sleep(20 * time.Second)
	e.s.StartService(t, "ceph-osd")
	e.allBoundOneImageEach(append(claims, first), time.Now())
	e.expectPattern(firstPV, p, "image written before the OSD was killed")
}
