package main

import (
	"context"
	"testing"

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
	b, err := newApp(ctx, o, cinderfake.New(), fake.NewClientset(), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	defer b.broadcaster.Shutdown()
	if b.resizer != nil {
		t.Error("a resizer with --resize-workers=0")
	}
}
