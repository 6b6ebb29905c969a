package cinder

import "time"

// Snapshot is a Cinder volume snapshot: the source of a restore, and what a
// VolumeSnapshot of ours becomes.
type Snapshot struct {
	ID          string
	Name        string
	Description string
	Status      string // SnapshotAvailable, SnapshotCreating, SnapshotError, ...
	SizeGiB     int    // size of the volume it was taken of: a restore is at least this big
	VolumeID    string // the volume it was taken of
	Metadata    map[string]string
	CreatedAt   time.Time // Cinder's clock; zero when unknown
}

// Snapshot statuses (cinder/objects/fields.py SnapshotStatus).
const (
	SnapshotCreating      = "creating"
	SnapshotAvailable     = "available"
	SnapshotDeleting      = "deleting"
	SnapshotError         = "error"
	SnapshotErrorDeleting = "error_deleting"
)

// SnapshotRequest is what CreateSnapshot needs.
type SnapshotRequest struct {
	// VolumeID is the volume to snapshot.
	VolumeID string
	// Name names the snapshot; a retry finds it with ListSnapshots.
	Name        string
	Description string
	Metadata    map[string]string
	// Force snapshots an in-use volume (Cinder refuses one without it, 400
	// "must be available"); a crash-consistent copy, like pulling the plug.
	Force bool
}

// SnapshotFilter selects the snapshots ListSnapshots returns; an empty
// field does not filter.
type SnapshotFilter struct {
	Name     string
	VolumeID string
}

// SnapshotDeletable reports whether Cinder accepts DELETE for a snapshot in
// this status (volume/api.py delete_snapshot: available, error; an
// error_deleting one only with force, which needs an admin).
func SnapshotDeletable(status string) bool {
	return status == SnapshotAvailable || status == SnapshotError
}

// CloneSourceStatus reports whether Cinder clones a volume in this status
// (create_volume.py SRC_VOL_PROCEED_STATUS: available, in-use). The source
// keeps its status while the clone is made; the clone starts creating.
func CloneSourceStatus(status string) bool {
	return status == StatusAvailable || status == StatusInUse
}

// SnapshotSourceStatus reports whether Cinder snapshots a volume in this
// status: available, and in-use with force (volume/api.py
// _create_snapshot_in_db_validate). Anything else is a 400.
func SnapshotSourceStatus(status string, force bool) bool {
	return status == StatusAvailable || force && status == StatusInUse
}
