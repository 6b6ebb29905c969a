package snapshotter

// Event reasons recorded on VolumeSnapshots (and, when the VolumeSnapshot
// is gone, on VolumeSnapshotContents) by the snapshotter.
// docs/troubleshooting.md lists each with its fix.
const (
	// ReasonContentCreated (Normal): snapcontent-<uid> was made for the
	// VolumeSnapshot; its Cinder snapshot follows.
	ReasonContentCreated = "SnapshotContentCreated"
	// ReasonSnapshotReady (Normal): the Cinder snapshot is available.
	ReasonSnapshotReady = "CinderSnapshotReady"
	// ReasonSnapshotDeleted (Normal): the Cinder snapshot was deleted
	// (deletionPolicy Delete) or kept (Retain) and the content released.
	ReasonSnapshotDeleted = "CinderSnapshotDeleted"
	// ReasonSourceNotOurs: the source claim is not bound to a PV of this
	// provisioner; nothing is made.
	ReasonSourceNotOurs = "SnapshotSourceNotOurs"
	// ReasonSourceNotReady: the source claim is missing, not bound, or
	// being deleted.
	ReasonSourceNotReady = "SnapshotSourceNotReady"
	// ReasonSnapshotFailed: the Cinder snapshot went to error; it is
	// deleted and a new one is tried with backoff.
	ReasonSnapshotFailed = "CinderSnapshotFailed"
	// ReasonQuotaExceeded: Cinder refused the snapshot for lack of quota
	// (413); retried with backoff.
	ReasonQuotaExceeded = "CinderQuotaExceeded"
	// ReasonVolumeNotSnapshottable: Cinder refused to snapshot the volume
	// in its current status (400: error, extending, maintenance, ...);
	// retried with backoff.
	ReasonVolumeNotSnapshottable = "CinderVolumeNotSnapshottable"
	// ReasonCinderRejected: Cinder refused another request (400, 404).
	ReasonCinderRejected = "CinderRequestRejected"
	// ReasonCinderUnavailable: Cinder could not be reached; retried.
	ReasonCinderUnavailable = "CinderUnavailable"
	// ReasonContentMismatch: a content for our driver names a volume that
	// is not the source claim's (or a Cinder snapshot found by name was
	// taken of another volume or VolumeSnapshot): nothing is done with it.
	ReasonContentMismatch = "SnapshotContentMismatch"
	// ReasonSnapshotStuck: a Cinder snapshot of ours has been creating for
	// longer than StaleCreating (cinder-api died mid-request): Cinder
	// neither finishes nor deletes it until an admin resets its status;
	// then it is deleted and a new one made.
	ReasonSnapshotStuck = "CinderSnapshotStuck"
	// ReasonDeleteFailed: the Cinder snapshot cannot be deleted
	// (error_deleting, or Cinder refuses); the content stays, retried.
	ReasonDeleteFailed = "CinderSnapshotDeleteFailed"
)
