package cinder

import "context"

// Client is the provisioner's view of Cinder: a small, ctx-first,
// domain-level interface. Every error it returns is matched with errors.Is
// against the sentinels in errors.go; no HTTP detail leaks through it.
type Client interface {
	// CreateVolume asks Cinder for a new volume and returns it as Cinder
	// answered (normally status "creating"). It does not wait.
	CreateVolume(ctx context.Context, req CreateRequest) (*Volume, error)
	// GetVolume returns the volume with the given id; ErrNotFound when Cinder
	// does not know it. Volumes returned by every read carry Cinder's clock
	// at the answer (Volume.ReadAt).
	GetVolume(ctx context.Context, id string) (*Volume, error)
	// FindVolumeByName returns the volume named exactly name, so a retry finds
	// what an earlier attempt created. ErrNotFound when there is none. When
	// several volumes carry the name (Cinder does not enforce unique names: a
	// manual copy or a bug elsewhere), it returns no volume and a
	// *DuplicateNameError listing their ids, oldest first (ties by id)
	// (errors.Is(err, ErrConflict)): nothing is picked silently.
	FindVolumeByName(ctx context.Context, name string) (*Volume, error)
	// WaitForVolumeStatus polls until the volume has one of the wanted
	// statuses and returns it. A volume that goes to an error status yields a
	// *VolumeStatusError (errors.Is(err, ErrVolumeError)); a volume that
	// vanishes yields ErrNotFound; the end of ctx yields a *WaitError naming
	// the last status seen.
	WaitForVolumeStatus(ctx context.Context, id string, wanted ...string) (*Volume, error)
	// DeleteVolume asks Cinder to delete the volume. A volume that does not
	// exist is success. It does not wait.
	DeleteVolume(ctx context.Context, id string) error
	// WaitForVolumeDeleted polls until Cinder no longer knows the volume.
	// error_deleting yields a *VolumeStatusError.
	WaitForVolumeDeleted(ctx context.Context, id string) error
	// Export makes the volume reachable from the connector's host and returns
	// its connection information, with the client's export method. A failed
	// export undoes, in reverse order, every step it knows it took; a step
	// whose answer was lost, or a process that died mid-way, can still leave
	// the volume reserved, attaching or with an export: ClearExports removes
	// that.
	Export(ctx context.Context, volumeID string, connector Connector) (*Export, error)
	// Unexport removes one export made by Export, with the method the export
	// was made with (ref.Method; "" means the client's own). The legacy
	// method needs the connector the export was made for. An export or
	// volume that no longer exists is success.
	Unexport(ctx context.Context, volumeID string, ref ExportRef, connector Connector) error
	// ListExports returns every export Cinder records for the volume,
	// whatever its status (reserved, attaching, attached, detaching), oldest
	// first: through the attachments API where Cinder has it (the volume
	// view lists only attached ones). ErrNotFound for a missing volume.
	ListExports(ctx context.Context, volumeID string) ([]Attachment, error)
	// ClearExports brings a volume that interrupted exports or unexports left
	// reserved, attaching, detaching or in-use back to available: it removes
	// every export ListExports finds, and undoes what leaves no record
	// (legacy os-reserve: os-terminate_connection with the connector, then
	// os-unreserve; os-begin_detaching: os-roll_detaching first). It returns
	// the volume as Cinder shows it afterwards. ErrNotFound for a missing
	// volume.
	ClearExports(ctx context.Context, volumeID string, connector Connector) (*Volume, error)
	// ListVolumes returns the project's volumes whose metadata contains every
	// key/value of the filter (all volumes for an empty filter). Each
	// volume's ReadAt is Cinder's clock at the answer.
	ListVolumes(ctx context.Context, metadata map[string]string) ([]Volume, error)
	// UpdateVolumeMetadata sets the given metadata keys on the volume,
	// keeping the others (POST /volumes/{id}/metadata). ErrNotFound for a
	// missing volume.
	UpdateVolumeMetadata(ctx context.Context, id string, metadata map[string]string) error
	// ServiceInfo describes the Cinder this client talks to, for diagnostics.
	ServiceInfo(ctx context.Context) (*ServiceInfo, error)
	// GetSnapshot returns the volume snapshot with the given id, the source
	// of a restore; ErrNotFound when Cinder does not know it.
	GetSnapshot(ctx context.Context, id string) (*Snapshot, error)
	// CreateSnapshot asks Cinder to snapshot a volume and returns the
	// snapshot as Cinder answered (normally "creating"); it does not wait.
	// A volume in a status Cinder does not snapshot from (see
	// SnapshotSourceStatus) is ErrInvalid with Cinder's message; over
	// quota, ErrQuotaExceeded; a missing volume, ErrNotFound.
	CreateSnapshot(ctx context.Context, req SnapshotRequest) (*Snapshot, error)
	// ListSnapshots returns the project's snapshots that match the filter,
	// oldest first (ties by id), so a retry finds what an earlier attempt
	// made by its name.
	ListSnapshots(ctx context.Context, filter SnapshotFilter) ([]Snapshot, error)
	// DeleteSnapshot asks Cinder to delete the snapshot and does not wait
	// (GetSnapshot answers ErrNotFound once it is gone). A snapshot that
	// does not exist is success; one in a status Cinder does not delete
	// from (creating, deleting, error_deleting) is ErrInvalid.
	DeleteSnapshot(ctx context.Context, id string) error
	// ExtendVolume asks Cinder to grow the volume to newSizeGiB
	// (os-extend) and does not wait: Cinder answers 202 and the volume goes
	// extending, then back to available or in-use at the new size, or to
	// error_extending when the backend fails. An in-use volume needs
	// microversion 3.42: a client whose Cinder offers less returns an
	// *Error wrapping ErrInvalid and ErrOnlineExtendUnsupported without
	// sending anything. A backend that cannot extend an attached volume
	// puts it back in-use at its old size (the scheduler finds no backend).
	// A new size not above the current one is ErrInvalid; over quota,
	// ErrQuotaExceeded. See extend.go.
	ExtendVolume(ctx context.Context, id string, newSizeGiB int) error
}

