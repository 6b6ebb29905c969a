// Package mapper turns the connection information Cinder returns for an
// exported volume into a PersistentVolume source the kubelet mounts with its
// own machinery: iSCSI, Ceph RBD (through a ceph-csi static volume) and Fibre
// Channel. One Mapper per transport, selected by driver_volume_type from a
// Registry, and found again from a PV's source when the PV is deleted.
//
// Mappers are pure: they read a cinder.Connection and typed StorageClass
// parameters and return a PV source plus the Secrets to create. They never
// talk to Cinder or Kubernetes, and never put a credential in an error.
package mapper

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// LabelPV is set on every Secret a mapper creates; its value is the PV name.
// It marks the Secret as this provisioner's, owned by that PV.
const LabelPV = "cinder.openstack.org/pv"

// Params are the already parsed and defaulted StorageClass parameters (and
// provisioner settings they override) that mappers need. Each mapper reads
// only its own fields; Validate says which it requires.
type Params struct {
	FSType   string // filesystem to create/mount; ignored when Block
	ReadOnly bool
	Block    bool // volumeMode Block: the source carries no fsType

	// iSCSI.
	ISCSIInterface  string // iscsiadm interface; "" means "default"
	InitiatorName   string // the IQN sent to Cinder in the connector
	SecretNamespace string // where CHAP Secrets are created (chapSecretNamespace)

	// Ceph RBD through ceph-csi.
	CephClusterID       string // clusterID known to ceph-csi's config
	CephSecretName      string // admin's Secret with userID/userKey
	CephSecretNamespace string
	ImageFeatures       string // "" means "layering"
	RBDDriver           string // "" means DefaultRBDDriver
}

// Input is everything a mapper needs for one volume.
type Input struct {
	Connection cinder.Connection
	Params     Params
	PVName     string // names the Secrets a mapper creates
	VolumeID   string // Cinder volume id; checked against the connection's volume_id
}

// Result is what a mapper produces: the PV source and any Secrets the
// provisioner must create before the PV (and delete with it).
type Result struct {
	Source  corev1.PersistentVolumeSource
	Secrets []*corev1.Secret
	// Warnings say what the mapper had to leave out (e.g. multipath portals
	// Kubernetes cannot express); the provisioner reports them as Events.
	// They never contain credentials.
	Warnings []string
}

// Mapper maps one transport (one driver_volume_type).
type Mapper interface {
	// Type is the driver_volume_type the mapper serves.
	Type() string
	// Validate checks the parameters this transport needs, so a
	// StorageClass that cannot work is refused before a volume exists.
	Validate(p Params) error
	// Map builds the PV source (and Secrets) for an exported volume.
	// Errors are *FieldError or *ParameterError.
	Map(in Input) (*Result, error)
	// Recognizes reports whether pv's source is one this mapper produces
	// (or the original standalone-cinder provisioner produced).
	Recognizes(pv *corev1.PersistentVolume) bool
	// Secrets lists the Secrets this provisioner created for pv, which
	// must be deleted with it. Never an admin-owned Secret.
	Secrets(pv *corev1.PersistentVolume) []types.NamespacedName
}

// Registry selects a Mapper by driver_volume_type, and by PV source on the
// way back.
type Registry struct {
	byType  map[string]Mapper
	ordered []Mapper // sorted by Type, for deterministic ForPV and messages
}

// NewRegistry returns a registry of ms. Two mappers for one type are a
// programming error and panic.
func NewRegistry(ms ...Mapper) *Registry {
	r := &Registry{byType: make(map[string]Mapper, len(ms))}
	for _, m := range ms {
		if _, dup := r.byType[m.Type()]; dup {
			panic(fmt.Sprintf("mapper: two mappers for driver_volume_type %q", m.Type()))
		}
		r.byType[m.Type()] = m
		r.ordered = append(r.ordered, m)
	}
	sort.Slice(r.ordered, func(i, j int) bool { return r.ordered[i].Type() < r.ordered[j].Type() })
	return r
}

// Default returns a registry of the iSCSI, RBD and Fibre Channel mappers.
func Default() *Registry {
	return NewRegistry(NewISCSI(), NewRBD(), NewFC())
}

// Supported returns the driver_volume_types the registry maps, sorted.
func (r *Registry) Supported() []string {
	out := make([]string, len(r.ordered))
	for i, m := range r.ordered {
		out[i] = m.Type()
	}
	return out
}

// For returns the mapper for driverVolumeType, or *UnsupportedTransportError.
func (r *Registry) For(driverVolumeType string) (Mapper, error) {
	if m, ok := r.byType[strings.ToLower(driverVolumeType)]; ok {
		return m, nil
	}
	return nil, &UnsupportedTransportError{Type: driverVolumeType, Supported: r.Supported()}
}

// ForPV returns the mapper that produced pv's source, or an error wrapping
// ErrUnrecognizedSource.
func (r *Registry) ForPV(pv *corev1.PersistentVolume) (Mapper, error) {
	for _, m := range r.ordered {
		if m.Recognizes(pv) {
			return m, nil
		}
	}
	return nil, fmt.Errorf("pv %s: %w", pv.Name, ErrUnrecognizedSource)
}

// Map selects the mapper for in.Connection and runs it.
func (r *Registry) Map(in Input) (*Result, error) {
	m, err := r.For(in.Connection.DriverVolumeType)
	if err != nil {
		return nil, err
	}
	return m.Map(in)
}

// common holds what every mapper reads the same way.
type common struct {
	fsType   string
	readOnly bool
}

// checkCommon does the checks every mapper shares: the connection is for this
// transport and this volume, the volume needs no host-side decryption, and it
// derives fsType and readOnly.
func checkCommon(transport string, in Input) (common, error) {
	if in.PVName == "" {
		return common{}, errors.New("mapper input: pv name missing")
	}
	if t := in.Connection.DriverVolumeType; !strings.EqualFold(t, transport) {
		return common{}, fmt.Errorf("mapper input: %s mapper given %q connection info", transport, t)
	}
	data := in.Connection.Data
	id, err := optString(transport, data, "volume_id")
	if err != nil {
		return common{}, err
	}
	if id != "" && in.VolumeID != "" && id != in.VolumeID {
		return common{}, malformed(transport, "volume_id", "is %q but the exported volume is %q", id, in.VolumeID)
	}
	// Cinder's front-end encryption is done by the attaching host (os-brick
	// with a key from the key manager); the kubelet would use the raw
	// ciphertext device and write plaintext to it.
	encrypted, err := optBool(transport, data, "encrypted")
	if err != nil {
		return common{}, err
	}
	if encrypted {
		return common{}, malformed(transport, "encrypted", "is true: the kubelet cannot decrypt Cinder-encrypted volumes, use a volume type without encryption")
	}
	// A volume Cinder exported read-only must be mounted read-only.
	mode, err := optString(transport, data, "access_mode")
	if err != nil {
		return common{}, err
	}
	c := common{fsType: in.Params.FSType, readOnly: in.Params.ReadOnly || mode == "ro"}
	if in.Params.Block {
		c.fsType = ""
	}
	return c, nil
}
