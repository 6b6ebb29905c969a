package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
	"github.com/cinder-provisioner/cinder-provisioner/internal/refs"
)

// The sweep. With contract.FinalizerProvisioning, a claim deleted while its volume
// is in flight stays until the provisioner has cleaned up, so the sweep no
// longer guesses which volumes belong to deleted claims. What it is still
// for: volumes nothing in Kubernetes records, which only a lost answer can
// make: a create Cinder applied after the attempt that sent it gave up and a
// later attempt had looked the name up (a second volume of the name, never
// exported), or one of a claim made before the finalizer existed. It
// deletes a volume only on proof, all of it read at the sweep: it carries
// this cluster and provisioner; its metadata says reclaim policy Delete
// (Retain and unknown are kept: a hint to keep is always honoured); no
// claim of its UID exists; no PV anywhere refers to it (live PV list, any
// field); it is available or in error with no export in any state
// (attachments API); and Cinder's own clock says it is older than the grace
// period. Everything else it keeps and reports (log, metric
// cinder_provisioner_sweep_volumes; `orphans` lists them).

// DefaultSweepGrace is how old, by Cinder's clock, an unreferenced volume
// must be before the sweep deletes it.
const DefaultSweepGrace = time.Hour

// verdict is what the sweep decides about one volume of ours.
type verdict int

const (
	// sweepDelete: proven unreferenced and unwanted.
	sweepDelete verdict = iota
	// keepReferenced: a PV refers to it.
	keepReferenced
	// keepClaim: the claim it was made for exists and is not bound to its
	// PV yet (or still carries contract.FinalizerProvisioning): that claim's
	// attempt or finalizer owns it. A second volume of the name of a claim
	// bound to its PV is nobody's: the PV names the other one.
	keepClaim
	// keepPolicy: its metadata does not say reclaim policy Delete.
	keepPolicy
	// keepYoung: younger than the grace period by Cinder's clock, or
	// Cinder did not say its age.
	keepYoung
	// keepStatus: a status work is under way in (creating, in-use,
	// deleting, ...).
	keepStatus
	// keepExported: an export of it exists (a host may use it).
	keepExported
)

var verdictNames = map[verdict]string{
	sweepDelete: "deleted", keepReferenced: "referenced", keepClaim: "claim", keepPolicy: "policy",
	keepYoung: "young", keepStatus: "status", keepExported: "exported",
}

func (v verdict) String() string { return verdictNames[v] }

// sweepFacts is what one sweep read of Kubernetes.
type sweepFacts struct {
	refs   *refs.References
	claims map[types.UID]bool // true: in flight (not bound, or protected)
	grace  time.Duration
}

// judge decides from what was read, before any export is looked up.
func judge(v cinder.Volume, f sweepFacts) verdict {
	if len(f.refs.Of(v.ID)) > 0 {
		return keepReferenced
	}
	if uid, ok := claimUIDOf(v); ok && f.claims[uid] {
		return keepClaim
	}
	if !strings.EqualFold(v.Metadata[contract.MetaReclaimPolicy], string(corev1.PersistentVolumeReclaimDelete)) {
		return keepPolicy
	}
	if age, ok := v.Age(); !ok || age < f.grace {
		return keepYoung
	}
	if v.Status != cinder.StatusAvailable && v.Status != cinder.StatusError || len(v.AttachmentIDs) > 0 {
		return keepStatus
	}
	return sweepDelete
}

// claimUIDOf is the UID of the claim a volume was made for, from its name
// (pvc-<uid>) or its pv-name metadata.
func claimUIDOf(v cinder.Volume) (types.UID, bool) {
	for _, n := range []string{v.Name, v.Metadata[contract.MetaPVName]} {
		if uid, ok := strings.CutPrefix(n, "pvc-"); ok && uuidRE.MatchString(uid) {
			return types.UID(uid), true
		}
	}
	return "", false
}

