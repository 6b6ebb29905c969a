package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// cleanupTimeout bounds the undo of a failed Provision; it runs on a context
// of its own, because the failure may be the end of the caller's.
const cleanupTimeout = 2 * time.Minute

// SupportsBlock implements controller.BlockProvisioner: every transport
// (iSCSI, RBD through ceph-csi, FC) can hand the node a raw block device.
func (p *Provisioner) SupportsBlock(context.Context) bool { return true }

// Provision implements controller.Provisioner: it creates (or finds again)
// the claim's Cinder volume, exports it, maps the connection information to a
// PV source and returns the PV. On failure it removes what it made, and
// records a Warning Event on the claim saying what to do.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(opts.PVC), "pv", opts.PVName)
	ctx = klog.NewContext(ctx, logger)
	pv, err := p.provision(ctx, opts)
	state := provisioningState(err)
	if err != nil {
		p.warn(opts.PVC, err)
		return nil, state, err
	}
	logger.V(2).Info("Provisioned volume", "volumeID", pv.Annotations[AnnVolumeID], "capacity", pv.Spec.Capacity.Storage().String())
	return pv, state, nil
}

func (p *Provisioner) provision(ctx context.Context, opts controller.ProvisionOptions) (_ *corev1.PersistentVolume, err error) {
	if opts.PVC == nil || opts.StorageClass == nil {
		return nil, mark(errors.New("provision options lack the claim or its StorageClass"), errNothingCreated)
	}
	params, err := parseParameters(opts.StorageClass.Parameters)
	if err != nil {
		return nil, mark(err, errNothingCreated)
	}
	sizeGiB, err := checkClaim(opts.PVC)
	if err != nil {
		return nil, mark(err, errNothingCreated)
	}
	connector, err := p.connectorFor(ctx, opts, params)
	if err != nil {
		return nil, mark(err, errNothingCreated)
	}
	mp := p.mapperParams(opts.PVC, params, connector)
	if err := p.checkCephSecret(ctx, mp); err != nil {
		return nil, mark(err, errNothingCreated)
	}

	var undo cleanup
	available := false
	defer func() {
		if err == nil || errors.Is(err, errNothingCreated) {
			return
		}
		if !available && transient(err) {
			// Cinder may still be creating the volume: a retry finds it by
			// name (InBackground), rather than a delete Cinder would refuse
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := undo.run(cctx); cerr != nil {
			err = mark(fmt.Errorf("%w; undoing the partial work failed, will retry: %w", err, cerr), errLeftBehind)
			return
		}
		err = mark(err, errCleanedUp)
	}()

	vol, err := p.ensureVolume(ctx, opts, params, sizeGiB, connector, &undo)
	if err != nil {
		return nil, err
	}
	available = true
	if needsMultiattach(opts.PVC) && !vol.Multiattach {
		return nil, &claimError{fmt.Sprintf("ReadWriteMany needs a multiattach volume, but Cinder volume type %q did not give one: use a volume type with extra spec multiattach=\"<is> True\"", vol.VolumeType)}
	}

	exp, err := p.cinder.Export(ctx, vol.ID, connector)
	if err != nil {
		return nil, fmt.Errorf("export volume %s: %w", vol.ID, err)
	}
	undo.push("unexport volume "+vol.ID, func(ctx context.Context) error {
		return p.cinder.Unexport(ctx, vol.ID, exp.ID, connector)
	})

	m, err := p.mappers.For(exp.Connection.DriverVolumeType)
	if err != nil {
		return nil, err
	}
	res, err := m.Map(mapper.Input{Connection: exp.Connection, Params: mp, PVName: opts.PVName, VolumeID: vol.ID})
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		klog.FromContext(ctx).Info("Connection info partly unusable", "volumeID", vol.ID, "warning", w)
		if p.recorder != nil {
			p.recorder.Event(opts.PVC, corev1.EventTypeWarning, ReasonPartialConnectionInfo, fmt.Sprintf("volume %s: %s", vol.ID, w))
		}
	}
	for _, s := range res.Secrets {
		if err := p.applySecret(ctx, s); err != nil {
			return nil, err
		}
		undo.push("delete Secret "+s.Namespace+"/"+s.Name, func(ctx context.Context) error {
			return p.deleteSecret(ctx, s.Namespace, s.Name, opts.PVName)
		})
	}

	pv, err := p.buildPV(opts, vol, exp, connector, res.Source)
	if err != nil {
		return nil, err
	}
	undo.disarm()
	return pv, nil
}

