package provisioner

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
	// ReasonInvalidDataSource: the claim's data source (a claim to clone,
	// a VolumeSnapshot) cannot be used now.
	ReasonInvalidDataSource = "InvalidDataSource"
	// ReasonSelectedNodeGone: the node the scheduler chose no longer
	// exists; the claim is handed back to the scheduler.
	ReasonSelectedNodeGone = "SelectedNodeGone"
	// ReasonInvalidZone: Cinder does not know the availability zone the
	// class, its allowedTopologies or the selected node's label names.
	ReasonInvalidZone = "InvalidAvailabilityZone"
	// ReasonZoneFallback (Normal): Cinder put the volume in another zone
	// than the one asked for (allow_availability_zone_fallback); the PV is
	// pinned to the zone Cinder used.
	ReasonZoneFallback = "CinderZoneFallback"
)
