package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// UniqueName returns prefix plus a random suffix: names that cannot collide
// with another test or an earlier run.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Namespace creates a namespace for the test and deletes it at the end.
func (s *Stack) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: UniqueName(prefix)}}
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		releaseClaims(t, s, ns.Name)
		err := s.Kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// Eventually polls cond every 100 ms until it returns true, an error, or
// timeout passes; the test fails with msg in the last two cases.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("%s: %v (waited up to %s)", msg, err, timeout)
	}
}

// provisioningFinalizer is cinder-provisioner's hold on a claim whose volume
// is in flight.
const provisioningFinalizer = "cinder.openstack.org/provisioning-protection"

// releaseClaims takes the provisioner's finalizer off the claims a test
// left in its namespace, so that the namespace can go: by the time the
// namespace is deleted, the test's provisioners have stopped and its volumes
// are removed by metadata (what an admin's uninstall does, docs/design.md).
func releaseClaims(t testing.TB, s *Stack, ns string) {
	ctx := context.Background()
	claims, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("cleanup: list claims of %s: %v", ns, err)
		return
	}
	for i := range claims.Items {
		c := &claims.Items[i]
		if !slices.Contains(c.Finalizers, provisioningFinalizer) {
			continue
		}
		c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == provisioningFinalizer })
		if _, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Update(ctx, c, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("cleanup: release claim %s/%s: %v", ns, c.Name, err)
		}
	}
}
