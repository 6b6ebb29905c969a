package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The source claim of a clone carries contract.FinalizerCloneSource from before the
// clone's create is sent until no clone of it is Pending any more. Every
// end of a clone claim's attempt (bound, refused, forgotten) releases it
// when that holds, and Sweep releases what a crash or a claim deleted while
// no provisioner ran left: the finalizer is removed by whoever sees, last,
// that no Pending clone needs it. While a clone is Pending (even a refused
// one) the source stays protected, as with csi-provisioner.

// protectSource puts the finalizer on the claim a clone is made from.
func (p *Provisioner) protectSource(ctx context.Context, opts controller.ProvisionOptions, src *source) error {
	if src == nil || src.kind != kindClaim {
		return nil
	}
	ns := opts.PVC.Namespace
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, src.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.DeletionTimestamp != nil {
			return &sourceError{fmt.Sprintf("the claim to clone, %s/%s, is being deleted", ns, src.name)}
		}
		if slices.Contains(c.Finalizers, contract.FinalizerCloneSource) {
			return nil
		}
		c.Finalizers = append(c.Finalizers, contract.FinalizerCloneSource)
		_, err = p.kube.CoreV1().PersistentVolumeClaims(ns).Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	var se *sourceError
	switch {
	case errors.As(err, &se):
		return err
	case apierrors.IsNotFound(err):
		return &sourceError{fmt.Sprintf("the claim to clone, %s/%s, does not exist", ns, src.name)}
	case err != nil:
		return fmt.Errorf("protect claim to clone %s/%s with finalizer %s: %w", ns, src.name, contract.FinalizerCloneSource, err)
	}
	klog.FromContext(ctx).V(4).Info("Protected claim to clone", "source", klog.KRef(ns, src.name))
	return nil
}

// releaseSource removes the finalizer from the claim the given claim
// clones, unless another Pending clone of it still needs it.
func (p *Provisioner) releaseSource(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	group, kind, name, ns, ok := claimDataSource(claim)
	if !ok || group != "" || kind != kindClaim || ns != claim.Namespace {
		return nil
	}
	_, err := p.releaseClaim(ctx, ns, name, claim.UID)
	return err
}

// releaseClaim removes contract.FinalizerCloneSource from the claim ns/name, and
// says whether it did, unless a Pending clone of it other than except (a
// claim UID; "": none) still needs it. The clone's next attempt may still
// send Cinder a clone of the source's volume, so the source must not go
// before its last Pending clone.
func (p *Provisioner) releaseClaim(ctx context.Context, ns, name string, except types.UID) (bool, error) {
	released := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !slices.Contains(c.Finalizers, contract.FinalizerCloneSource) {
			return nil
		}
		busy, err := p.pendingClone(ctx, ns, name, except)
		if err != nil || busy != "" {
			if busy != "" {
				klog.FromContext(ctx).V(4).Info("Claim to clone stays protected", "source", klog.KRef(ns, name), "pendingClone", busy)
			}
			return err
		}
		c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == contract.FinalizerCloneSource })
		if _, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Update(ctx, c, metav1.UpdateOptions{}); err != nil {
			return err
		}
		klog.FromContext(ctx).V(2).Info("Released claim to clone", "source", klog.KRef(ns, name))
		released = true
		return nil
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("release claim to clone %s/%s from finalizer %s: %w", ns, name, contract.FinalizerCloneSource, err)
	}
	return released, nil
}

// pendingClone names a claim in ns, other than the one of UID except, that
// clones ns/name and is neither Bound, Lost nor being deleted; "" when
// there is none. Only such a claim has an attempt still to come that reads
// the source.
func (p *Provisioner) pendingClone(ctx context.Context, ns, name string, except types.UID) (string, error) {
	list, err := p.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list claims in %s: %w", ns, err)
	}
	for i := range list.Items {
		c := &list.Items[i]
		if except != "" && c.UID == except || c.DeletionTimestamp != nil || c.Status.Phase == corev1.ClaimBound || c.Status.Phase == corev1.ClaimLost {
			continue
		}
		g, k, n, cns, ok := claimDataSource(c)
		if ok && g == "" && k == kindClaim && n == name && cns == ns {
			return c.Name, nil
		}
	}
	return "", nil
}

// releaseStaleProtections removes the finalizer from every claim that
// carries it while no Pending clone needs it any more: what a crash
// between a clone's create and its release, or a clone deleted while no
// provisioner ran, left. It returns how many claims it released.
func (p *Provisioner) releaseStaleProtections(ctx context.Context) (int, error) {
	list, err := p.kube.CoreV1().PersistentVolumeClaims(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list claims: %w", err)
	}
	n := 0
	var errs []error
	for i := range list.Items {
		c := &list.Items[i]
		if !slices.Contains(c.Finalizers, contract.FinalizerCloneSource) {
			continue
		}
		released, err := p.releaseClaim(ctx, c.Namespace, c.Name, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if released {
			n++
		}
	}
	return n, errors.Join(errs...)
}
