package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// tracker watches the run's claims and PVs and records when each claim was
// first seen Bound, and when each claim's PV appeared and went.
type tracker struct {
	mu      sync.Mutex
	bound   map[string]time.Time // claim name ->
	pvAdded map[string]time.Time // claim name ->
	pvGone  map[string]time.Time // claim name ->
	pvs     map[string]string    // PV name -> claim name, PVs that exist
	changed chan struct{}
	stop    context.CancelFunc
}

func (b *bench) track(ctx context.Context) (*tracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &tracker{
		bound: map[string]time.Time{}, pvAdded: map[string]time.Time{}, pvGone: map[string]time.Time{},
		pvs: map[string]string{}, changed: make(chan struct{}, 1), stop: cancel,
	}
	nsf := informers.NewSharedInformerFactoryWithOptions(b.kube, 0, informers.WithNamespace(b.ns))
	claims := nsf.Core().V1().PersistentVolumeClaims().Informer()
	onClaim := func(obj any) {
		c, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok || c.Status.Phase != corev1.ClaimBound {
			return
		}
		t.mu.Lock()
		if _, seen := t.bound[c.Name]; !seen {
			t.bound[c.Name] = time.Now()
		}
		t.mu.Unlock()
		t.notify()
	}
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, obj any) { onClaim(obj) },
	}); err != nil {
		cancel()
		return nil, err
	}
	f := informers.NewSharedInformerFactory(b.kube, 0)
	pvs := f.Core().V1().PersistentVolumes().Informer()
	claimOf := func(obj any) (string, string, bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pv, ok := obj.(*corev1.PersistentVolume)
		if !ok || pv.Spec.StorageClassName != b.class || pv.Spec.ClaimRef == nil {
			return "", "", false
		}
		return pv.Name, pv.Spec.ClaimRef.Name, true
	}
	if _, err := pvs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pv, claim, ok := claimOf(obj); ok {
				t.mu.Lock()
				t.pvs[pv] = claim
				if _, seen := t.pvAdded[claim]; !seen {
					t.pvAdded[claim] = time.Now()
				}
				t.mu.Unlock()
				t.notify()
			}
		},
		DeleteFunc: func(obj any) {
			if pv, claim, ok := claimOf(obj); ok {
				t.mu.Lock()
				delete(t.pvs, pv)
				t.pvGone[claim] = time.Now()
				t.mu.Unlock()
				t.notify()
			}
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	nsf.Start(ctx.Done())
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), claims.HasSynced, pvs.HasSynced) {
		cancel()
		return nil, fmt.Errorf("informers did not sync")
	}
	return t, nil
}

func (t *tracker) notify() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond, checked under the lock, holds.
func (t *tracker) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t.mu.Lock()
		ok := cond()
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("gave up after %s waiting for %s", timeout, what)
		case <-t.changed:
		case <-tick.C:
		}
	}
}

func (b *bench) claim(name string) *corev1.PersistentVolumeClaim {
	return framework.Claim(b.ns, name, b.class, "1Gi")
}

// parallel runs fn for 0..n-1 with at most width at once and returns the
// first error.
func parallel(n, width int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range width {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// createClaims creates n claims named prefix-i, 16 at a time, and returns
// when each Create returned.
func (b *bench) createClaims(ctx context.Context, prefix string, n int) (map[string]time.Time, error) {
	var mu sync.Mutex
	created := map[string]time.Time{}
	err := parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		if _, err := b.kube.CoreV1().PersistentVolumeClaims(b.ns).Create(ctx, b.claim(name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create claim %s: %w", name, err)
		}
		mu.Lock()
		created[name] = time.Now()
		mu.Unlock()
		return nil
	})
	return created, err
}

// deleteClaims deletes the named claims, 16 at a time.
func (b *bench) deleteClaims(ctx context.Context, names []string) error {
	return parallel(len(names), 16, func(i int) error {
		return b.kube.CoreV1().PersistentVolumeClaims(b.ns).Delete(ctx, names[i], metav1.DeleteOptions{})
	})
}

// leftovers counts the Cinder volumes of the run's cluster id.
func (b *bench) leftovers(ctx context.Context) (int, error) {
	vols, err := listVolumes(ctx, b, map[string]string{contract.MetaClusterID: b.cluster})
	return len(vols), err
}
