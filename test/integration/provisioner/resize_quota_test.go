package provisioner

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// quotaSyncPeriod is the full recount period of the test's ResourceQuota
// controller: a charge that holds for several of them is the controller's
// own count, not a value admission left behind.
const quotaSyncPeriod = 5 * time.Second

// TestResizeQuotaChargesWhatCinderHolds is issue 17's quota case on the real
// stack: in a namespace with a ResourceQuota on requests.storage, a Bound
// block claim of 1Gi is raised to 3Gi and, while Cinder is still extending
// (cinder-volume stopped), lowered to 2Gi. The provisioner records
// allocatedResources 3Gi (ControllerResizeInProgress) before os-extend
// leaves, sends no smaller os-extend, and once cinder-volume is back the
// claim and the PV say 3Gi, allocatedResources keeps 3Gi, the quota's
// used requests.storage stays 3Gi through several recounts, and the Cinder
// volume, never smaller than before at any read, is 3 GiB.
func TestResizeQuotaChargesWhatCinderHolds(t *testing.T) {
	e := newEnv(t)
	e.quotaController()
	quota := e.storageQuota("10Gi")

	proxy := e.s.NewCinderProxy(t)
	var sent extendSizes
	proxy.AfterApplied(func(r framework.ProxyRequest) bool {
		if isPost("/action", "os-extend")(r) {
			sent.add(r.Body)
		}
		return false // observe only
	}, func() {})
	e.provisioner("provisioner", "--cloud-config", e.s.CloudConfVia(t, proxy))
	class := e.storageClass("tgtfile", nil, expandable)
	block := corev1.PersistentVolumeBlock
	pvc := e.claim("raise-lower", class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
	pv := e.waitBound(pvc)
	id := pv.Annotations["cinder.openstack.org/volume-id"]
	var seen volumeSizes
	seen.check(t, e.cinderVolume(pv))
	e.quotaStays(quota, "1Gi", "bound at 1Gi", 0)

	e.s.StopService(t, "cinder-volume")
	stopped := time.Now()
	e.grow(pvc, "3Gi")
	framework.Eventually(t, resizeTimeout, "Cinder volume "+id+" never went extending", func(ctx context.Context) (bool, error) {
		v, err := volumes.Get(ctx, e.cinder, id).Extract()
		if err != nil {
			return false, err
		}
		seen.check(t, v)
		return v.Status == "extending", nil
	})
	c := e.getClaim(pvc)
	t.Logf("Cinder extending; claim: request %s, allocatedResources %s, allocatedResourceStatuses %v",
		storage(c.Spec.Resources.Requests), storage(c.Status.AllocatedResources), c.Status.AllocatedResourceStatuses)
	if storage(c.Status.AllocatedResources) != "3Gi" || c.Status.AllocatedResourceStatuses[corev1.ResourceStorage] != corev1.PersistentVolumeClaimControllerResizeInProgress {
		t.Errorf("while Cinder extends, the claim records allocatedResources %q %v; want 3Gi ControllerResizeInProgress, recorded before os-extend",
			storage(c.Status.AllocatedResources), c.Status.AllocatedResourceStatuses)
	}

	e.grow(pvc, "2Gi") // Kubernetes allows it: above status.capacity (1Gi)
	e.quotaStays(quota, "3Gi", "lowered to 2Gi while Cinder extends", 2*quotaSyncPeriod)
	if v := e.cinderVolume(pv); v.Status != "extending" {
		t.Fatalf("Cinder volume %s while cinder-volume is stopped: %s %d GiB, want still extending (the check above proves nothing)", id, v.Status, v.Size)
	}

	e.s.StartService(t, "cinder-volume")
	t.Logf("cinder-volume stopped for %s", time.Since(stopped).Round(time.Millisecond))
	back := time.Now()
	framework.Eventually(t, resizeTimeout, "claim "+pvc.Name+" never showed 3Gi after cinder-volume came back", func(ctx context.Context) (bool, error) {
		v, err := volumes.Get(ctx, e.cinder, id).Extract()
		if err != nil {
			return false, err
		}
		seen.check(t, v)
		c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return storage(c.Status.Capacity) == "3Gi", nil
	})
	t.Logf("claim shows 3Gi %s after cinder-volume came back", time.Since(back).Round(time.Millisecond))
	ev := e.waitEventOfType(pvc, corev1.EventTypeNormal, "VolumeResized")
	t.Logf("event: %s", ev.Message)

	c = e.getClaim(pvc)
	t.Logf("claim: request %s, capacity %s, allocatedResources %s, allocatedResourceStatuses %v",
		storage(c.Spec.Resources.Requests), storage(c.Status.Capacity), storage(c.Status.AllocatedResources), c.Status.AllocatedResourceStatuses)
	if storage(c.Status.AllocatedResources) != "3Gi" || len(c.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("claim after the resize: allocatedResources %q, allocatedResourceStatuses %v; want 3Gi and none",
			storage(c.Status.AllocatedResources), c.Status.AllocatedResourceStatuses)
	}
	if got := storage(e.getPV(pv.Name).Spec.Capacity); got != "3Gi" {
		t.Errorf("PV capacity %s, want 3Gi", got)
	}
	e.quotaStays(quota, "3Gi", "after the resize", 3*quotaSyncPeriod)
	v := e.cinderVolume(pv)
	seen.check(t, v)
	if v.Size != 3 || v.Status != "in-use" {
		t.Errorf("Cinder volume %s: %d GiB %s, want 3 GiB in-use", id, v.Size, v.Status)
	}
	if got := sent.get(); !slices.Equal(got, []int{3}) {
		t.Errorf("os-extend sizes sent %v, want [3] (never a smaller one)", got)
	}
	t.Logf("Cinder sizes read, in order: %v; os-extends sent: %v", seen.get(), sent.get())
	if size, err := e.loginFromPV(e.getPV(pv.Name)); err != nil || size != 3<<30 {
		t.Errorf("login after the resize: %d bytes, %v; want 3 GiB", size, err)
	}
}

// quotaController runs a kube-controller-manager of the stack's build with
// the ResourceQuota controller alone (the stack's own runs without it),
// recounting every quotaSyncPeriod; it stops when the test ends.
func (e *env) quotaController() {
	e.t.Helper()
	kubectl, err := filepath.EvalSymlinks(filepath.Join(e.s.OutDir, "kubectl"))
	if err != nil {
		e.t.Fatalf("find the stack's Kubernetes binaries: %v", err)
	}
	framework.Start(e.t, "resourcequota-controller", filepath.Join(filepath.Dir(kubectl), "kube-controller-manager"),
		"--kubeconfig", e.s.Kubeconfig, "--secure-port", "0", "--leader-elect=false",
		"--controllers", "resourcequota-controller", "--resource-quota-sync-period", quotaSyncPeriod.String(), "--v", "1")
}

// storageQuota creates a ResourceQuota on requests.storage in the claims'
// namespace and waits until its controller counts it (before that,
// admission refuses claims: "status unknown for quota").
func (e *env) storageQuota(hard string) string {
	e.t.Helper()
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: e.ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsStorage: resource.MustParse(hard)}},
	}
	if _, err := e.s.Kube.CoreV1().ResourceQuotas(e.ns).Create(context.Background(), q, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create ResourceQuota: %v", err)
	}
	framework.Eventually(e.t, bindTimeout, "ResourceQuota "+q.Name+" never counted", func(ctx context.Context) (bool, error) {
		got, err := e.s.Kube.CoreV1().ResourceQuotas(e.ns).Get(ctx, q.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, hardSet := got.Status.Hard[corev1.ResourceRequestsStorage]
		_, usedSet := got.Status.Used[corev1.ResourceRequestsStorage]
		return hardSet && usedSet, nil
	})
	return q.Name
}

