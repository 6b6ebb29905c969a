package provisioner

// PV annotations. They record what Delete needs to undo Provision.
const (
	// AnnVolumeID is the Cinder volume id behind the PV.
	AnnVolumeID = "cinder.openstack.org/volume-id"
	// AnnExportMethod is how the volume was exported: attachments or legacy.
	AnnExportMethod = "cinder.openstack.org/export-method"
	// AnnExportID is the export to remove on delete (the attachment id).
	AnnExportID = "cinder.openstack.org/export-id"
	// AnnConnector is the connector the volume was exported to (JSON, no
	// credentials): legacy unexport must send the same one.
	AnnConnector = "cinder.openstack.org/connector"
	// AnnProvisionerIdentity names the provisioner that owns the PV.
	AnnProvisionerIdentity = "cinder.openstack.org/provisioner-identity"

	// Annotations of PVs made by the original standalone-cinder provisioner;
	// such PVs can still be deleted.
	annLegacyVolumeID = "cinderVolumeId"
	annLegacyIdentity = "standaloneCinderProvisionerIdentity"
)

// Cinder volume metadata keys: who a volume belongs to, for people and for
// an orphan finder.
const (
	MetaClusterID    = "cinder.openstack.org/cluster-id"
	MetaPVCNamespace = "cinder.openstack.org/pvc-namespace"
	MetaPVCName      = "cinder.openstack.org/pvc-name"
	MetaPVName       = "cinder.openstack.org/pv-name"
	MetaProvisioner  = "cinder.openstack.org/provisioner"
	// MetaReclaimPolicy is the StorageClass reclaim policy the volume was
	// made for (Delete or Retain): a Retain volume whose PV an admin deleted
	// is kept on purpose, never an orphan to delete.
	MetaReclaimPolicy = "cinder.openstack.org/reclaim-policy"
)

// Event reasons of the Warning events recorded on claims. Each says what went
// wrong; the message says what to do. docs/troubleshooting.md lists them.
const (
	ReasonInvalidParameter      = "InvalidStorageClassParameter"
	ReasonInvalidClaim          = "UnsupportedClaim"
	ReasonMissingSecret         = "MissingSecret"
	ReasonQuotaExceeded         = "CinderQuotaExceeded"
	ReasonCinderRejected        = "CinderRequestRejected"
	ReasonCinderUnavailable     = "CinderUnavailable"
	ReasonVolumeError           = "CinderVolumeError"
	ReasonNameConflict          = "CinderVolumeNameConflict"
	ReasonUnsupportedTransport  = "UnsupportedTransport"
	ReasonInvalidConnectionInfo = "InvalidConnectionInfo"
	ReasonProvisioningFailed    = "CinderProvisioningFailed"
	ReasonInvalidNodeAnnotation = "InvalidNodeAnnotation"
	// ReasonVolumeStuck: the claim's volume is in a status only an admin
	// can undo (error_deleting, maintenance, ...).
	ReasonVolumeStuck = "CinderVolumeStuck"
	// ReasonVolumeMismatch: a volume an earlier attempt made for the claim
	// differs from what the claim and class ask for now.
	ReasonVolumeMismatch = "CinderVolumeMismatch"
	// ReasonSecretConflict: a Secret of the name the PV needs exists and is
	// someone else's.
	ReasonSecretConflict = "SecretConflict"
	// ReasonPartialConnectionInfo: the volume was provisioned, but some of
	// the paths Cinder offered (portals, FC targets) could not go into the PV.
	ReasonPartialConnectionInfo = "PartialConnectionInfo"
)
