package mapper

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TypeISCSI is the driver_volume_type of iSCSI exports.
const TypeISCSI = "iscsi"

// SecretTypeISCSICHAP is the Secret type the kubelet's iscsi plugin reads
// CHAP credentials from.
const SecretTypeISCSICHAP corev1.SecretType = "kubernetes.io/iscsi-chap"

// Keys of a kubernetes.io/iscsi-chap Secret.
const (
	KeySessionUsername   = "node.session.auth.username"
	KeySessionPassword   = "node.session.auth.password"
	KeyDiscoveryUsername = "discovery.sendtargets.auth.username"
	KeyDiscoveryPassword = "discovery.sendtargets.auth.password"
)

const (
	chapSecretSuffix = "-chap"
	// legacyCHAPSecretSuffix names the CHAP Secret of PVs created by the
	// original standalone-cinder provisioner, in the claim's namespace.
	legacyCHAPSecretSuffix = "-secret"
	// maxPVNamePortal is Kubernetes' limit on len(<pv name>:<targetPortal>)
	// when initiatorName is set (it names the iscsiadm interface).
	maxPVNamePortal = 64
	maxISCSILUN     = 255 // Kubernetes validates lun in [0, 255]
)

// The formats Kubernetes accepts for an iSCSI name (target iqn and
// initiatorName), as in k8s.io/kubernetes/pkg/apis/core/validation.
var (
	iqnRegexp = regexp.MustCompile(`iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$`)
	euiRegexp = regexp.MustCompile(`^eui.[[:alnum:]]{16}$`)
	naaRegexp = regexp.MustCompile(`^naa.[[:alnum:]]{32}$`)
)

func validISCSIName(s string) bool {
	switch {
	case strings.HasPrefix(s, "iqn"):
		return iqnRegexp.MatchString(s)
	case strings.HasPrefix(s, "eui"):
		return euiRegexp.MatchString(s)
	case strings.HasPrefix(s, "naa"):
		return naaRegexp.MatchString(s)
	}
	return false
}

// ISCSI maps iscsi connection info to an ISCSIPersistentVolumeSource.
//
// Multipath and per-portal targets: Cinder may list every path in
// target_portals with a parallel target_iqns and target_luns. Kubernetes'
// iscsi source has one iqn and one lun for the target portal and all extra
// portals. The mapper therefore keeps target_portal/target_iqn/target_lun as
// the primary path and adds as extra portals only the entries of
// target_portals whose IQN and LUN equal the primary's (a missing
// target_iqns/target_luns means "same as primary"). Entries with another IQN
// or LUN (arrays that expose one target per port, e.g. PowerStore or Unity)
// are left out and reported in Result.Warnings: the volume works over the
// remaining paths, with less redundancy, instead of failing outright or
// logging in to a wrong LUN.
type ISCSI struct{}

var _ Mapper = (*ISCSI)(nil)

// NewISCSI returns the iSCSI mapper.
func NewISCSI() *ISCSI { return &ISCSI{} }

// Type implements Mapper.
func (*ISCSI) Type() string { return TypeISCSI }

// Validate requires a valid initiatorName: it must be the IQN sent to Cinder
// in the connector, or the node's own IQN would not match the target's ACL.
func (*ISCSI) Validate(p Params) error {
	if p.InitiatorName == "" {
		return &ParameterError{Transport: TypeISCSI, Parameter: "initiatorName", Problem: "missing"}
	}
	if !validISCSIName(p.InitiatorName) {
		return &ParameterError{Transport: TypeISCSI, Parameter: "initiatorName",
			Problem: fmt.Sprintf("%q is not a valid iqn, eui or naa name", p.InitiatorName)}
	}
	return nil
}

