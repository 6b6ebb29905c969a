package snapshotter

import (
	"context"
	"fmt"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// syncImported serves a pre-provisioned content of our driver (a Cinder
// snapshot taken outside Kubernetes, named by spec.source.snapshotHandle)
// as csi-snapshotter does: its status says whether the snapshot is
// available, with its size. Its deletion is release's.
func (s *Snapshotter) syncImported(ctx context.Context, c *snapv1.VolumeSnapshotContent) result {
	if contentReady(c) || c.Spec.Source.SnapshotHandle == nil {
		return result{out: idle}
	}
	on := contentRef(c)
	snap, err := s.cinder.GetSnapshot(ctx, *c.Spec.Source.SnapshotHandle)
	if err != nil {
		return cinderFailure(on, "read Cinder snapshot "+*c.Spec.Source.SnapshotHandle, err, ReasonCinderRejected)
	}
	switch snap.Status {
	case cinder.SnapshotAvailable:
		return s.writeStatus(ctx, c, snap, on)
	case cinder.SnapshotCreating:
		return result{out: inProgress}
	}
	return result{out: retry, on: on, reason: ReasonSnapshotFailed,
		message: fmt.Sprintf("Cinder snapshot %s of VolumeSnapshotContent %s is %s, not available", snap.ID, c.Name, snap.Status)}
}
