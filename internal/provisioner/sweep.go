package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// Sweep removes the volumes of claims that were deleted while no attempt of
// this process knew of them: the library keeps a claim it must call again
// (InBackground) in memory only, so a claim deleted while the provisioner
// was down, or between a restart and its first attempt, is never called
// again, and a volume an earlier attempt made for it would strand.
//
// A volume is removed only when every one of these holds: it carries this
// cluster id and provisioner name; it was made for a class with reclaim
// policy Delete (recorded in its metadata: Retain and unknown are never
// touched); and either a PV of its name exists but is backed by another
// volume (this one is a second volume of the name, referenced by nothing),
// or no PV of its name exists and the claim it names is gone, or was made
// anew under the same name (another UID). A claim that still exists
// is the library's to finish. It returns how many volumes it removed.
func (p *Provisioner) Sweep(ctx context.Context) (int, error) {
	logger := klog.FromContext(ctx)
	vols, err := p.cinder.ListVolumes(ctx, map[string]string{MetaClusterID: p.clusterID, MetaProvisioner: p.name})
	if err != nil {
		return 0, fmt.Errorf("list volumes of cluster %s: %w", p.clusterID, err)
	}
	removed := 0
	var errs []error
	for _, v := range vols {
		stranded, err := p.stranded(ctx, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !stranded {
			continue
		}
		pvName := v.Metadata[MetaPVName]
		logger.Info("Removing volume of a deleted claim", "volumeID", v.ID, "pv", pvName,
			"pvc", klog.KRef(v.Metadata[MetaPVCNamespace], v.Metadata[MetaPVCName]), "status", v.Status)
		if err := p.removeVolume(ctx, v.ID, p.connector); err != nil {
			errs = append(errs, fmt.Errorf("remove volume %s of deleted claim %s/%s: %w", v.ID, v.Metadata[MetaPVCNamespace], v.Metadata[MetaPVCName], err))
			continue
		}
		if err := p.deleteSecret(ctx, p.secretNamespace, mapper.ChapSecretName(pvName), pvName); err != nil {
			errs = append(errs, err)
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// stranded reports whether a volume of ours belongs to a deleted claim and
// may go (see Sweep).
func (p *Provisioner) stranded(ctx context.Context, v cinder.Volume) (bool, error) {
	md := v.Metadata
	pvName, ns, name := md[MetaPVName], md[MetaPVCNamespace], md[MetaPVCName]
	if md[MetaReclaimPolicy] != string(corev1.PersistentVolumeReclaimDelete) || pvName == "" || ns == "" || name == "" || v.Name != pvName {
		return false, nil
	}
	uid, ok := strings.CutPrefix(pvName, "pvc-")
	if !ok {
		return false, nil
	}
	pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	switch {
	case err == nil:
		// the library's delete path owns the PV's volume; a second volume
		// of the PV's name (a create that landed after the lookup of the
		// attempt that bound) is referenced by nothing
		return pv.Annotations[AnnVolumeID] != "" && pv.Annotations[AnnVolumeID] != v.ID, nil
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("get PV %s: %w", pvName, err)
	}
	claim, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get claim %s/%s: %w", ns, name, err)
	}
	return string(claim.UID) != uid, nil
}

// RunSweeps calls Sweep every interval until ctx ends; the first sweep is
// one interval after the start, so that a restart costs no Cinder call.
func (p *Provisioner) RunSweeps(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	logger := klog.FromContext(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := p.releaseStaleProtections(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Releasing claims no pending clone needs did not finish; the next sweep retries", "released", n)
		}
		n, err := p.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error(err, "Sweep for volumes of deleted claims did not finish; the next one retries", "removed", n)
			continue
		}
		logger.V(2).Info("Swept for volumes of deleted claims", "removed", n)
	}
}
