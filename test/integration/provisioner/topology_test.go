package provisioner

import (
	"context"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// stackZone is the local Cinder's availability zone: cinder.conf sets no
// storage_availability_zone, whose default is nova.
const stackZone = "nova"

// node makes a Node object labelled with zone (no kubelet runs here: the
// object is all the scheduler and the provisioner look at).
func (e *env) node(zone string) string {
	e.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: framework.UniqueName("it-node"), Labels: map[string]string{corev1.LabelTopologyZone: zone}}}
	if _, err := e.s.Kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create node: %v", err)
	}
	e.t.Cleanup(func() { _ = e.s.Kube.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	return n.Name
}

func waitForFirstConsumer(sc *storagev1.StorageClass) {
	m := storagev1.VolumeBindingWaitForFirstConsumer
	sc.VolumeBindingMode = &m
}

// selectedOn is what the scheduler does for a WaitForFirstConsumer claim.
func selectedOn(node string) func(*corev1.PersistentVolumeClaim) {
	return func(c *corev1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{"volume.kubernetes.io/selected-node": node}
	}
}

func TestWaitForFirstConsumerPinsPVToNodeZone(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, waitForFirstConsumer)
	node := e.node(stackZone)
	pvc := e.claim("zoned", class, "1Gi", selectedOn(node))
	pv := e.waitBound(pvc)

	v, err := volumes.Get(context.Background(), e.cinder, pv.Annotations["cinder.openstack.org/volume-id"]).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.AvailabilityZone != stackZone {
		t.Errorf("volume zone %q, want %q", v.AvailabilityZone, stackZone)
	}
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) != 1 {
		t.Fatalf("PV nodeAffinity = %+v, want one term on the zone", na)
	}
	exprs := na.Required.NodeSelectorTerms[0].MatchExpressions
	if len(exprs) != 1 || exprs[0].Key != corev1.LabelTopologyZone || exprs[0].Operator != corev1.NodeSelectorOpIn ||
		len(exprs[0].Values) != 1 || exprs[0].Values[0] != stackZone {
		t.Errorf("PV nodeAffinity = %+v, want %s In [%s]", exprs, corev1.LabelTopologyZone, stackZone)
	}
	if size, err := e.loginFromPV(pv); err != nil || size != 1<<30 {
		t.Errorf("login from the PV: %d bytes, %v", size, err)
	}
}

func TestUnknownZoneIsRefused(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, waitForFirstConsumer)
	node := e.node("atlantis")
	pvc := e.claim("nowhere", class, "1Gi", selectedOn(node))
	ev := e.waitEvent(pvc, "InvalidAvailabilityZone")
	if !strings.Contains(ev.Message, "Availability zone 'atlantis' is invalid") {
		t.Errorf("event %q does not give Cinder's refusal", ev.Message)
	}
	if n := len(e.volumesNamed("pvc-" + string(pvc.UID))); n != 0 {
		t.Errorf("%d volumes left for a zone Cinder does not know", n)
	}
	c, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Get(context.Background(), pvc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim is %s, want Pending", c.Status.Phase)
	}
}

// A class's allowedTopologies pick the zone of an Immediate claim, and the
// PV is pinned to it.
func TestAllowedTopologiesPinPV(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner")
	class := e.storageClass("tgtfile", nil, func(sc *storagev1.StorageClass) {
		sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
			{Key: corev1.LabelTopologyZone, Values: []string{stackZone}},
		}}}
	})
	pv := e.waitBound(e.claim("allowed", class, "1Gi"))
	if na := pv.Spec.NodeAffinity; na == nil || na.Required == nil ||
		na.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != stackZone {
		t.Errorf("PV nodeAffinity = %+v, want the zone %s", na, stackZone)
	}
}