// quotaStays waits until the quota's used requests.storage is want, then
// checks it stays want for hold (the controller recounting meanwhile); the
// test goes on after a failed check, to show what follows.
func (e *env) quotaStays(name, want, when string, hold time.Duration) {
	e.t.Helper()
	w := resource.MustParse(want)
	used := func(ctx context.Context) (resource.Quantity, error) {
		q, err := e.s.Kube.CoreV1().ResourceQuotas(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return resource.Quantity{}, err
		}
		return q.Status.Used[corev1.ResourceRequestsStorage], nil
	}
	// reach bounds the wait for want (the controller recounts several times
	// within it); it bounds the loop, not the reads
	const reach = 6 * quotaSyncPeriod
	deadline := time.Now().Add(reach)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var reached time.Time // when used first read want
	var last resource.Quantity
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		u, err := used(ctx)
		cancel()
		if err != nil {
			e.t.Fatalf("%s: read quota: %v", when, err)
		}
		last = u
		switch {
		case reached.IsZero() && u.Cmp(w) == 0:
			reached = time.Now()
		case !reached.IsZero() && u.Cmp(w) != 0:
			e.t.Errorf("%s: quota used requests.storage went from %s to %s", when, want, u.String())
			return
		}
		if !reached.IsZero() && time.Since(reached) >= hold {
			e.t.Logf("%s: quota used requests.storage %s, held for %s", when, want, hold)
			return
		}
		if reached.IsZero() && time.Now().After(deadline) {
			e.t.Errorf("%s: quota used requests.storage %s, want %s (waited %s)", when, last.String(), want, reach)
			return
		}
		<-tick.C
	}
}

func storage(l corev1.ResourceList) string {
	q, ok := l[corev1.ResourceStorage]
	if !ok {
		return ""
	}
	return q.String()
}

// extendSizes collects the new_size of each os-extend the provisioner sent.
type extendSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (s *extendSizes) add(body string) {
	var b struct {
		Extend struct {
			NewSize int `json:"new_size"`
		} `json:"os-extend"`
	}
	_ = json.Unmarshal([]byte(body), &b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, b.Extend.NewSize)
}

func (s *extendSizes) get() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sizes)
}

// volumeSizes is every size read of the volume, in order: it must never go
// down.
type volumeSizes struct {
	sizes []int
}

func (s *volumeSizes) check(t *testing.T, v *volumes.Volume) {
	t.Helper()
	if n := len(s.sizes); n > 0 && v.Size < s.sizes[n-1] {
		t.Errorf("Cinder volume %s went from %d GiB to %d GiB", v.ID, s.sizes[n-1], v.Size)
	}
	if n := len(s.sizes); n == 0 || s.sizes[n-1] != v.Size {
		s.sizes = append(s.sizes, v.Size)
	}
}

func (s *volumeSizes) get() []int { return s.sizes }
