package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// SupportsBlock implements controller.BlockProvisioner: every transport
// (iSCSI, RBD through ceph-csi, FC) can hand the node a raw block device.
func (p *Provisioner) SupportsBlock(context.Context) bool { return true }

// Provision implements controller.Provisioner: it creates (or finds again)
// the claim's Cinder volume, exports it, maps the connection information to a
// PV source and returns the PV. Every attempt starts from what exists on
// Cinder and drives it to one of two ends: a PV for exactly one volume, or a
// refusal with nothing left. A failure records a Warning Event on the claim
// saying what to do.
func (p *Provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(opts.PVC), "pv", opts.PVName)
	ctx = klog.NewContext(ctx, logger)
	ctx, done := p.metrics.track(ctx, opProvision)
	res := p.attempt(ctx, opts)
	done(res.err)
	if res.err != nil {
		logger.V(2).Info("Provisioning did not finish", "outcome", res.out.String(), "err", res.err.Error())
		if res.out.event() {
			p.warn(opts.PVC, res.err)
		}
		return nil, res.out.state(), res.err
	}
	logger.V(2).Info("Provisioned volume", "volumeID", res.pv.Annotations[contract.AnnVolumeID], "capacity", res.pv.Spec.Capacity.Storage().String())
	return res.pv, res.out.state(), nil
}

// attempt is one attempt on a claim, alone on it (the Guard waits): it
// reads the claim live, forgets one that is gone or being deleted, else
// provisions, and ends there (end).
func (p *Provisioner) attempt(ctx context.Context, opts controller.ProvisionOptions) result {
	if opts.PVC == nil || opts.StorageClass == nil {
		return result{out: refused, undo: undoNothing, err: errors.New("provision options lack the claim or its StorageClass")}
	}
	if err := p.locks.lock(ctx, opts.PVC.UID); err != nil {
		return retryLater(err)
	}
	defer p.locks.unlock(opts.PVC.UID)
	endClaim := p.metrics.timePhase(opProvision, phaseClaim)
	live, err := p.liveClaim(ctx, opts.PVC)
	if err != nil {
		return retryLater(err)
	}
	var res result
	if live == nil || live.DeletionTimestamp != nil {
		res = p.forget(ctx, opts, live)
	} else {
		res = p.provision(ctx, opts, live, endClaim)
	}
	return p.end(ctx, opts, live, res)
}

// request is what a claim and its class ask for, checked.
type request struct {
	params    *Parameters
	sizeGiB   int
	connector cinder.Connector
	mapper    mapper.Params
	source    *source // clone or restore; nil: an empty volume
	zone      string  // availability zone to ask for; "": Cinder's choice
	pinZone   bool    // pin the PV to the volume's zone (topology.go)
}

// provision is one attempt for a live claim: each step that stops it
// returns what happened (see result), and attempt ends it.
func (p *Provisioner) provision(ctx context.Context, opts controller.ProvisionOptions, live *corev1.PersistentVolumeClaim, endClaim func()) result {
	if err, ok := p.refusals.get(opts); ok {
		return result{out: refusedAgain, err: err}
	}
	if ig := populated(opts.PVC); ig != nil {
		return result{out: ignored, err: ig}
	}
	req, err := p.request(ctx, opts)
	if err != nil {
		return refuse(nil, "", err)
	}
	// from here on a volume may be made or changed for the claim: the
	// claim is held until it is bound or nothing of it is left
	first, err := p.protect(ctx, live)
	if err != nil {
		return retryLater(err)
	}
	endClaim()

	var vol *cinder.Volume
	if !first {
		// an earlier attempt (this process's, another's) may have made
		// the claim's volume: find it
		endLookup := p.metrics.timePhase(opProvision, phaseLookup)
		found, res, ok := p.findVolume(ctx, opts, req)
		endLookup()
		if !ok {
			return res
		}
		vol = found
	}
	if vol == nil {
		if err := p.protectSource(ctx, opts, req.source); err != nil {
			return refuse(req, "", err)
		}
		made, res, ok := p.createVolume(ctx, opts, req)
		if !ok {
			return res
		}
		vol = made
	}
	if err := p.releaseSource(ctx, opts.PVC); err != nil {
		// the volume exists: the next attempt finds it and releases
		return retryLater(err)
	}
	if needsMultiattach(opts.PVC) && !vol.Multiattach {
		return refuse(req, vol.ID, &claimError{fmt.Sprintf("ReadWriteMany needs a multiattach volume, but Cinder volume type %q did not give one: use a volume type with extra spec multiattach=\"<is> True\"", vol.VolumeType)})
	}
	return p.exportAndMap(ctx, opts, req, vol)
}

// request checks the claim and its class, and resolves the connector.
func (p *Provisioner) request(ctx context.Context, opts controller.ProvisionOptions) (*request, error) {
	params, err := parseParameters(opts.StorageClass.Parameters)
	if err != nil {
		return nil, err
	}
	sizeGiB, err := checkClaim(opts.PVC)
	if err != nil {
		return nil, err
	}
	node, err := p.selectedNode(ctx, opts)
	if err != nil {
		return nil, err
	}
	connector, err := p.connectorFor(opts, params, node)
	if err != nil {
		return nil, err
	}
	mp := p.mapperParams(opts.PVC, params, connector)
	if err := p.checkCephSecret(ctx, mp); err != nil {
		return nil, err
	}
	src, err := p.dataSourceOrMade(ctx, opts, sizeGiB)
	if err != nil {
		return nil, err
	}
	zone, pin, err := p.zoneFor(opts, params, node, src)
	if err != nil {
		return nil, err
	}
	return &request{params: params, sizeGiB: sizeGiB, connector: connector, mapper: mp, source: src, zone: zone, pinZone: pin}, nil
}