// Map implements Mapper.
func (m *ISCSI) Map(in Input) (*Result, error) {
	if err := m.Validate(in.Params); err != nil {
		return nil, err
	}
	c, err := checkCommon(TypeISCSI, in)
	if err != nil {
		return nil, err
	}
	data := in.Connection.Data

	portal, err := reqString(TypeISCSI, data, "target_portal")
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(portal, " \t\n,") {
		return nil, malformed(TypeISCSI, "target_portal", "%q is not a host:port address", portal)
	}
	if n := len(in.PVName + ":" + portal); n > maxPVNamePortal {
		return nil, malformed(TypeISCSI, "target_portal",
			"%q is too long for pv %s: Kubernetes allows at most %d characters in <pv name>:<target portal> when initiatorName is set, got %d",
			portal, in.PVName, maxPVNamePortal, n)
	}
	iqn, err := reqString(TypeISCSI, data, "target_iqn")
	if err != nil {
		return nil, err
	}
	if !validISCSIName(iqn) {
		return nil, malformed(TypeISCSI, "target_iqn", "%q is not a valid iqn, eui or naa name", iqn)
	}
	rawLUN, ok := lookup(data, "target_lun")
	if !ok {
		return nil, missing(TypeISCSI, "target_lun")
	}
	lun, err := intValue(TypeISCSI, "target_lun", rawLUN, 0, maxISCSILUN)
	if err != nil {
		return nil, err
	}

	extra, warnings, err := iscsiExtraPortals(data, portal, iqn, lun)
	if err != nil {
		return nil, err
	}

	iface := in.Params.ISCSIInterface
	if iface == "" {
		iface = "default" // what the API server would default it to
	}
	initiator := in.Params.InitiatorName
	src := &corev1.ISCSIPersistentVolumeSource{
		TargetPortal:   portal,
		Portals:        extra,
		IQN:            iqn,
		Lun:            int32(lun),
		ISCSIInterface: iface,
		FSType:         c.fsType,
		ReadOnly:       c.readOnly,
		InitiatorName:  &initiator,
	}
	res := &Result{Source: corev1.PersistentVolumeSource{ISCSI: src}, Warnings: warnings}

	secret, err := chapSecret(in, data)
	if err != nil {
		return nil, err
	}
	if secret != nil {
		_, src.SessionCHAPAuth = secret.Data[KeySessionUsername]
		_, src.DiscoveryCHAPAuth = secret.Data[KeyDiscoveryUsername]
		src.SecretRef = &corev1.SecretReference{Name: secret.Name, Namespace: secret.Namespace}
		res.Secrets = []*corev1.Secret{secret}
	}
	return res, nil
}

