package reliability

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// r3PopulatorLeftAlone: a claim whose dataSourceRef is a volume
// populator's is left to it: the library called Provision (its Normal
// Provisioning Event), and there is no volume, no Warning and no binding.
func r3PopulatorLeftAlone(t *testing.T, r *r3Run, en *r3Entry) {
	sel := fields.Set{"involvedObject.uid": string(en.pvc.UID), "reason": "Provisioning"}.AsSelector().String()
	framework.Eventually(t, r3EventWait, "the provisioner never looked at claim "+en.pvc.Name, func(ctx context.Context) (bool, error) {
		list, err := r.e.s.Kube.CoreV1().Events(r.e.ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(list.Items) > 0, nil
	})
	r.noVolumeOf(t, en)
	evs, err := r.warnings(context.Background(), en.pvc.UID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) > 0 {
		t.Errorf("Warning Events on a populator's claim:%s", r3DescribeEvents(evs))
	}
	c, err := r.e.s.Kube.CoreV1().PersistentVolumeClaims(r.e.ns).Get(context.Background(), en.pvc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim is %s, want Pending", c.Status.Phase)
	}
	en.got = fmt.Sprintf("left alone: %s, no volume, no Warning", c.Status.Phase)
}
