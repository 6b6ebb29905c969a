package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestR5LeastPrivilege checks the identity every provisioner of the suite
// runs with: the shipped ServiceAccount and RBAC can use Secrets in the
// provisioner's own namespace, and cannot read any elsewhere.
func TestR5LeastPrivilege(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	cfg, err := clientcmd.BuildConfigFromFlags("", shared.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secret := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "r5-probe", Namespace: ns}, StringData: map[string]string{"password": "r5-not-for-the-provisioner"}}
	}
	// made by the admin in a namespace the provisioner has no business in
	if _, err := e.s.Kube.CoreV1().Secrets(e.ns).Create(ctx, secret(e.ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	checks := 0
	refused := func(what string, err error) {
		t.Helper()
		checks++
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
	_, err = sa.CoreV1().Secrets(e.ns).Get(ctx, "r5-probe", metav1.GetOptions{})
	refused("get a Secret in a claim namespace", err)
	_, err = sa.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	refused("list Secrets in kube-system", err)
	_, err = sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	refused("list Secrets cluster-wide", err)
	_, err = sa.CoreV1().Secrets(baseNamespace).List(ctx, metav1.ListOptions{})
	refused("list Secrets in its own namespace", err)
	_, err = sa.CoreV1().Secrets(e.ns).Create(ctx, secret(e.ns), metav1.CreateOptions{})
	refused("create a Secret in a claim namespace", err)
	// what it needs works: create, get, delete by name in its own namespace
	if _, err := sa.CoreV1().Secrets(baseNamespace).Create(ctx, secret(baseNamespace), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Errorf("create a Secret in its own namespace: %v", err)
	}
	if _, err := sa.CoreV1().Secrets(baseNamespace).Get(ctx, "r5-probe", metav1.GetOptions{}); err != nil {
		t.Errorf("get a Secret in its own namespace: %v", err)
	}
	if err := sa.CoreV1().Secrets(baseNamespace).Delete(ctx, "r5-probe", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete a Secret in its own namespace: %v", err)
	}
	checks += 3
	results.add(row{
		scenario: "R5 least privilege",
		load:     "every provisioner of the suite runs as ServiceAccount " + baseNamespace + "/" + serviceAccountName + " with deploy/kubernetes RBAC",
		faults:   "-",
		events:   fmt.Sprintf("%d access checks (Secrets outside its namespace, and list, refused)", checks),
		recover:  "-", duration: time.Since(start), passed: !t.Failed(),
	})
}
