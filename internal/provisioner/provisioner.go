// Package provisioner implements sig-storage-lib-external-provisioner's
// Provisioner with OpenStack Cinder: a claim becomes a Cinder volume, exported
// to a configured connector, whose connection information a transport mapper
// turns into a PV source the kubelet mounts natively; and back on delete.
package provisioner

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// DefaultName is the provisioner name of the original standalone Cinder
// provisioner, kept so existing StorageClasses keep working.
const DefaultName = "openstack.org/standalone-cinder"

// Config carries the provisioner's dependencies and settings.
type Config struct {
	// Cinder is the Cinder side (required).
	Cinder cinder.Client
	// Kube creates and deletes the Secrets PVs need and reads Nodes (required).
	Kube kubernetes.Interface
	// Mappers turn connection info into PV sources; nil: mapper.Default().
	Mappers *mapper.Registry
	// Recorder receives Events about claims; nil: no Events of our own (the
	// library still records ProvisioningFailed with the error).
	Recorder record.EventRecorder
	// Name is the provisioner name StorageClasses use; "" means DefaultName.
	// It is also the identity written on every PV and volume.
	Name string
	// ClusterID tags Cinder volumes with the cluster that owns them (required).
	ClusterID string
	// SecretNamespace is where CHAP Secrets go unless a StorageClass says
	// otherwise: the provisioner's own namespace, so users of a claim cannot
	// read them (required).
	SecretNamespace string
	// Connector identifies the hosts that will reach the volumes: the iSCSI
	// initiator IQN written into every iSCSI PV's initiatorName (targets put
	// it into their ACL), FC WWPNs/WWNNs, host name and address.
	Connector cinder.Connector
	// Metrics receive the phase timings and Cinder call counts; nil: none.
	Metrics *Metrics
	// Dynamic reads VolumeSnapshots and VolumeSnapshotContents (restore
	// from a snapshot); nil: such claims are refused.
	Dynamic dynamic.Interface
	// SweepGrace is how old, by Cinder's clock, a volume nothing refers to
	// must be before the sweep deletes it; 0 means DefaultSweepGrace.
	SweepGrace time.Duration
	// ZoneKey is the node label naming a node's availability zone, read
	// from the selected node and allowedTopologies and written into PV
	// nodeAffinity; "" means DefaultZoneKey.
	ZoneKey string
	// CreateLands is how long after it was sent a create whose answer was
	// lost may still make a volume (inflight.go); 0 means
	// DefaultCreateLands.
	CreateLands time.Duration
}

// Provisioner provisions and deletes Cinder-backed PersistentVolumes.
type Provisioner struct {
	cinder          cinder.Client
	kube            kubernetes.Interface
	mappers         *mapper.Registry
	recorder        record.EventRecorder
	name            string
	clusterID       string
	secretNamespace string
	connector       cinder.Connector
	refusals        refusals
	locks           claimLocks
	metrics         *Metrics
	dynamic         dynamic.Interface
	zoneKey         string
	sweepGrace      time.Duration
	inflight        inflight
}

var (
	_ controller.Provisioner      = (*Provisioner)(nil)
	_ controller.BlockProvisioner = (*Provisioner)(nil)
)

// New checks cfg and returns a Provisioner.
func New(cfg Config) (*Provisioner, error) {
	var errs []error
	if cfg.Cinder == nil {
		errs = append(errs, errors.New("no Cinder client"))
	}
	if cfg.Kube == nil {
		errs = append(errs, errors.New("no Kubernetes client"))
	}
	if cfg.ClusterID == "" {
		errs = append(errs, errors.New("cluster id is empty"))
	}
	if cfg.SecretNamespace == "" {
		errs = append(errs, errors.New("secret namespace is empty"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("provisioner config: %w", errors.Join(errs...))
	}
	p := &Provisioner{
		cinder:          cfg.Cinder,
		kube:            cfg.Kube,
		mappers:         cfg.Mappers,
		recorder:        cfg.Recorder,
		name:            cfg.Name,
		clusterID:       cfg.ClusterID,
		secretNamespace: cfg.SecretNamespace,
		connector:       cfg.Connector,
		metrics:         cfg.Metrics,
		dynamic:         cfg.Dynamic,
		zoneKey:         cfg.ZoneKey,
		sweepGrace:      cfg.SweepGrace,
		inflight:        inflight{window: cfg.CreateLands},
	}
	if p.sweepGrace <= 0 {
		p.sweepGrace = DefaultSweepGrace
	}
	if p.zoneKey == "" {
		p.zoneKey = DefaultZoneKey
	}
	if p.mappers == nil {
		p.mappers = mapper.Default()
	}
	if p.name == "" {
		p.name = DefaultName
	}
	return p, nil
}
