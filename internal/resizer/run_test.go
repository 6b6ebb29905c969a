package resizer

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// TestRunResizesAGrownClaim: Run's informer sees the claim, its workers
// resize it, and Run returns once ctx ends.
func TestRunResizesAGrownClaim(t *testing.T) {
	e := newEnv(t, spec{block: true, request: "1Gi"})
	e.r.limiter = workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	e.setRequest("2Gi") // the user grows the claim
	err := wait.PollUntilContextTimeout(e.ctx, 5*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := e.kube.CoreV1().PersistentVolumeClaims(testNamespace).Get(ctx, testClaim, metav1.GetOptions{})
		return err == nil && storageOf(c.Status.Capacity) == "2Gi", nil
	})
	if err != nil {
		t.Fatalf("claim not resized: %v; Cinder calls %v", err, e.cinder.Ops())
	}
	if v := e.volume(); v.SizeGiB != 2 {
		t.Fatalf("volume %d GiB", v.SizeGiB)
	}
	cancel()
	wg.Wait()
}

func TestWants(t *testing.T) {
	e := newEnv(t, spec{block: true})
	c := e.claim()
	if !e.r.wants(c) {
		t.Error("a grown claim of ours is not wanted")
	}
	other := c.DeepCopy()
	other.Annotations[contract.AnnStorageProvisioner] = "other"
	if e.r.wants(other) {
		t.Error("another provisioner's claim is wanted")
	}
	done := c.DeepCopy()
	done.Status.Capacity = done.Spec.Resources.Requests
	if e.r.wants(done) {
		t.Error("a claim showing its request is wanted")
	}
	pending := c.DeepCopy()
	pending.Status.Phase = "Pending"
	if e.r.wants(pending) {
		t.Error("a Pending claim is wanted")
	}
}
