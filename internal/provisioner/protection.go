package provisioner

import (
	"context"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The claim's contract.FinalizerProvisioning (keys.go) is put on by an attempt
// before its first Cinder request that can make or change a volume, and
// taken off in exactly two cases:
//   - the claim is bound to its PV (the Guard sees spec.volumeName): from
//     then on the PV and its reclaim policy own the volume, as Kubernetes
//     documents;
//   - the claim is refused or deleted and nothing made for it is left
//     (volume, exports, Secret): the end of an attempt (Provision), or the
//     Guard for a claim deleted while no attempt runs (also one the library
//     no longer calls Provision for, and one deleted while no provisioner
//     ran).
// The claim locks make sure one of the two (an attempt, the Guard) acts on
// a claim's volume at a time.

// claimLocks serialises the work on one claim's volume between the
// library's attempt and the Guard.
type claimLocks struct {
	mu   sync.Mutex
	held map[types.UID]chan struct{}
}

// lock waits until the claim is free, or ctx ends.
func (l *claimLocks) lock(ctx context.Context, uid types.UID) error {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[types.UID]chan struct{}{}
		}
		ch, busy := l.held[uid]
		if !busy {
			l.held[uid] = make(chan struct{})
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for other work on claim %s: %w", uid, ctx.Err())
		}
	}
}

// tryLock takes the claim if it is free.
func (l *claimLocks) tryLock(uid types.UID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[types.UID]chan struct{}{}
	}
	if _, busy := l.held[uid]; busy {
		return false
	}
	l.held[uid] = make(chan struct{})
	return true
}

func (l *claimLocks) unlock(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[uid]; ok {
		close(ch)
		delete(l.held, uid)
	}
}

// liveClaim reads the claim from the API server: nil when it is gone or was
// made anew under the same name (another UID).
func (p *Provisioner) liveClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	live, err := p.kube.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get claim %s/%s: %w", claim.Namespace, claim.Name, err)
	case live.UID != claim.UID:
		return nil, nil
	}
	return live, nil
}

func protected(claim *corev1.PersistentVolumeClaim) bool {
	return claim != nil && slices.Contains(claim.Finalizers, contract.FinalizerProvisioning)
}

// protect puts contract.FinalizerProvisioning, with
// contract.AnnProvisioningStarted, on the live claim (updated in place).
// first is true when this update put them on a claim that carried neither:
// no Cinder request was ever sent for it, so no volume of its name exists.
// A claim being deleted is not protected anew: nothing is made for it.
func (p *Provisioner) protect(ctx context.Context, live *corev1.PersistentVolumeClaim) (first bool, err error) {
	if protected(live) {
		return false, nil
	}
	var unmarked bool                      // the claim the last edit changed carried no mark
	var seen *corev1.PersistentVolumeClaim // the claim the last edit saw
	updated, err := p.editFinalizers(ctx, live, func(c *corev1.PersistentVolumeClaim) bool {
		seen = c
		if c.DeletionTimestamp != nil || protected(c) {
			return false
		}
		_, marked := c.Annotations[contract.AnnProvisioningStarted]
		unmarked = !marked
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[contract.AnnProvisioningStarted] = "true"
		c.Finalizers = append(c.Finalizers, contract.FinalizerProvisioning)
		return true
	})
	if err != nil {
		return false, fmt.Errorf("protect claim %s/%s with finalizer %s: %w", live.Namespace, live.Name, contract.FinalizerProvisioning, err)
	}
	switch {
	case updated != nil:
		*live = *updated
		p.inflight.protected(live.UID)
	case seen != nil:
		// another process protected it first, or it is being deleted
		*live = *seen
	}
	if !protected(live) || live.DeletionTimestamp != nil {
		return false, fmt.Errorf("claim %s/%s is being deleted: nothing is made for it", live.Namespace, live.Name)
	}
	first = updated != nil && unmarked
	klog.FromContext(ctx).V(4).Info("Protected claim while its volume is in flight", "first", first)
	return first, nil
}

// unprotect takes contract.FinalizerProvisioning off the claim of uid, if it
// still carries it.
func (p *Provisioner) unprotect(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	_, err := p.editFinalizers(ctx, claim, func(c *corev1.PersistentVolumeClaim) bool {
		if !protected(c) {
			return false
		}
		c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == contract.FinalizerProvisioning })
		return true
	})
	if err != nil {
		return fmt.Errorf("release claim %s/%s from finalizer %s: %w", claim.Namespace, claim.Name, contract.FinalizerProvisioning, err)
	}
	p.inflight.released(claim.UID)
	klog.FromContext(ctx).V(4).Info("Released claim from its provisioning finalizer", "pvc", klog.KObj(claim))
	return nil
}

// editFinalizers applies edit to the live claim of the same UID and saves
// it, re-reading on conflict. edit returns false when there is nothing to
// change. It returns the saved claim (nil: nothing saved); a claim that is
// gone is no error.
func (p *Provisioner) editFinalizers(ctx context.Context, claim *corev1.PersistentVolumeClaim, edit func(*corev1.PersistentVolumeClaim) bool) (*corev1.PersistentVolumeClaim, error) {
	var saved *corev1.PersistentVolumeClaim
	cur := claim.DeepCopy()
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first || cur.ResourceVersion == "" {
			live, err := p.liveClaim(ctx, claim)
			if err != nil {
				return err
			}
			if live == nil {
				return nil
			}
			cur = live
		}
		first = false
		if !edit(cur) {
			return nil
		}
		out, err := p.kube.CoreV1().PersistentVolumeClaims(cur.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		saved = out
		return nil
	})
	return saved, err
}
