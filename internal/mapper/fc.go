package mapper

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TypeFC is the driver_volume_type of Fibre Channel exports.
const TypeFC = "fibre_channel"

const maxFCLUN = 255 // Kubernetes validates lun in [0, 255]

// FC maps fibre_channel connection info to an FCVolumeSource.
//
// Targets are read as os-brick reads them: target_wwns if non-empty, else
// target_wwn (a string or a list); LUNs from target_luns if non-empty, else
// target_lun. A LUN list as long as the WWN list pairs them; a single LUN
// applies to every WWN. Kubernetes' fc source has one lun for all WWNs, so
// only WWNs whose LUN equals target_lun (or the first LUN) are kept, the
// others reported in Result.Warnings, as for iSCSI portals. A missing LUN is
// an error rather than os-brick's default 0: a guessed LUN can mount another
// volume.
type FC struct{}

var _ Mapper = (*FC)(nil)

// NewFC returns the Fibre Channel mapper.
func NewFC() *FC { return &FC{} }

// Type implements Mapper.
func (*FC) Type() string { return TypeFC }

// Validate implements Mapper. FC needs no parameters beyond the common ones:
// the connector's WWPNs are the provisioner's (see ParseWWNs, NodeWWNs).
func (*FC) Validate(Params) error { return nil }

// Map implements Mapper.
func (m *FC) Map(in Input) (*Result, error) {
	if err := m.Validate(in.Params); err != nil {
		return nil, err
	}
	c, err := checkCommon(TypeFC, in)
	if err != nil {
		return nil, err
	}
	data := in.Connection.Data

	wwnField, wwns, err := fcTargetWWNs(data)
	if err != nil {
		return nil, err
	}
	lunField := "target_luns"
	luns, _, err := optIntList(TypeFC, data, lunField, 0, maxFCLUN)
	if err != nil {
		return nil, err
	}
	var primary int64
	raw, hasLUN := lookup(data, "target_lun")
	if hasLUN {
		if primary, err = intValue(TypeFC, "target_lun", raw, 0, maxFCLUN); err != nil {
			return nil, err
		}
	}
	switch {
	case len(luns) > 0:
		if !hasLUN {
			primary = luns[0]
		}
	case hasLUN:
		lunField, luns = "target_lun", []int64{primary}
	default:
		return nil, missing(TypeFC, "target_lun")
	}
	if len(luns) != 1 && len(luns) != len(wwns) {
		return nil, malformed(TypeFC, lunField, "has %d entries but %s has %d", len(luns), wwnField, len(wwns))
	}

	var keep, warnings []string
	seen := map[string]bool{}
	for i, w := range wwns {
		lun := luns[0]
		if len(luns) > 1 {
			lun = luns[i]
		}
		if lun != primary {
			warnings = append(warnings, fmt.Sprintf(
				"fibre channel target %s left out: it serves lun %d, and a Kubernetes fc volume has one lun (%d) for all targets",
				w, lun, primary))
			continue
		}
		if !seen[w] {
			seen[w] = true
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		return nil, malformed(TypeFC, lunField, "has no entry equal to target_lun %d", primary)
	}
	lun := int32(primary)
	return &Result{
		Source: corev1.PersistentVolumeSource{FC: &corev1.FCVolumeSource{
			TargetWWNs: keep,
			Lun:        &lun,
			FSType:     c.fsType,
			ReadOnly:   c.readOnly,
		}},
		Warnings: warnings,
	}, nil
}

// fcTargetWWNs returns the normalised target WWNs and the field they came from.
func fcTargetWWNs(data map[string]any) (string, []string, error) {
	field := "target_wwns"
	raw, err := optList(TypeFC, data, field)
	if err != nil {
		return "", nil, err
	}
	single := false // target_wwn given as one string
	if len(raw) == 0 {
		emptyWWNs := raw != nil
		field = "target_wwn"
		v, ok := lookup(data, field)
		switch s, isString := v.(string); {
		case !ok && emptyWWNs:
			return "", nil, malformed(TypeFC, "target_wwns", "is an empty list")
		case !ok:
			return "", nil, missing(TypeFC, field)
		case isString:
			raw, single = []any{s}, true
		default:
			if raw, err = optList(TypeFC, data, field); err != nil {
				return "", nil, malformed(TypeFC, field, "must be a string or a list, got %s", jsonType(v))
			}
		}
	}
	if len(raw) == 0 {
		return "", nil, malformed(TypeFC, field, "is an empty list")
	}
	wwns := make([]string, len(raw))
	for i, v := range raw {
		name := field
		if !single {
			name = fmt.Sprintf("%s[%d]", field, i)
		}
		s, ok := v.(string)
		if !ok {
			return "", nil, malformed(TypeFC, name, "must be a string, got %s", jsonType(v))
		}
		w, err := NormalizeWWN(s)
		if err != nil {
			return "", nil, malformed(TypeFC, name, "%q is not a WWN (16 hex digits, colons allowed)", s)
		}
		wwns[i] = w
	}
	return field, wwns, nil
}

// Recognizes implements Mapper.
func (*FC) Recognizes(pv *corev1.PersistentVolume) bool { return pv.Spec.FC != nil }

// Secrets returns nothing: Fibre Channel has no credentials.
func (*FC) Secrets(*corev1.PersistentVolume) []types.NamespacedName { return nil }

// Node annotations an administrator (or a node agent) sets to give a node's
// Fibre Channel port and node names, comma-separated. When a claim's selected
// node is known, the provisioner sends these in the connector.
const (
	AnnotationFCWWPNs = "cinder.openstack.org/fc-wwpns"
	AnnotationFCWWNNs = "cinder.openstack.org/fc-wwnns"
)

// NormalizeWWN returns w as os-brick and the kubelet write it: 16 lower-case
// hex digits without colons ("50:0A:09:81:8D:3B:5F:6C" -> "500a09818d3b5f6c").
// A "0x" prefix is accepted.
func NormalizeWWN(w string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(w))
	s = strings.TrimPrefix(s, "0x")
	s = strings.ReplaceAll(s, ":", "")
	if len(s) != 16 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", fmt.Errorf("invalid WWN %q: want 16 hex digits, optionally colon-separated", w)
	}
	return s, nil
}

// ParseWWNs parses a comma- or space-separated list of WWNs (the fcWWPNs
// setting and StorageClass parameter, or a node annotation) into normalised,
// de-duplicated WWNs. An empty list gives nil.
func ParseWWNs(list string) ([]string, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	var out []string
	seen := map[string]bool{}
	for _, f := range fields {
		w, err := NormalizeWWN(f)
		if err != nil {
			return nil, err
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out, nil
}

// NodeWWNs reads a node's WWPNs and WWNNs from AnnotationFCWWPNs and
// AnnotationFCWWNNs. Missing annotations give nil lists.
func NodeWWNs(node *corev1.Node) (wwpns, wwnns []string, err error) {
	wwpns, err = ParseWWNs(node.Annotations[AnnotationFCWWPNs])
	if err != nil {
		return nil, nil, fmt.Errorf("node %s annotation %s: %w", node.Name, AnnotationFCWWPNs, err)
	}
	wwnns, err = ParseWWNs(node.Annotations[AnnotationFCWWNNs])
	if err != nil {
		return nil, nil, fmt.Errorf("node %s annotation %s: %w", node.Name, AnnotationFCWWNNs, err)
	}
	return wwpns, wwnns, nil
}