// exportAndMap exports an available volume of the claim, maps the
// connection information to a PV source, saves the Secrets it needs and
// returns the PV. A refusal removes the volume again; a failure that may
// pass keeps what exists for the next attempt, which starts by clearing the
// export this one made.
func (p *Provisioner) exportAndMap(ctx context.Context, opts controller.ProvisionOptions, req *request, vol *cinder.Volume) result {
	logger := klog.FromContext(ctx)
	endExport := p.metrics.timePhase(opProvision, phaseExport)
	exp, err := p.cinder.Export(ctx, vol.ID, req.connector)
	endExport()
	if err != nil {
		err = fmt.Errorf("export volume %s: %w", vol.ID, err)
		if rejected(err) {
			return refuse(req, vol.ID, err)
		}
		return retryLater(err)
	}
	m, err := p.mappers.For(exp.Connection.DriverVolumeType)
	if err != nil {
		return refuse(req, vol.ID, err)
	}
	res, err := m.Map(mapper.Input{Connection: exp.Connection, Params: req.mapper, PVName: opts.PVName, VolumeID: vol.ID})
	if err != nil {
		return refuse(req, vol.ID, err)
	}
	for _, w := range res.Warnings {
		logger.Info("Connection info partly unusable", "volumeID", vol.ID, "warning", w)
		if p.recorder != nil {
			p.recorder.Event(opts.PVC, corev1.EventTypeWarning, ReasonPartialConnectionInfo, fmt.Sprintf("volume %s: %s", vol.ID, w))
		}
	}
	endSecret := p.metrics.timePhase(opProvision, phaseSecret)
	for _, s := range res.Secrets {
		if err := p.applySecret(ctx, s); err != nil {
			var foreign *foreignSecretError
			if errors.As(err, &foreign) {
				return refuse(req, vol.ID, err)
			}
			return retryLater(err)
		}
	}
	endSecret()
	pv, err := p.buildPV(opts, vol, exp, req.connector, res.Source)
	if err != nil {
		return refuse(req, vol.ID, err)
	}
	p.pinZone(ctx, opts, req, vol, pv)
	return boundTo(pv)
}

func (p *Provisioner) volumeMetadata(opts controller.ProvisionOptions, req *request) map[string]string {
	return map[string]string{
		contract.MetaClusterID:    p.clusterID,
		contract.MetaPVCNamespace: opts.PVC.Namespace,
		contract.MetaPVCName:      opts.PVC.Name,
		contract.MetaPVName:       opts.PVName,
		contract.MetaProvisioner:  p.name,
		// a hint for people, orphans and the sweep, kept current by the
		// Guard when an admin changes the PV's policy
		contract.MetaReclaimPolicy: string(reclaimPolicy(opts.StorageClass)),
		// where a cleanup without the class finds the CHAP Secret
		contract.MetaSecretNamespace: req.mapper.SecretNamespace,
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
func (p *Provisioner) connectorFor(opts controller.ProvisionOptions, params *Parameters, node *corev1.Node) (cinder.Connector, error) {
	c := p.connector
	c.WWPNs = slices.Clone(c.WWPNs)
	c.WWNNs = slices.Clone(c.WWNNs)
	if params.Mapper.InitiatorName != "" {
		c.Initiator = params.Mapper.InitiatorName
	}
	if node != nil && params.FCWWPNs == nil {
		wwpns, wwnns, err := mapper.NodeWWNs(node)
		if err != nil {
			return c, &nodeError{node: node.Name, err: err}
		}
		if len(wwpns) > 0 {
			c.WWPNs, c.WWNNs = wwpns, wwnns
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

// checkCephSecret makes sure the admin's Ceph Secret a class names exists,
// with the userID and userKey ceph-csi's node stage reads, before a volume
// is made for it. (Whether the key is right only Ceph can tell: the
// provisioner never talks to Ceph.)
func (p *Provisioner) checkCephSecret(ctx context.Context, mp mapper.Params) error {
	if mp.CephSecretName == "" {
		return nil
	}
	sec, err := p.kube.CoreV1().Secrets(mp.CephSecretNamespace).Get(ctx, mp.CephSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &missingSecretError{namespace: mp.CephSecretNamespace, name: mp.CephSecretName}
	}
	if err != nil {
		return fmt.Errorf("get Ceph Secret %s/%s: %w", mp.CephSecretNamespace, mp.CephSecretName, err)
	}
	for _, key := range []string{contract.CephSecretUserID, contract.CephSecretUserKey} {
		if len(sec.Data[key]) == 0 && sec.StringData[key] == "" {
			return &missingSecretError{namespace: mp.CephSecretNamespace, name: mp.CephSecretName, lacks: key}
		}
	}
	return nil
}