// ensureVolume returns the claim's volume, available: the one an earlier
// attempt created (found by name: the PV name), or a new one. A volume an
// earlier attempt left in an error status is deleted and made anew; exports an
// interrupted attempt left are removed, with the connector this attempt
// exports to (the earlier one used the same class and node): legacy unexport
// (os-terminate_connection) must name the connector the export was made for.
func (p *Provisioner) ensureVolume(ctx context.Context, opts controller.ProvisionOptions, params *Parameters, sizeGiB int, connector cinder.Connector, undo *cleanup) (*cinder.Volume, error) {
	logger := klog.FromContext(ctx)
	vol, err := p.cinder.FindVolumeByName(ctx, opts.PVName)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		vol = nil
	case err != nil:
		return nil, mark(err, errNothingCreated)
	case vol.Metadata[MetaClusterID] != p.clusterID:
		return nil, mark(&nameConflictError{name: opts.PVName, id: vol.ID, cluster: vol.Metadata[MetaClusterID]}, errNothingCreated)
	case cinder.IsErrorStatus(vol.Status):
		logger.V(2).Info("Deleting volume an earlier attempt left in error", "volumeID", vol.ID, "status", vol.Status)
		if err := p.deleteVolume(ctx, vol.ID); err != nil {
			return nil, mark(fmt.Errorf("delete volume %s left in status %s by an earlier attempt: %w", vol.ID, vol.Status, err), errLeftBehind)
		}
		vol = nil
	default:
		logger.V(2).Info("Reusing volume of an earlier attempt", "volumeID", vol.ID, "status", vol.Status)
	}

	if vol == nil {
		vol, err = p.cinder.CreateVolume(ctx, cinder.CreateRequest{
			Name:             opts.PVName,
			SizeGiB:          sizeGiB,
			VolumeType:       params.VolumeType,
			AvailabilityZone: params.Availability,
			Description:      fmt.Sprintf("Kubernetes volume %s for claim %s/%s (cluster %s)", opts.PVName, opts.PVC.Namespace, opts.PVC.Name, p.clusterID),
			Metadata:         p.volumeMetadata(opts),
			Multiattach:      needsMultiattach(opts.PVC),
		})
		if err != nil {
			if rejected(err) {
				// Cinder refused: nothing exists
				return nil, mark(err, errNothingCreated)
			}
			return nil, fmt.Errorf("create volume %s: %w", opts.PVName, err)
		}
		logger.V(4).Info("Created volume", "volumeID", vol.ID)
	}
	id := vol.ID
	undo.push("delete volume "+id, func(ctx context.Context) error { return p.deleteVolume(ctx, id) })

	for _, att := range vol.AttachmentIDs {
		logger.V(2).Info("Removing export an earlier attempt left", "volumeID", id, "exportID", att)
		if err := p.cinder.Unexport(ctx, id, att, connector); err != nil {
			return nil, fmt.Errorf("unexport volume %s (export %s left by an earlier attempt): %w", id, att, err)
		}
	}
	return p.cinder.WaitForVolumeStatus(ctx, id, cinder.StatusAvailable)
}

// rejected reports whether Cinder refused a request outright, so it changed
// nothing.
func rejected(err error) bool {
	return errors.Is(err, cinder.ErrQuotaExceeded) || errors.Is(err, cinder.ErrInvalid) ||
		errors.Is(err, cinder.ErrNotFound) || errors.Is(err, cinder.ErrUnauthorized)
}

func (p *Provisioner) deleteVolume(ctx context.Context, id string) error {
	if err := p.cinder.DeleteVolume(ctx, id); err != nil {
		return err
	}
	return p.cinder.WaitForVolumeDeleted(ctx, id)
}

func (p *Provisioner) volumeMetadata(opts controller.ProvisionOptions) map[string]string {
	return map[string]string{
		MetaClusterID:    p.clusterID,
		MetaPVCNamespace: opts.PVC.Namespace,
		MetaPVCName:      opts.PVC.Name,
		MetaPVName:       opts.PVName,
		MetaProvisioner:  p.name,
	}
}

// mapperParams completes the class's mapper parameters with the
// provisioner's settings and the claim's volume mode.
func (p *Provisioner) mapperParams(claim *corev1.PersistentVolumeClaim, params *Parameters, connector cinder.Connector) mapper.Params {
	mp := params.Mapper
	mp.Block = claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == corev1.PersistentVolumeBlock
	if mp.Block {
		mp.FSType = ""
	} else if mp.FSType == "" {
		mp.FSType = defaultFSType
	}
	mp.InitiatorName = connector.Initiator
	if mp.SecretNamespace == "" {
		mp.SecretNamespace = p.secretNamespace
	}
	return mp
}

