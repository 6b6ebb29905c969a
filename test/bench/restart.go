package main

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// restartCase is one P3 start: how long to ready, what it cost.
type restartCase struct {
	What        string
	Objects     int
	Ready       time.Duration
	CinderCalls float64 // requests in the first settle period after ready
	CallsByOp   string
	Usage       usage
	Load        time.Duration // time the bench took to create the objects
}

type restartResult struct {
	Settle time.Duration
	Cases  []restartCase
}

// settle is how long P3 watches a started provisioner for Cinder calls
// after it is ready.
const settle = 10 * time.Second

func (b *bench) restart(ctx context.Context, cfg config) (*restartResult, error) {
	n := cfg.p3Objects
	res := &restartResult{Settle: settle}
	fmt.Printf("P3: %d PVs of ours in the API server\n", n)
	load := time.Now()
	pvNames := make([]string, n)
	if err := parallel(n, 32, func(i int) error {
		pv := b.fakePV(i)
		pvNames[i] = pv.Name
		_, err := b.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create PVs: %w", err)
	}
	defer b.deletePVs(pvNames)
	c, err := b.startCost(ctx, cfg, fmt.Sprintf("%d PVs of ours", n), n, "p3-pvs")
	if err != nil {
		return nil, err
	}
	c.Load = time.Since(load)
	res.Cases = append(res.Cases, *c)

	fmt.Printf("P3: and %d Pending claims of another provisioner\n", n)
	load = time.Now()
	other := "bench-other-" + b.runID
	mode := storagev1.VolumeBindingImmediate
	if _, err := b.kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: other}, Provisioner: "example.com/not-ours-" + b.runID, VolumeBindingMode: &mode,
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	defer func() {
		_ = b.kube.StorageV1().StorageClasses().Delete(context.Background(), other, metav1.DeleteOptions{})
	}()
	if err := parallel(n, 32, func(i int) error {
		c := b.claim(fmt.Sprintf("other-%05d", i))
		c.Spec.StorageClassName = &other
		c.Labels = map[string]string{"bench": b.runID}
		_, err := b.kube.CoreV1().PersistentVolumeClaims(b.ns).Create(ctx, c, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create claims: %w", err)
	}
	defer b.deleteOtherClaims(n)
	c, err = b.startCost(ctx, cfg, fmt.Sprintf("%d PVs of ours and %d Pending claims of another provisioner", n, n), 2*n, "p3-claims")
	if err != nil {
		return nil, err
	}
	c.Load = time.Since(load)
	res.Cases = append(res.Cases, *c)
	return res, nil
}

// startCost starts a provisioner, waits until it is ready and for settle
// more, and reads what it cost.
func (b *bench) startCost(ctx context.Context, cfg config, what string, objects int, label string) (*restartCase, error) {
	p, err := b.start(cfg, label, cfg.workers)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	ready, err := p.waitReady(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(settle):
	}
	s, err := p.scrape(ctx)
	if err != nil {
		return nil, err
	}
	byOp, total := s.cinderCalls()
	u, err := p.usage()
	if err != nil {
		return nil, err
	}
	return &restartCase{What: what, Objects: objects, Ready: ready, CinderCalls: total, CallsByOp: formatCalls(byOp), Usage: u}, nil
}

// fakePV is a PV as the provisioner makes them, for a volume that need not
// exist: Available (no claim), so that nothing acts on it.
func (b *bench) fakePV(i int) *corev1.PersistentVolume {
	id := string(uuid.NewUUID())
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("pvc-bench-%s-%05d", b.runID, i),
			Annotations: map[string]string{
				"pv.kubernetes.io/provisioned-by": b.name,
				contract.AnnVolumeID:              id,
				contract.AnnExportMethod:          "attachments",
				contract.AnnExportID:              string(uuid.NewUUID()),
				contract.AnnProvisionerIdentity:   b.name,
			},
			Labels: map[string]string{"bench": b.runID},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              b.class,
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + id, Lun: 1, FSType: "ext4",
			}},
		},
	}
}

// deleteOtherClaims removes P3's claims of the other provisioner and waits
// until they are gone, so that the stack is idle again after the run.
func (b *bench) deleteOtherClaims(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	sel := metav1.ListOptions{LabelSelector: "bench=" + b.runID}
	claims := b.kube.CoreV1().PersistentVolumeClaims(b.ns)
	if err := claims.DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		fmt.Printf("P3: delete claims: %v\n", err)
		return
	}
	// their pvc-protection finalizer, which kube-controller-manager would
	// drop at 20 requests/s: nothing uses these claims
	if err := parallel(n, 32, func(i int) error {
		_, err := claims.Patch(ctx, fmt.Sprintf("other-%05d", i), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}); err != nil {
		fmt.Printf("P3: drop the claims' finalizers: %v\n", err)
	}
	for ctx.Err() == nil {
		sel.Limit = 1
		l, err := b.kube.CoreV1().PersistentVolumeClaims(b.ns).List(ctx, sel)
		if err == nil && len(l.Items) == 0 {
			fmt.Printf("P3: deleted the other provisioner's claims in %.0f s\n", time.Since(start).Seconds())
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("P3: the other provisioner's claims were not all gone after 10 min\n")
}

func (b *bench) deletePVs(names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	// kube-controller-manager's pv-protection controller would let them
	// go at its client's 20 requests/s: the bench drops the finalizer of its
	// own fake PVs itself
	if err := parallel(len(names), 32, func(i int) error {
		pvs := b.kube.CoreV1().PersistentVolumes()
		if err := pvs.Delete(ctx, names[i], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		_, err := pvs.Patch(ctx, names[i], types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}); err != nil {
		fmt.Printf("P3: delete PVs: %v\n", err)
	}
	sel := metav1.ListOptions{LabelSelector: "bench=" + b.runID, Limit: 1}
	for ctx.Err() == nil {
		l, err := b.kube.CoreV1().PersistentVolumes().List(ctx, sel)
		if err == nil && len(l.Items) == 0 {
			fmt.Printf("P3: deleted %d PVs in %.0f s\n", len(names), time.Since(start).Seconds())
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("P3: %d PVs were not all gone after 10 min\n", len(names))
}

func (r *restartResult) print(w io.Writer) {
	for _, c := range r.Cases {
		fmt.Fprintf(w, "P3 restart with %s: ready in %.2f s; Cinder requests in the first %s after ready: %.0f (%s); RSS %.0f MiB (peak %.0f), CPU %.1f s\n",
			c.What, c.Ready.Seconds(), r.Settle, c.CinderCalls, c.CallsByOp, c.Usage.RSSMiB, c.Usage.PeakMiB, c.Usage.CPUSec)
	}
}
