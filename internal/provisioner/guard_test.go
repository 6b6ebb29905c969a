package provisioner

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The Guard, run as the binary runs it on shared informers: a bound claim
// is released, a claim deleted in flight loses its volume and is released,
// and a PV switched to Retain has it recorded on its volume.
func TestGuardActsOnWhatTheInformersSee(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	id := pv.Annotations[contract.AnnVolumeID]

	factory := informers.NewSharedInformerFactory(e.kube, 0)
	g, err := NewGuard(GuardConfig{Provisioner: e.p, Claims: factory.Core().V1().PersistentVolumeClaims().Informer(),
		Volumes: factory.Core().V1().PersistentVolumes().Informer(), RetryBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	factory.Start(ctx.Done())
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { cancel(); <-done; factory.Shutdown() }()

	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(e.ctx, 10*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if !protected(e.liveClaim()) {
		t.Fatal("the provisioned claim is not held")
	}
	// kube-controller-manager binds the claim: released
	c := e.liveClaim()
	c.Spec.VolumeName = pv.Name
	if _, err := e.kube.CoreV1().PersistentVolumeClaims("app").Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("bound claim released", func() bool { return !protected(e.liveClaim()) })

	// an admin keeps the disk: Retain recorded on the volume
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	e.edit(pv)
	poll("Retain recorded on the volume", func() bool {
		v, _ := e.cinder.Volume(id)
		return v.Metadata[contract.MetaReclaimPolicy] == "Retain"
	})
	if _, ok := e.cinder.Volume(id); !ok {
		t.Fatal("the kept volume is gone")
	}
}
