package provisioner

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// applySecret creates a Secret a mapper produced, or updates the one an
// earlier attempt for the same PV created.
func (p *Provisioner) applySecret(ctx context.Context, s *corev1.Secret) error {
	secrets := p.kube.CoreV1().Secrets(s.Namespace)
	_, err := secrets.Create(ctx, s, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	}
	old, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if old.Labels[mapper.LabelPV] != s.Labels[mapper.LabelPV] {
		return &foreignSecretError{namespace: s.Namespace, name: s.Name, pv: s.Labels[mapper.LabelPV]}
	}
	s.ResourceVersion = old.ResourceVersion
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// deleteSecret deletes a Secret this provisioner made for the PV; one that
// is gone is fine, one that is someone else's is left alone.
func (p *Provisioner) deleteSecret(ctx context.Context, namespace, name, pvName string) error {
	secrets := p.kube.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", namespace, name, err)
	}
	if s.Labels[mapper.LabelPV] != pvName {
		klog.FromContext(ctx).Info("Not deleting Secret that is not this PV's", "secret", klog.KObj(s), "pv", pvName)
		return nil
	}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

// deleteSecretUnlabeled deletes a Secret whatever its labels; gone is fine.
func (p *Provisioner) deleteSecretUnlabeled(ctx context.Context, namespace, name string) error {
	err := p.kube.CoreV1().Secrets(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", namespace, name, err)
	}
	return nil
}