// Sweep deletes the volumes of this cluster and provisioner that are proven
// unreferenced (see above) and reports the others. It returns how many it
// deleted.
func (p *Provisioner) Sweep(ctx context.Context) (int, error) {
	logger := klog.FromContext(ctx)
	vols, err := p.cinder.ListVolumes(ctx, map[string]string{contract.MetaClusterID: p.clusterID, contract.MetaProvisioner: p.name})
	if err != nil {
		return 0, fmt.Errorf("list volumes of cluster %s: %w", p.clusterID, err)
	}
	if len(vols) == 0 {
		p.metrics.swept(nil)
		return 0, nil
	}
	// Kubernetes is read after Cinder: a PV or claim made for a volume
	// listed above is seen
	index, _, err := refs.ListReferences(ctx, p.kube)
	if err != nil {
		return 0, err
	}
	claims, err := p.claimUIDs(ctx)
	if err != nil {
		return 0, err
	}
	facts := sweepFacts{refs: index, claims: claims, grace: p.sweepGrace}
	counts := map[verdict]int{}
	removed := 0
	var errs []error
	for _, v := range vols {
		if v.Metadata[contract.MetaClusterID] != p.clusterID || v.Metadata[contract.MetaProvisioner] != p.name {
			continue // whatever Cinder's filter did
		}
		verdict := judge(v, facts)
		if verdict == sweepDelete {
			if verdict, err = p.exportsOf(ctx, v.ID); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		counts[verdict]++
		pvc := klog.KRef(v.Metadata[contract.MetaPVCNamespace], v.Metadata[contract.MetaPVCName])
		switch verdict {
		case keepReferenced, keepClaim:
			continue
		case keepPolicy, keepExported, keepStatus:
			logger.Info("Keeping a volume no PV refers to; an admin decides (cinder-provisioner orphans)", "volumeID", v.ID, "name", v.Name, "pvc", pvc,
				"why", verdict.String(), "status", v.Status, "reclaimPolicy", v.Metadata[contract.MetaReclaimPolicy])
			continue
		case keepYoung:
			logger.V(2).Info("Volume no PV refers to is younger than the grace period; a later sweep looks again", "volumeID", v.ID, "created", v.CreatedAt, "cinderTime", v.ReadAt)
			continue
		}
		logger.Info("Deleting a volume that nothing refers to", "volumeID", v.ID, "name", v.Name, "pvc", pvc, "created", v.CreatedAt, "cinderTime", v.ReadAt)
		if err := p.removeVolume(ctx, v.ID, p.connector); err != nil {
			errs = append(errs, fmt.Errorf("remove unreferenced volume %s: %w", v.ID, err))
			continue
		}
		pvName := v.Metadata[contract.MetaPVName]
		ns := v.Metadata[contract.MetaSecretNamespace]
		if ns == "" {
			ns = p.secretNamespace
		}
		if pvName != "" {
			if err := p.deleteSecret(ctx, ns, mapper.ChapSecretName(pvName), pvName); err != nil {
				errs = append(errs, err)
			}
		}
		removed++
	}
	p.metrics.swept(counts)
	return removed, errors.Join(errs...)
}

// exportsOf is sweepDelete when the volume has no export in any state.
func (p *Provisioner) exportsOf(ctx context.Context, id string) (verdict, error) {
	exps, err := p.cinder.ListExports(ctx, id)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		return keepStatus, nil // gone meanwhile: nothing to do
	case err != nil:
		return keepExported, fmt.Errorf("list exports of volume %s: %w", id, err)
	case len(exps) > 0:
		return keepExported, nil
	}
	return sweepDelete, nil
}

// claimUIDs reads every claim in the cluster, live and paged: for each
// UID, whether it is in flight (not bound to its PV, or still protected).
func (p *Provisioner) claimUIDs(ctx context.Context) (map[types.UID]bool, error) {
	out := map[types.UID]bool{}
	opts := metav1.ListOptions{Limit: listPage}
	for {
		list, err := p.kube.CoreV1().PersistentVolumeClaims(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list claims: %w", err)
		}
		for i := range list.Items {
			c := &list.Items[i]
			out[c.UID] = c.Spec.VolumeName != pvNameFor(c) || protected(c)
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
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
			logger.Error(err, "Sweep for unreferenced volumes did not finish; the next one retries", "deleted", n)
			continue
		}
		logger.V(2).Info("Swept for unreferenced volumes", "deleted", n)
	}
}

// listPage is how many objects one list request asks for.
const listPage = 500
