package capacity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

const (
	driverName = "cinder.openstack.org"
	namespace  = "kube-system"
)

type harness struct {
	cinder  *fake.Fake
	kube    *k8sfake.Clientset
	pub     *Publisher
	reg     *prometheus.Registry
	metrics *Metrics
}

// newHarness: a Cinder with zones zone-a and zone-b, one pool of backend
// "tgtfile" in each (zone-a's full), and the volume type tgtfile on it.
func newHarness(t *testing.T, objects ...runtime.Object) *harness {
	t.Helper()
	h := &harness{cinder: fake.New(), kube: k8sfake.NewClientset(objects...), reg: prometheus.NewRegistry()}
	h.cinder.SetZones(false, "zone-a", "zone-b")
	h.cinder.SetPools(
		cinder.Pool{Name: "a@tgtfile#tgtfile", Backend: "tgtfile", Zone: "zone-a", TotalGiB: 100, FreeGiB: 0},
		cinder.Pool{Name: "b@tgtfile#tgtfile", Backend: "tgtfile", Zone: "zone-b", TotalGiB: 100, FreeGiB: 40},
	)
	h.cinder.SetVolumeTypeBackend("tgtfile", "tgtfile")
	// the fake clientset does not implement generateName
	var n atomic.Int32
	h.kube.PrependReactor("create", "csistoragecapacities", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject().(*storagev1.CSIStorageCapacity)
		if obj.Name == "" {
			obj.Name = fmt.Sprintf("%s%d", obj.GenerateName, n.Add(1))
		}
		return false, nil, nil
	})
	var err error
	if h.metrics, err = NewMetrics(h.reg); err != nil {
		t.Fatal(err)
	}
	h.pub, err = New(Config{Cinder: h.cinder, Kube: h.kube, Name: driverName, Namespace: namespace, ZoneKey: zoneKey, Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// published maps "class segment" to "capacity/maximumVolumeSize" of our
// objects.
func (h *harness) published(t *testing.T) map[string]string {
	t.Helper()
	list, err := h.kube.StorageV1().CSIStorageCapacities(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: LabelDriver + "=" + driverName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		key := c.StorageClassName + " " + c.Annotations[AnnotationSegment]
		if _, dup := out[key]; dup {
			t.Errorf("two objects for %s", key)
		}
		if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].Kind != "CSIDriver" || c.OwnerReferences[0].Name != driverName {
			t.Errorf("%s: owner references %v, want the CSIDriver", c.Name, c.OwnerReferences)
		}
		out[key] = c.Capacity.String() + "/" + c.MaximumVolumeSize.String()
	}
	return out
}

func (h *harness) refreshes(outcome string) float64 {
	return testutil.ToFloat64(h.metrics.refreshes.WithLabelValues(outcome))
}

func wfcClass(name, volumeType string) *storagev1.StorageClass {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	sc := class(name, map[string]string{"type": volumeType})
	sc.Provisioner = driverName
	sc.VolumeBindingMode = &mode
	return sc
}

func TestRefreshPublishesPerClassAndZone(t *testing.T) {
	ctx := context.Background()
	other := &storagev1.CSIStorageCapacity{
		ObjectMeta:       metav1.ObjectMeta{Name: "theirs", Namespace: namespace, Labels: map[string]string{LabelDriver: "other.example.com"}},
		StorageClassName: "gold",
	}
	foreign := class("foreign", nil) // another provisioner's class
	foreign.Provisioner = "example.com/other"
	h := newHarness(t, wfcClass("gold", "tgtfile"), foreign, other)
	h.cinder.SetGigabytesQuota(100)

	if err := h.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := h.kube.StorageV1().CSIDrivers().Get(ctx, driverName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CSIDriver: %v", err)
	}
	if d.Spec.StorageCapacity == nil || !*d.Spec.StorageCapacity || d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
		t.Errorf("CSIDriver spec %+v: want storageCapacity true, attachRequired false", d.Spec)
	}
	want := map[string]string{
		"gold zone=zone-a":   "0/0",       // the backend's pool there is full
		"gold zone=zone-b":   "40Gi/40Gi", // the pool, under the quota of 100
		"gold no-zone-label": "40Gi/40Gi", // Cinder's default zone: any zone's pool
	}
	if got := h.published(t); !maps.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}

	// the project uses 75 GiB of its 100: the quota now bounds zone-b
	for i := range 3 {
		if _, err := h.cinder.CreateVolume(ctx, cinder.CreateRequest{Name: fmt.Sprintf("v%d", i), SizeGiB: 25, AvailabilityZone: "zone-b"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want["gold zone=zone-b"], want["gold no-zone-label"] = "25Gi/25Gi", "25Gi/25Gi"
	if got := h.published(t); !maps.Equal(got, want) {
		t.Fatalf("after using 75 GiB: published %v, want %v", got, want)
	}

	// the class goes: its objects go; another driver's object stays
	if err := h.kube.StorageV1().StorageClasses().Delete(ctx, "gold", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.published(t); len(got) != 0 {
		t.Errorf("after the class was deleted: %v", got)
	}
	if _, err := h.kube.StorageV1().CSIStorageCapacities(namespace).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("another driver's object: %v", err)
	}
	if n := h.refreshes(outcomePublished); n != 3 {
		t.Errorf("%s = %v, want 3", outcomePublished, n)
	}
}

func TestRefreshWithoutPoolStats(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, wfcClass("gold", "tgtfile"))
	h.cinder.SetGigabytesQuota(30)
	h.cinder.Fail(fake.OpPools, cinder.NewError("read scheduler pool stats", "", cinder.ErrUnauthorized, "Policy doesn't allow"))
	if err := h.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gold zone=zone-a": "30Gi/30Gi", "gold zone=zone-b": "30Gi/30Gi", "gold no-zone-label": "30Gi/30Gi"}
	if got := h.published(t); !maps.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	if n := h.refreshes(outcomeQuotaOnly); n != 1 {
		t.Errorf("%s = %v, want 1", outcomeQuotaOnly, n)
	}
	var ops []string
	for _, c := range h.cinder.Calls() {
		ops = append(ops, c.Op)
	}
	if want := []string{fake.OpProjectLimits, fake.OpAvailabilityZones, fake.OpPools}; !slices.Equal(ops, want) {
		t.Errorf("Cinder calls %v, want %v", ops, want)
	}
}

func TestFailedRefreshKeepsTheObjects(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, wfcClass("gold", "tgtfile"))
	if err := h.pub.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.published(t)
	h.cinder.SetGigabytesQuota(1)
	h.cinder.SetDown(true)
	if err := h.pub.Refresh(ctx); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("refresh with Cinder down: %v, want ErrUnavailable", err)
	}
	if got := h.published(t); !maps.Equal(got, before) {
		t.Errorf("a failed refresh changed the objects: %v, were %v", got, before)
	}
	if n := h.refreshes(outcomeFailed); n != 1 {
		t.Errorf("%s = %v, want 1", outcomeFailed, n)
	}
}

