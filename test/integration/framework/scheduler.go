package framework

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StartScheduler runs the stack's kube-scheduler (hack/build-kube.sh builds
// it next to kube-apiserver) against the stack's API server, without leader
// election and without its HTTPS endpoint, until the test ends: it is
// started and stopped by its PID. The stack itself runs no scheduler, so
// pods stay unscheduled in every other test. kube-scheduler without leader
// election exits 1 on SIGTERM: that is its normal stop, not a failure.
func (s *Stack) StartScheduler(t testing.TB) *Process {
	t.Helper()
	kubectl, err := filepath.EvalSymlinks(filepath.Join(s.OutDir, "kubectl"))
	if err != nil {
		t.Fatalf("find the stack's Kubernetes binaries: %v", err)
	}
	bin := filepath.Join(filepath.Dir(kubectl), "kube-scheduler")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kube-scheduler missing (bash hack/build-kube.sh builds it): %v", err)
	}
	p := Start(t, "kube-scheduler", bin, "--kubeconfig", s.Kubeconfig, "--leader-elect=false", "--secure-port", "0", "--v", "2")
	p.termExitOK = true
	return p
}

// CreateReadyNode creates a Node with the labels, room for pods and a
// Ready condition, and deletes it when the test ends. There is no kubelet:
// the Node only gives kube-scheduler somewhere to put pods, which never run.
// The API server's admission taints a new Node node.kubernetes.io/not-ready
// (TaintNodesByCondition) and no node lifecycle controller runs to lift it,
// so the taint is removed here.
func (s *Stack) CreateReadyNode(t testing.TB, name string, labels map[string]string) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	nodes := s.Kube.CoreV1().Nodes()
	n, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := nodes.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete Node %s: %v", name, err)
		}
	})
	room := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	err = Retry(30*time.Second, func() error {
		cur, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Capacity, cur.Status.Allocatable = room, room
		cur.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}
		if cur, err = nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
		cur.Spec.Taints = nil
		n, err = nodes.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("make Node %s ready and untainted: %v", name, err)
	}
	return n
}
