// Package cinder is the provisioner's view of OpenStack Cinder: domain types,
// the small interface the Kubernetes side programs against, and the sentinel
// errors it matches. It imports neither gophercloud nor client-go; the
// gophercloud implementation lives in a sub-package.
package cinder

import "time"

// Volume is a Cinder volume as the provisioner needs to see it.
type Volume struct {
	ID               string
	Name             string
	Description      string
	Status           string
	SizeGiB          int
	VolumeType       string
	AvailabilityZone string
	Multiattach      bool
	Metadata         map[string]string
	CreatedAt        time.Time
	// ReadAt is Cinder's own clock when it answered the read that returned
	// the volume (the Date header of its answer); zero when unknown. An age
	// is ReadAt - CreatedAt: both from Cinder's clock, never ours, so a
	// skewed provisioner or workstation clock cannot make a volume old.
	ReadAt time.Time
	// SourceVolumeID and SnapshotID are what the volume was made from
	// (source_volid, snapshot_id of the volume view); "" for an empty one.
	SourceVolumeID string
	SnapshotID     string
	// AttachmentIDs are the ids of the volume's attached exports, as the
	// volume view lists them: only attachments whose status is attached
	// (reserved and attaching ones are not shown; see Client.ListExports).
	AttachmentIDs []string
}

// Age is how old the volume was when Cinder answered the read, by Cinder's
// own clock; ok is false when the read did not say (no Date header) or the
// creation time is unknown: callers must then treat the volume as young.
func (v *Volume) Age() (age time.Duration, ok bool) {
	if v.ReadAt.IsZero() || v.CreatedAt.IsZero() {
		return 0, false
	}
	return v.ReadAt.Sub(v.CreatedAt), true
}

// Connector describes the host that will reach a volume, as os-brick sends it.
// Targets put Initiator (iSCSI) or WWPNs (FC) into their ACLs.
type Connector struct {
	Initiator string   // iSCSI initiator IQN
	IP        string   // host address
	Host      string   // host name
	Platform  string   // e.g. x86_64
	OSType    string   // e.g. linux2
	Multipath bool     // ask for multipath-capable connection info
	WWPNs     []string // Fibre Channel port names
	WWNNs     []string // Fibre Channel node names
	NQN       string   // NVMe host NQN
}

// Connection is a volume's connection information, normalised to one shape
// whether Cinder answered nested ({"driver_volume_type":..,"data":{..}}, legacy
// os-initialize_connection) or flattened (attachments API). Data holds the
// driver's keys only: driver_volume_type and attachment_id are lifted out.
//
// Data may hold credentials (auth_password, keyring, ...): never log or print
// it without Redact.
type Connection struct {
	DriverVolumeType string
	Data             map[string]any
}

// ExportMethod says how a volume was exported.
type ExportMethod string

// Export methods.
const (
	ExportAttachments ExportMethod = "attachments" // attachments API, microversion >= 3.44
	ExportLegacy      ExportMethod = "legacy"      // os-reserve, os-initialize_connection, os-attach
)

// Export is the result of exporting a volume to a connector.
type Export struct {
	Method ExportMethod
	// ID identifies the export for Unexport: the attachment id (attachments
	// API) or the legacy attachment id Cinder recorded for os-attach.
	ID         string
	Connection Connection
}

// ExportRef names one export for Unexport: the method it was made with and
// its id.
type ExportRef struct {
	Method ExportMethod // "" means the client's own method
	ID     string
}

// Attachment is one export of a volume as Cinder records it.
type Attachment struct {
	ID     string
	Status string // AttachReserved, AttachAttaching, AttachAttached, AttachDetaching, ...
	// Host is the attachment's host_name as the volume view shows it (to
	// admins, for attached exports only); "" when Cinder does not say, which
	// is always the case for reserved and attaching ones.
	Host string
}
