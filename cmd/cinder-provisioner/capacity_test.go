package main

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	cinderfake "github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

// The capacity publisher is off by default; with --capacity it runs with
// the controller and keeps the CSIDriver named after the provisioner.
func TestCapacityIsOffByDefaultAndRunsWithTheController(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	for _, on := range []bool{false, true} {
		o := NewOptions()
		o.ClusterID, o.SecretNamespace = "c1", "default"
		o.MetricsAddress = ""
		o.LeaderElect = false
		if on {
			o.Capacity, o.ProvisionerName = true, "cinder.openstack.org"
		}
		o.Complete(fakeEnv(nil, ""))
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		kube := fake.NewClientset()
		a, err := newApp(ctx, o, cinderfake.New(), kube, nil, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("newApp: %v", err)
		}
		if got := a.capacity != nil; got != on {
			a.broadcaster.Shutdown()
			t.Fatalf("--capacity=%v: publisher wired %v", on, got)
		}
		if !on {
			a.broadcaster.Shutdown()
			continue
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.run(runCtx) }()
		err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			d, err := kube.StorageV1().CSIDrivers().Get(ctx, "cinder.openstack.org", metav1.GetOptions{})
			return err == nil && d.Spec.StorageCapacity != nil && *d.Spec.StorageCapacity, nil
		})
		stop()
		if runErr := <-done; runErr != nil {
			t.Errorf("run: %v", runErr)
		}
		if err != nil {
			t.Fatalf("no CSIDriver with storageCapacity: %v", err)
		}
	}
}
