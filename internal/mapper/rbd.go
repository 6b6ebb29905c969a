package mapper

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TypeRBD is the driver_volume_type of Ceph RBD exports.
const TypeRBD = "rbd"

// Defaults for the ceph-csi static volume.
const (
	DefaultRBDDriver     = "rbd.csi.ceph.com"
	DefaultImageFeatures = "layering"
)

// volumeAttributes keys ceph-csi reads for a static RBD volume.
const (
	attrClusterID     = "clusterID"
	attrPool          = "pool"
	attrStaticVolume  = "staticVolume"
	attrImageFeatures = "imageFeatures"
)

// csiDriverName is the format Kubernetes accepts for a CSI driver name.
var csiDriverName = regexp.MustCompile(`^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,61}[a-zA-Z-0-9]$`)

// RBD maps rbd connection info to a ceph-csi static PV (the in-tree rbd
// source is gone since Kubernetes 1.31). ceph-csi finds the monitors from
// its own config by clusterID and authenticates with the admin's Secret, so
// of Cinder's data only the pool and image name are used: hosts/ports are
// checked for consistency, and auth_username, secret_uuid and any keyring
// are ignored and never copied.
type RBD struct{}

var _ Mapper = (*RBD)(nil)

// NewRBD returns the RBD mapper.
func NewRBD() *RBD { return &RBD{} }

// Type implements Mapper.
func (*RBD) Type() string { return TypeRBD }

// imageFeatures are the RBD image features ceph-csi accepts.
var imageFeatures = map[string]bool{"layering": true, "exclusive-lock": true, "object-map": true, "fast-diff": true, "deep-flatten": true, "journaling": true}

// CheckImageFeatures checks a comma-separated imageFeatures value.
func CheckImageFeatures(value string) error {
	for _, f := range strings.Split(value, ",") {
		if f = strings.TrimSpace(f); !imageFeatures[f] {
			return fmt.Errorf("unknown RBD image feature %q (known: deep-flatten, exclusive-lock, fast-diff, journaling, layering, object-map)", f)
		}
	}
	return nil
}

// ValidCSIDriverName reports whether name can be a CSI driver name.
func ValidCSIDriverName(name string) bool { return csiDriverName.MatchString(name) }

// Validate requires clusterID and the admin's Ceph Secret (name and
// namespace, already defaulted by the parameter parser), and a valid driver
// name when one is given.
func (*RBD) Validate(p Params) error {
	perr := func(param, problem string) error {
		return &ParameterError{Transport: TypeRBD, Parameter: param, Problem: problem}
	}
	if p.CephClusterID == "" {
		return perr("clusterID", "missing (the ceph-csi cluster id of the Ceph cluster Cinder uses)")
	}
	if p.CephSecretName == "" {
		return perr("cephSecretName", "missing (a Secret with userID and userKey for ceph-csi)")
	}
	if errs := validation.IsDNS1123Subdomain(p.CephSecretName); len(errs) > 0 {
		return perr("cephSecretName", "is not a valid Secret name: "+strings.Join(errs, "; "))
	}
	if p.CephSecretNamespace == "" {
		return perr("cephSecretNamespace", "missing")
	}
	if errs := validation.IsDNS1123Label(p.CephSecretNamespace); len(errs) > 0 {
		return perr("cephSecretNamespace", "is not a valid namespace name: "+strings.Join(errs, "; "))
	}
	if p.RBDDriver != "" && !csiDriverName.MatchString(p.RBDDriver) {
		return perr("rbdDriver", "is not a valid CSI driver name")
	}
	return nil
}

// Map implements Mapper.
func (m *RBD) Map(in Input) (*Result, error) {
	if err := m.Validate(in.Params); err != nil {
		return nil, err
	}
	c, err := checkCommon(TypeRBD, in)
	if err != nil {
		return nil, err
	}
	data := in.Connection.Data

	name, err := reqString(TypeRBD, data, "name")
	if err != nil {
		return nil, err
	}
	pool, image, ok := strings.Cut(name, "/")
	if !ok || pool == "" || image == "" || strings.Contains(image, "/") {
		return nil, malformed(TypeRBD, "name", "%q is not <pool>/<image>", name)
	}
	hosts, err := optList(TypeRBD, data, "hosts")
	if err != nil {
		return nil, err
	}
	ports, err := optList(TypeRBD, data, "ports")
	if err != nil {
		return nil, err
	}
	if len(hosts) != len(ports) {
		return nil, malformed(TypeRBD, "ports", "has %d entries but hosts has %d", len(ports), len(hosts))
	}

	driver := in.Params.RBDDriver
	if driver == "" {
		driver = DefaultRBDDriver
	}
	features := in.Params.ImageFeatures
	if features == "" {
		features = DefaultImageFeatures
	}
	return &Result{Source: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
		Driver:       driver,
		VolumeHandle: image,
		ReadOnly:     c.readOnly,
		FSType:       c.fsType,
		VolumeAttributes: map[string]string{
			attrClusterID:     in.Params.CephClusterID,
			attrPool:          pool,
			attrStaticVolume:  "true",
			attrImageFeatures: features,
		},
		NodeStageSecretRef: &corev1.SecretReference{
			Name:      in.Params.CephSecretName,
			Namespace: in.Params.CephSecretNamespace,
		},
	}}}, nil
}

// Recognizes reports a ceph-csi RBD volume (driver rbd.csi.ceph.com or
// <prefix>.rbd.csi.ceph.com, or any driver given a static volume with the
// attributes Map sets, for a custom rbdDriver), or an in-tree rbd source
// created by the original standalone-cinder provisioner.
func (*RBD) Recognizes(pv *corev1.PersistentVolume) bool {
	if pv.Spec.RBD != nil {
		return true
	}
	csi := pv.Spec.CSI
	if csi == nil {
		return false
	}
	if csi.Driver == DefaultRBDDriver || strings.HasSuffix(csi.Driver, "."+DefaultRBDDriver) {
		return true
	}
	a := csi.VolumeAttributes
	return a[attrStaticVolume] == "true" && a[attrClusterID] != "" && a[attrPool] != ""
}

// Secrets returns nothing: the Ceph Secret belongs to the admin.
func (*RBD) Secrets(*corev1.PersistentVolume) []types.NamespacedName { return nil }