func TestNoClassAsksCinderNothing(t *testing.T) {
	h := newHarness(t)
	if err := h.pub.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls := h.cinder.Calls(); len(calls) != 0 {
		t.Errorf("Cinder calls %v, want none", calls)
	}
}

func TestRefreshTurnsStorageCapacityOn(t *testing.T) {
	existing := driverObject(driverName)
	existing.Spec.StorageCapacity = nil
	h := newHarness(t, existing)
	if err := h.pub.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := h.kube.StorageV1().CSIDrivers().Get(context.Background(), driverName, metav1.GetOptions{})
	if err != nil || d.Spec.StorageCapacity == nil || !*d.Spec.StorageCapacity {
		t.Errorf("CSIDriver %+v, %v: want storageCapacity true", d, err)
	}
}

func TestObjectsSpeakToTheScheduler(t *testing.T) {
	h := newHarness(t)
	o := object{class: "gold", segment: segment{key: "zone=zone-a", selector: &metav1.LabelSelector{}}, room: room{total: 70, largest: 50}}
	c := h.pub.objectFor(o, metav1.OwnerReference{Name: driverName})
	// kube-scheduler compares the claim's request with maximumVolumeSize
	// when set, else capacity
	if want := resource.MustParse("50Gi"); c.MaximumVolumeSize.Cmp(want) != 0 || c.Capacity.Cmp(resource.MustParse("70Gi")) != 0 {
		t.Errorf("capacity %v, maximumVolumeSize %v", c.Capacity, c.MaximumVolumeSize)
	}
	if c.StorageClassName != "gold" || c.NodeTopology == nil || c.Namespace != namespace {
		t.Errorf("object %+v", c)
	}
	if unlimited := quantity(unlimitedGiB); unlimited.String() != "4Ei" {
		t.Errorf("unlimited is %v", unlimited)
	}
}

func TestValidateDriverName(t *testing.T) {
	for _, tc := range []struct {
		name, wantErr string
	}{
		{name: "cinder.openstack.org"},
		{name: "openstack.org/standalone-cinder", wantErr: `e.g. "openstack.org.standalone-cinder"`},
		{name: "Cinder.example.com", wantErr: "a lowercase RFC 1123 subdomain"},
		{name: strings.Repeat("a", 64), wantErr: "no more than 63 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDriverName(tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}
