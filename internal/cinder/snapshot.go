package cinder

// Snapshot is a Cinder volume snapshot, the source of a restore.
type Snapshot struct {
	ID       string
	Name     string
	Status   string // SnapshotAvailable, "creating", "error", "deleting", ...
	SizeGiB  int    // size of the volume it was taken of: a restore is at least this big
	VolumeID string // the volume it was taken of
}

// SnapshotAvailable is the only snapshot status Cinder creates a volume
// from (volume/flows/api/create_volume.py SNAPSHOT_PROCEED_STATUS).
const SnapshotAvailable = "available"

// CloneSourceStatus reports whether Cinder clones a volume in this status
// (create_volume.py SRC_VOL_PROCEED_STATUS: available, in-use). The source
// keeps its status while the clone is made; the clone starts creating.
func CloneSourceStatus(status string) bool {
	return status == StatusAvailable || status == StatusInUse
}
