// Package contract holds the names written on PVs, claims and Cinder volumes:
// annotation keys, Cinder metadata keys and finalizer names. Every part (the
// provisioner, the resizer, the operator's commands) and every older version
// reads what the others wrote, so these strings never change once released.
package contract

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
	// AnnReclaimPolicy is the reclaim policy last recorded in the volume's
	// metadata (MetaReclaimPolicy): when the PV's policy differs, the
	// provisioner records the new one.
	AnnReclaimPolicy = "cinder.openstack.org/reclaim-policy"

	// Annotations of PVs made by the original standalone-cinder provisioner;
	// such PVs can still be deleted.
	AnnLegacyVolumeID = "cinderVolumeId"
	AnnLegacyIdentity = "standaloneCinderProvisionerIdentity"
)

// Cinder volume metadata keys: who a volume belongs to, for people and for
// an orphan finder.
const (
	MetaClusterID    = "cinder.openstack.org/cluster-id"
	MetaPVCNamespace = "cinder.openstack.org/pvc-namespace"
	MetaPVCName      = "cinder.openstack.org/pvc-name"
	MetaPVName       = "cinder.openstack.org/pv-name"
	MetaProvisioner  = "cinder.openstack.org/provisioner"
	// MetaReclaimPolicy is the reclaim policy of the volume's PV: the
	// class's when the volume was made, then the PV's whenever an admin
	// changes it (mirrored by the provisioner). A hint for people, orphans
	// and the sweep: Retain keeps a volume; Delete alone never proves one
	// may go.
	MetaReclaimPolicy = "cinder.openstack.org/reclaim-policy"
	// MetaSourceVolume and MetaSourceSnapshot record what a clone or a
	// restore was made from: a later attempt that finds the volume by name
	// checks it was made from the claim's source.
	MetaSourceVolume   = "cinder.openstack.org/source-volume-id"
	MetaSourceSnapshot = "cinder.openstack.org/source-snapshot-id"
	// MetaSnapshotted ("true") is set on a volume before the snapshotter
	// asks Cinder for its first snapshot: the delete of a volume that
	// carries it lists the volume's snapshots before it changes anything
	// (Cinder refuses to delete a volume with snapshots); other deletes
	// spend no request on that list and learn of snapshots made outside
	// Kubernetes from Cinder's refusal.
	MetaSnapshotted = "cinder.openstack.org/snapshotted"
	// MetaSecretNamespace is the namespace the volume's CHAP Secret is made
	// in (the class's chapSecretNamespace, else the provisioner's): a
	// cleanup that no longer has the class finds the Secret there.
	MetaSecretNamespace = "cinder.openstack.org/secret-namespace"
)

// FinalizerProvisioning holds a claim from before the first Cinder request
// that may make or change a volume for it until its PV is bound to it, or
// until everything made for it (volume, exports, Secret) is gone: a claim
// deleted while its volume is in flight, even while no provisioner runs,
// stays Terminating until the provisioner has cleaned up. Ownership is
// recorded in Kubernetes, not guessed from Cinder's names and metadata.
const FinalizerProvisioning = "cinder.openstack.org/provisioning-protection"

// AnnProvisioningStarted goes on a claim together with FinalizerProvisioning,
// in the same update, and is never taken off. A claim with neither has never
// had a Cinder request sent for it, by any process: no volume of its name
// can exist or still land, so the attempt that puts them on (its update
// saved against the version it read, so no other process put them on in
// between) creates the volume without looking its name up first.
const AnnProvisioningStarted = "cinder.openstack.org/provisioning-started"

// Annotations Kubernetes' PV binder sets on a claim to name the provisioner
// that must provision it (the library calls Provision only for claims that
// name it). Every cinder-provisioner of a cluster puts the same
// FinalizerProvisioning on its claims; a provisioner acts on a claim only
// when these name it, so that one of another name (another cloud, another
// cluster id) never releases a claim whose volume it cannot see.
const (
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
)

// ProvisionedBy reports whether a claim's annotations name provisioner name.
func ProvisionedBy(annotations map[string]string, name string) bool {
	return name != "" && (annotations[AnnStorageProvisioner] == name || annotations[AnnBetaStorageProvisioner] == name)
}

// FinalizerCloneSource protects a claim being cloned: it stays on the
// source claim while a clone of it is Pending, so the source volume is not
// deleted under Cinder's clone (csi-provisioner's equivalent is
// provisioner.storage.kubernetes.io/cloning-protection).
const FinalizerCloneSource = "cinder.openstack.org/cloning-protection"

// FinalizerSnapshot is on every VolumeSnapshotContent the snapshotter
// serves (made by it, or by external-snapshotter's controller for a
// class of ours): the content, and with it the record of its Cinder
// snapshot, stays until the snapshotter has deleted the Cinder snapshot
// (deletionPolicy Delete) or let it be (Retain).
const FinalizerSnapshot = "cinder.openstack.org/snapshot-protection"

// Cinder snapshot metadata keys: which VolumeSnapshot a snapshot was taken
// for. The UID, with the snapshot's name (the content's, snapcontent-<uid>)
// and its volume, is what a deletion checks before it deletes a snapshot
// found by name.
const (
	MetaSnapshotNamespace = "cinder.openstack.org/volumesnapshot-namespace"
	MetaSnapshotName      = "cinder.openstack.org/volumesnapshot-name"
	MetaSnapshotUID       = "cinder.openstack.org/volumesnapshot-uid"
)

// The keys of the admin's Ceph Secret a ceph-csi static PV names
// (nodeStageSecretRef): ceph-csi's node stage authenticates to Ceph as
// userID with the cephx key userKey.
const (
	CephSecretUserID  = "userID"
	CephSecretUserKey = "userKey"
)