// connectorFor is the connector the volume is exported to: the provisioner's,
// with the class's initiator name and FC WWNs, or the selected node's WWNs.
func (p *Provisioner) connectorFor(ctx context.Context, opts controller.ProvisionOptions, params *Parameters) (cinder.Connector, error) {
	c := p.connector
	c.WWPNs = slices.Clone(c.WWPNs)
	c.WWNNs = slices.Clone(c.WWNNs)
	if params.Mapper.InitiatorName != "" {
		c.Initiator = params.Mapper.InitiatorName
	}
	if opts.SelectedNodeName != "" && params.FCWWPNs == nil {
		node, err := p.kube.CoreV1().Nodes().Get(ctx, opts.SelectedNodeName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return c, fmt.Errorf("get selected node %s: %w", opts.SelectedNodeName, err)
		}
		if err == nil {
			wwpns, wwnns, err := mapper.NodeWWNs(node)
			if err != nil {
				return c, &nodeError{node: node.Name, err: err}
			}
			if len(wwpns) > 0 {
				c.WWPNs, c.WWNNs = wwpns, wwnns
			}
		}
	}
	if params.FCWWPNs != nil {
		c.WWPNs = params.FCWWPNs
	}
	if params.FCWWNNs != nil {
		c.WWNNs = params.FCWWNNs
	}
	return c, nil
}

// checkCephSecret makes sure the admin's Ceph Secret a class names exists
// before a volume is made for it.
func (p *Provisioner) checkCephSecret(ctx context.Context, mp mapper.Params) error {
	if mp.CephSecretName == "" {
		return nil
	}
	_, err := p.kube.CoreV1().Secrets(mp.CephSecretNamespace).Get(ctx, mp.CephSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &missingSecretError{namespace: mp.CephSecretNamespace, name: mp.CephSecretName}
	}
	if err != nil {
		return fmt.Errorf("get Ceph Secret %s/%s: %w", mp.CephSecretNamespace, mp.CephSecretName, err)
	}
	return nil
}

// applySecret creates a Secret a mapper produced, or updates the one an
// earlier attempt for the same PV created.
func (p *Provisioner) applySecret(ctx context.Context, s *corev1.Secret) error {
	secrets := p.kube.CoreV1().Secrets(s.Namespace)
	_, err := secrets.Create(ctx, s, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	}
	old, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if old.Labels[mapper.LabelPV] != s.Labels[mapper.LabelPV] {
		return fmt.Errorf("Secret %s/%s exists and is not this provisioner's for PV %s: remove or rename it", s.Namespace, s.Name, s.Labels[mapper.LabelPV]) //nolint:staticcheck // starts with a Kubernetes kind
	}
	s.ResourceVersion = old.ResourceVersion
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// deleteSecret deletes a Secret this provisioner made for the PV; one that
// is gone is fine, one that is someone else's is left alone.
func (p *Provisioner) deleteSecret(ctx context.Context, namespace, name, pvName string) error {
	secrets := p.kube.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Secret %s/%s: %w", namespace, name, err)
	}
	if s.Labels[mapper.LabelPV] != pvName {
		klog.FromContext(ctx).Info("Not deleting Secret that is not this PV's", "secret", klog.KObj(s), "pv", pvName)
		return nil
	}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

// deleteSecretUnlabeled deletes a Secret whatever its labels; gone is fine.
func (p *Provisioner) deleteSecretUnlabeled(ctx context.Context, namespace, name string) error {
	err := p.kube.CoreV1().Secrets(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

func (p *Provisioner) buildPV(opts controller.ProvisionOptions, vol *cinder.Volume, exp *cinder.Export, connector cinder.Connector, source corev1.PersistentVolumeSource) (*corev1.PersistentVolume, error) {
	conn, err := json.Marshal(connectorRecord{Initiator: connector.Initiator, Host: connector.Host, IP: connector.IP, WWPNs: connector.WWPNs, WWNNs: connector.WWNNs})
	if err != nil {
		return nil, fmt.Errorf("record connector: %w", err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if opts.StorageClass.ReclaimPolicy != nil {
		reclaim = *opts.StorageClass.ReclaimPolicy
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: opts.PVName,
			Annotations: map[string]string{
				AnnVolumeID:            vol.ID,
				AnnExportMethod:        string(exp.Method),
				AnnExportID:            exp.ID,
				AnnConnector:           string(conn),
				AnnProvisionerIdentity: p.name,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   opts.PVC.Spec.AccessModes,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(int64(vol.SizeGiB)<<30, resource.BinarySI)},
			MountOptions:                  opts.StorageClass.MountOptions,
			VolumeMode:                    opts.PVC.Spec.VolumeMode,
			PersistentVolumeSource:        source,
		},
	}, nil
}

// connectorRecord is the connector as recorded on the PV (no credentials).
type connectorRecord struct {
	Initiator string   `json:"initiator,omitempty"`
	Host      string   `json:"host,omitempty"`
	IP        string   `json:"ip,omitempty"`
	WWPNs     []string `json:"wwpns,omitempty"`
	WWNNs     []string `json:"wwnns,omitempty"`
}
