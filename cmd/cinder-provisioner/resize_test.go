package main

import (
	"context"
	"testing"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	cinderfake "github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

// The resizer is wired by default (it runs in runController, on the
// leader) and --resize-workers=0 leaves it out.
func TestResizerIsWiredAndCanBeTurnedOff(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	a, _ := testApp(t, ctx, false)
	if a.resizer == nil {
		t.Fatal("no resizer with the default --resize-workers")
	}
	a.broadcaster.Shutdown()
	_ = a.server.listener.Close()

	o := NewOptions()
	o.ClusterID, o.SecretNamespace = "c1", "default"
	o.MetricsAddress = ""
	o.ResizeWorkers = 0
	o.Complete(fakeEnv(nil, ""))
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := newApp(ctx, o, cinderfake.New(), fake.NewClientset(), nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	defer b.broadcaster.Shutdown()
	if b.resizer != nil {
		t.Error("a resizer with --resize-workers=0")
	}
}

// The snapshotter is wired by default when the snapshot client is there
// and --snapshot-workers=0 leaves it out.
func TestSnapshotterIsWiredAndCanBeTurnedOff(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	for _, workers := range []int{2, 0} {
		o := NewOptions()
		o.ClusterID, o.SecretNamespace = "c1", "default"
		o.MetricsAddress = ""
		o.SnapshotWorkers = workers
		o.Complete(fakeEnv(nil, ""))
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		a, err := newApp(ctx, o, cinderfake.New(), fake.NewClientset(), nil, snapfake.NewSimpleClientset(), prometheus.NewRegistry()) //nolint:staticcheck // client/v8 generates no apply configurations, so its fake has no NewClientset
		if err != nil {
			t.Fatalf("newApp: %v", err)
		}
		a.broadcaster.Shutdown()
		if got := a.snapshotter != nil; got != (workers > 0) {
			t.Errorf("--snapshot-workers=%d: snapshotter wired %v", workers, got)
		}
	}
}
