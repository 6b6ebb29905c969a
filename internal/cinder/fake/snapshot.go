package fake

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Operation names of the snapshot calls.
const (
	OpCreateSnapshot = "CreateSnapshot"
	OpListSnapshots  = "ListSnapshots"
	OpDeleteSnapshot = "DeleteSnapshot"
)

// snapshotSettings is how snapshots made by CreateSnapshot behave; the
// zero value: available at the first GetSnapshot, gone at the first one
// after DeleteSnapshot, no snapshot quota.
type snapshotSettings struct {
	creatingPolls int    // GetSnapshot polls a new snapshot stays creating
	final         string // status after creating ("": available)
	deletingPolls int    // GetSnapshot polls a deleted snapshot stays deleting
	quota         int    // 0: unlimited
	progress      map[string]*snapProgress
}

// snapProgress is where a snapshot is in its creating or deleting.
type snapProgress struct {
	creating, deleting int
	final              string
}

// SetSnapshotCreatingPolls sets how many GetSnapshot polls a new snapshot
// stays "creating" (default 0).
func (f *Fake) SetSnapshotCreatingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps.creatingPolls = n
}

// SetSnapshotFinalStatus sets the status new snapshots reach after
// creating: "available" (default) or "error" (the backend failed).
func (f *Fake) SetSnapshotFinalStatus(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps.final = status
}

// SetSnapshotDeletingPolls sets how many GetSnapshot polls a deleted
// snapshot stays "deleting" before it is gone (default 0).
func (f *Fake) SetSnapshotDeletingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps.deletingPolls = n
}

// SetSnapshotQuota limits the number of snapshots (0: unlimited); snapshots
// being deleted still count, as in Cinder.
func (f *Fake) SetSnapshotQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps.quota = n
}

// Snapshots returns every snapshot the fake holds, in creation order.
func (f *Fake) Snapshots() []cinder.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cinder.Snapshot
	for _, id := range f.sources.order {
		if s, ok := f.sources.snapshots[id]; ok {
			out = append(out, copySnapshot(s))
		}
	}
	return out
}

func copySnapshot(s *cinder.Snapshot) cinder.Snapshot {
	c := *s
	c.Metadata = maps.Clone(s.Metadata)
	return c
}

