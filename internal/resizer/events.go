package resizer

// Event reasons recorded on claims by the resizer. docs/troubleshooting.md
// lists each with its fix.
const (
	// ReasonResized (Normal): the Cinder volume, the PV and the claim have
	// the new size.
	ReasonResized = "VolumeResized"
	// ReasonNodeExpansionPending (Normal): the volume and the PV have the
	// new size; the kubelet grows the filesystem when a pod uses it.
	ReasonNodeExpansionPending = "FileSystemResizePending"
	// ReasonExpansionNotAllowed: the claim's class does not set
	// allowVolumeExpansion: true, or is gone.
	ReasonExpansionNotAllowed = "VolumeExpansionNotAllowed"
	// ReasonFilesystemExpansionUnsupported: an iSCSI or FC filesystem
	// claim: the kubelet cannot grow that filesystem.
	ReasonFilesystemExpansionUnsupported = "FilesystemExpansionUnsupported"
	// ReasonOnlineExtendUnsupported: the volume is exported (in-use) and
	// this Cinder offers no microversion 3.42.
	ReasonOnlineExtendUnsupported = "OnlineExtendUnsupported"
	// ReasonExtendRefused: Cinder put the volume back at its old size (no
	// backend able to extend it attached, or without room).
	ReasonExtendRefused = "CinderExtendRefused"
	// ReasonExtendFailed: the volume is error_extending.
	ReasonExtendFailed = "CinderExtendFailed"
	// ReasonShrinkUnsupported: the request is below the volume's size.
	ReasonShrinkUnsupported = "VolumeShrinkUnsupported"
	// ReasonQuotaExceeded: Cinder refused the new size for lack of quota.
	ReasonQuotaExceeded = "CinderQuotaExceeded"
	// ReasonCinderRejected: Cinder refused the extend request (400).
	ReasonCinderRejected = "CinderRequestRejected"
	// ReasonCinderUnavailable: Cinder could not be reached; retried with
	// backoff.
	ReasonCinderUnavailable = "CinderUnavailable"
	// ReasonVolumeNotExtendable: the volume is in a status Cinder does not
	// extend from (attaching, detaching, maintenance, ...); retried.
	ReasonVolumeNotExtendable = "CinderVolumeNotExtendable"
	// ReasonVolumeGone: the PV's Cinder volume does not exist.
	ReasonVolumeGone = "CinderVolumeGone"
)