// iscsiExtraPortals returns the portals of target_portals, other than the
// primary, that reach the same IQN and LUN (see ISCSI), and warnings for the
// ones left out.
func iscsiExtraPortals(data map[string]any, portal, iqn string, lun int64) ([]string, []string, error) {
	portals, _, err := optStringList(TypeISCSI, data, "target_portals")
	if err != nil {
		return nil, nil, err
	}
	iqns, hasIQNs, err := optStringList(TypeISCSI, data, "target_iqns")
	if err != nil {
		return nil, nil, err
	}
	luns, hasLUNs, err := optIntList(TypeISCSI, data, "target_luns", 0, maxISCSILUN)
	if err != nil {
		return nil, nil, err
	}
	if hasIQNs && len(iqns) != len(portals) {
		return nil, nil, malformed(TypeISCSI, "target_iqns", "has %d entries but target_portals has %d", len(iqns), len(portals))
	}
	if hasLUNs && len(luns) != len(portals) {
		return nil, nil, malformed(TypeISCSI, "target_luns", "has %d entries but target_portals has %d", len(luns), len(portals))
	}
	var extra, warnings []string
	seen := map[string]bool{portal: true}
	for i, p := range portals {
		if p == "" || strings.ContainsAny(p, " \t\n,") {
			return nil, nil, malformed(TypeISCSI, fmt.Sprintf("target_portals[%d]", i), "%q is not a host:port address", p)
		}
		pIQN, pLUN := iqn, lun
		if hasIQNs {
			pIQN = iqns[i]
		}
		if hasLUNs {
			pLUN = luns[i]
		}
		if pIQN != iqn || pLUN != lun {
			warnings = append(warnings, fmt.Sprintf(
				"iscsi portal %s left out: it serves %s lun %d, and a Kubernetes iscsi volume has one target (%s lun %d) for all portals",
				p, pIQN, pLUN, iqn, lun))
			continue
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		extra = append(extra, p)
	}
	return extra, warnings, nil
}

// chapSecret returns the CHAP Secret the connection needs, or nil without
// CHAP. Credentials go into the Secret only, never into an error.
func chapSecret(in Input, data map[string]any) (*corev1.Secret, error) {
	secretData := map[string][]byte{}
	for _, a := range []struct{ method, user, pass, userKey, passKey string }{
		{"auth_method", "auth_username", "auth_password", KeySessionUsername, KeySessionPassword},
		{"discovery_auth_method", "discovery_auth_username", "discovery_auth_password", KeyDiscoveryUsername, KeyDiscoveryPassword},
	} {
		method, err := optString(TypeISCSI, data, a.method)
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(method) {
		case "", "NONE":
			continue
		case "CHAP":
		default:
			return nil, malformed(TypeISCSI, a.method, "%q is not supported (want CHAP or none)", method)
		}
		user, err := reqString(TypeISCSI, data, a.user)
		if err != nil {
			return nil, err
		}
		pass, err := reqString(TypeISCSI, data, a.pass)
		if err != nil {
			return nil, err
		}
		secretData[a.userKey] = []byte(user)
		secretData[a.passKey] = []byte(pass)
	}
	if len(secretData) == 0 {
		return nil, nil
	}
	if in.Params.SecretNamespace == "" {
		return nil, &ParameterError{Transport: TypeISCSI, Parameter: "chapSecretNamespace", Problem: "missing (the volume uses CHAP)"}
	}
	name := ChapSecretName(in.PVName)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("chap secret name %q for pv %s: %s", name, in.PVName, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(in.PVName); len(errs) > 0 {
		return nil, fmt.Errorf("label %s=%q for pv %s: %s", LabelPV, in.PVName, in.PVName, strings.Join(errs, "; "))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: in.Params.SecretNamespace,
			Labels:    map[string]string{LabelPV: in.PVName},
		},
		Type: SecretTypeISCSICHAP,
		Data: secretData,
	}, nil
}

// ChapSecretName is the name of the CHAP Secret the iSCSI mapper makes for
// a PV, so a claim's leftovers can be found before any PV exists.
func ChapSecretName(pvName string) string { return pvName + chapSecretSuffix }

// Recognizes implements Mapper.
func (*ISCSI) Recognizes(pv *corev1.PersistentVolume) bool {
	return pv.Spec.ISCSI != nil
}

// Secrets returns the CHAP Secret of an iSCSI PV when this provisioner
// created it: named <pv>-chap in the namespace secretRef names, or, for PVs
// of the original standalone-cinder provisioner, <pv>-secret in the claim's
// namespace. A secretRef to any other Secret is the admin's and is kept.
func (*ISCSI) Secrets(pv *corev1.PersistentVolume) []types.NamespacedName {
	if pv.Spec.ISCSI == nil || pv.Spec.ISCSI.SecretRef == nil {
		return nil
	}
	ref := pv.Spec.ISCSI.SecretRef
	ns := ref.Namespace
	switch ref.Name {
	case pv.Name + chapSecretSuffix:
	case pv.Name + legacyCHAPSecretSuffix:
		if ns == "" && pv.Spec.ClaimRef != nil {
			ns = pv.Spec.ClaimRef.Namespace
		}
	default:
		return nil
	}
	if ns == "" {
		return nil
	}
	return []types.NamespacedName{{Namespace: ns, Name: ref.Name}}
}