// CreateSnapshot implements cinder.Client with Cinder 21's checks
// (volume/api.py _create_snapshot_in_db_validate, quota reserve): a missing
// volume 404; a volume neither available nor (with force) in-use 400; over
// the snapshot quota 413.
func (f *Fake) CreateSnapshot(ctx context.Context, req cinder.SnapshotRequest) (out *cinder.Snapshot, err error) {
	call := &Call{Op: OpCreateSnapshot, VolumeID: req.VolumeID, Name: req.Name}
	err = f.do(ctx, levelCall, call, func() error {
		if req.VolumeID == "" || req.Name == "" {
			return cinder.NewError("create snapshot", req.Name, cinder.ErrInvalid, "a volume id and a name are required")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[req.VolumeID]
		if !ok {
			return cinder.NewError("create snapshot", req.Name, cinder.ErrNotFound, "Volume "+req.VolumeID+" could not be found.")
		}
		if !cinder.SnapshotSourceStatus(v.vol.Status, req.Force) {
			msg := fmt.Sprintf("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", req.VolumeID, v.vol.Status)
			if v.vol.Status == cinder.StatusInUse {
				msg = "Invalid volume: Volume " + req.VolumeID + " status must be available, but current status is: in-use."
			}
			return cinder.NewError("create snapshot", req.Name, cinder.ErrInvalid, msg)
		}
		if q := f.snaps.quota; q > 0 && len(f.sources.snapshots) >= q {
			return cinder.NewError("create snapshot", req.Name, cinder.ErrQuotaExceeded,
				fmt.Sprintf("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded", q))
		}
		if f.sources.snapshots == nil {
			f.sources.snapshots = map[string]*cinder.Snapshot{}
		}
		f.sources.seq++
		s := &cinder.Snapshot{
			ID: fmt.Sprintf("5a000000-0000-4000-8000-%012d", f.sources.seq), Name: req.Name, Description: req.Description,
			Status: cinder.SnapshotCreating, SizeGiB: v.vol.SizeGiB, VolumeID: req.VolumeID,
			Metadata: maps.Clone(req.Metadata), CreatedAt: f.tick(),
		}
		f.sources.snapshots[s.ID] = s
		f.sources.order = append(f.sources.order, s.ID)
		if f.snaps.progress == nil {
			f.snaps.progress = map[string]*snapProgress{}
		}
		f.snaps.progress[s.ID] = &snapProgress{creating: f.snaps.creatingPolls, final: cmp.Or(f.snaps.final, cinder.SnapshotAvailable)}
		call.SnapshotID = s.ID
		c := copySnapshot(s)
		out = &c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListSnapshots implements cinder.Client. Each snapshot listed advances
// as one GetSnapshot poll would advance it.
func (f *Fake) ListSnapshots(ctx context.Context, filter cinder.SnapshotFilter) (out []cinder.Snapshot, err error) {
	call := &Call{Op: OpListSnapshots, VolumeID: filter.VolumeID, Name: filter.Name}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = []cinder.Snapshot{}
		for _, id := range f.sources.order {
			s, ok := f.sources.snapshots[id]
			if !ok || filter.Name != "" && s.Name != filter.Name || filter.VolumeID != "" && s.VolumeID != filter.VolumeID {
				continue
			}
			if !f.advanceSnapshotLocked(s) { // a list is a poll too
				continue
			}
			out = append(out, copySnapshot(s))
		}
		slices.SortStableFunc(out, func(a, b cinder.Snapshot) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		return nil
	})
	return out, err
}

// DeleteSnapshot implements cinder.Client: a missing snapshot is success;
// one neither available nor error is 400, as in Cinder.
func (f *Fake) DeleteSnapshot(ctx context.Context, id string) error {
	call := &Call{Op: OpDeleteSnapshot, SnapshotID: id}
	return f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, ok := f.sources.snapshots[id]
		if !ok {
			return nil
		}
		if !cinder.SnapshotDeletable(s.Status) {
			return cinder.NewError("delete snapshot", id, cinder.ErrInvalid,
				"Invalid snapshot: Snapshot status must be available or error and must not be part of a group.")
		}
		s.Status = cinder.SnapshotDeleting
		if f.snaps.progress == nil {
			f.snaps.progress = map[string]*snapProgress{}
		}
		p := f.snaps.progress[id]
		if p == nil {
			p = &snapProgress{}
			f.snaps.progress[id] = p
		}
		p.deleting = f.snaps.deletingPolls
		return nil
	})
}

// advanceSnapshotLocked is one GetSnapshot poll of a creating or deleting
// snapshot; false when the poll found it gone.
func (f *Fake) advanceSnapshotLocked(s *cinder.Snapshot) bool {
	p := f.snaps.progress[s.ID]
	if p == nil {
		return true
	}
	switch s.Status {
	case cinder.SnapshotCreating:
		if p.creating > 0 {
			p.creating--
		} else {
			s.Status = p.final
		}
	case cinder.SnapshotDeleting:
		if p.deleting > 0 {
			p.deleting--
			return true
		}
		delete(f.sources.snapshots, s.ID)
		delete(f.snaps.progress, s.ID)
		return false
	}
	return true
}

// volumeSnapshotsLocked lists the ids of the snapshots of a volume: Cinder
// refuses to delete a volume that has any.
func (f *Fake) volumeSnapshotsLocked(volumeID string) []string {
	var ids []string
	for _, id := range f.sources.order {
		if s, ok := f.sources.snapshots[id]; ok && s.VolumeID == volumeID {
			ids = append(ids, id)
		}
	}
	return ids
}