// CreateRequest is what CreateVolume needs.
type CreateRequest struct {
	Name             string
	SizeGiB          int
	VolumeType       string // "": Cinder's default type
	AvailabilityZone string // "": let Cinder choose
	Description      string
	Metadata         map[string]string
	// SourceVolumeID makes the volume a clone of another (source_volid): the
	// source must be available or in-use and no larger than SizeGiB.
	SourceVolumeID string
	// SnapshotID makes the volume a restore of a snapshot (snapshot_id): the
	// snapshot must be available and no larger than SizeGiB.
	SnapshotID string
	// There is no multiattach flag: Cinder 21 refuses it ("multiattach
	// parameter has been removed"); the volume type's extra spec
	// multiattach="<is> True" decides, and Volume.Multiattach says.
}

// Volume statuses the provisioner acts on.
const (
	StatusCreating      = "creating"
	StatusAvailable     = "available"
	StatusReserved      = "reserved"
	StatusAttaching     = "attaching"
	StatusInUse         = "in-use"
	StatusDetaching     = "detaching"
	StatusDeleting      = "deleting"
	StatusError         = "error"
	StatusErrorDeleting = "error_deleting"
)

// Attachment statuses (an export's, as the attachments API reports them).
const (
	AttachReserved  = "reserved"
	AttachAttaching = "attaching"
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
)

// Deletable reports whether Cinder accepts DELETE for a volume in this
// status (volume/api.py: available, error, error_restoring, error_extending,
// error_managing; and no attachment attached).
func Deletable(status string) bool {
	switch status {
	case StatusAvailable, StatusError, "error_restoring", "error_extending", "error_managing":
		return true
	}
	return false
}

// IsErrorStatus reports whether a volume status is a terminal failure
// (error, error_deleting, error_extending, error_restoring, ...).
func IsErrorStatus(status string) bool {
	return status == StatusError || len(status) > len("error_") && status[:len("error_")] == "error_"
}

// ServiceInfo describes a Cinder endpoint for the check command.
type ServiceInfo struct {
	Endpoint        string // block-storage endpoint in use (project included)
	AuthMode        string // "noauth" or "keystone"
	APIVersion      string // e.g. "v3.0"
	MinMicroversion string // e.g. "3.0"
	MaxMicroversion string // e.g. "3.70"
	Microversion    string // microversion this client sends
	ExportMethod    ExportMethod
	VolumeTypes     []VolumeType
}

// VolumeType is a Cinder volume type.
type VolumeType struct {
	ID          string
	Name        string
	Description string
	IsPublic    bool
}
