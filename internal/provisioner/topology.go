package provisioner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// DefaultZoneKey is the node label that names a node's availability zone.
const DefaultZoneKey = corev1.LabelTopologyZone

// nodeGoneError is a selected node that no longer exists: the claim goes
// back to the scheduler (ProvisioningReschedule).
type nodeGoneError struct{ node string }

func (e *nodeGoneError) Error() string {
	return fmt.Sprintf("the selected node %s does not exist any more: the scheduler picks another", e.node)
}

// zoneError is a zone choice the provisioner cannot make: the class, its
// allowedTopologies, the selected node and the data source disagree.
type zoneError struct{ msg string }

func (e *zoneError) Error() string { return e.msg }

// selectedNode reads the node the scheduler chose (WaitForFirstConsumer);
// nil when there is none.
func (p *Provisioner) selectedNode(ctx context.Context, opts controller.ProvisionOptions) (*corev1.Node, error) {
	if opts.SelectedNodeName == "" {
		return nil, nil
	}
	node, err := p.kube.CoreV1().Nodes().Get(ctx, opts.SelectedNodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &nodeGoneError{node: opts.SelectedNodeName}
	case err != nil:
		return nil, fmt.Errorf("get selected node %s: %w", opts.SelectedNodeName, err)
	}
	return node, nil
}

// allowedZones are the values of the zone key in the class's
// allowedTopologies, sorted.
func (p *Provisioner) allowedZones(opts controller.ProvisionOptions) []string {
	var zones []string
	for _, term := range opts.StorageClass.AllowedTopologies {
		for _, e := range term.MatchLabelExpressions {
			if e.Key == p.zoneKey {
				zones = append(zones, e.Values...)
			}
		}
	}
	slices.Sort(zones)
	return slices.Compact(zones)
}

// zoneFor chooses the Cinder availability zone of the claim's volume: the
// class's availability parameter; else the selected node's zone label;
// else the first of the class's allowedTopologies zones; else none (Cinder
// chooses, or uses the data source's). pin says whether the PV gets
// nodeAffinity: when the cluster's topology (allowedTopologies or a node's
// zone label) takes part, never for a class that only names a zone.
func (p *Provisioner) zoneFor(opts controller.ProvisionOptions, params *Parameters, node *corev1.Node, src *source) (zone string, pin bool, err error) {
	allowed := p.allowedZones(opts)
	nodeZone := ""
	if node != nil {
		nodeZone = node.Labels[p.zoneKey]
	}
	pin = len(allowed) > 0 || nodeZone != ""
	switch {
	case params.Availability != "":
		zone = params.Availability
		if nodeZone != "" && sanitizeZone(zone) != nodeZone {
			return "", false, &zoneError{fmt.Sprintf("the selected node %s is in zone %q (label %s), the StorageClass's availability is %q: a volume there could not be used on that node; remove availability from the class or label the nodes by Cinder zone", node.Name, nodeZone, p.zoneKey, zone)}
		}
	case nodeZone != "":
		zone = nodeZone
	case len(allowed) > 0:
		zone = allowed[0]
	}
	if zone != "" && len(allowed) > 0 && !slices.Contains(allowed, zone) && !slices.Contains(allowed, sanitizeZone(zone)) {
		return "", false, &zoneError{fmt.Sprintf("zone %q is not among the StorageClass's allowedTopologies %s=%v", zone, p.zoneKey, allowed)}
	}
	if src != nil && src.zone != "" {
		if zone != "" && zone != src.zone && sanitizeZone(zone) != sanitizeZone(src.zone) {
			return "", false, &zoneError{fmt.Sprintf("the data source, %s, is in Cinder zone %q and this claim's volume would be in %q: Cinder clones and restores within the source's zone", src, src.zone, zone)}
		}
		// let Cinder take the source's zone (its own name, not a label's)
		zone = ""
	}
	return zone, pin, nil
}

// pinZone pins the PV to the zone Cinder actually put the volume in (it may
// differ from the one asked for: allow_availability_zone_fallback), as
// spec.nodeAffinity on the zone key, when the cluster's topology took part.
func (p *Provisioner) pinZone(ctx context.Context, opts controller.ProvisionOptions, req *request, vol *cinder.Volume, pv *corev1.PersistentVolume) {
	if req.zone != "" && vol.AvailabilityZone != req.zone && sanitizeZone(vol.AvailabilityZone) != sanitizeZone(req.zone) && p.recorder != nil {
		p.recorder.Event(opts.PVC, corev1.EventTypeNormal, ReasonZoneFallback,
			fmt.Sprintf("Cinder put volume %s in availability zone %q, not %q as asked (allow_availability_zone_fallback); the PV is pinned to %q", vol.ID, vol.AvailabilityZone, req.zone, vol.AvailabilityZone))
	}
	if !req.pinZone {
		return
	}
	value := sanitizeZone(vol.AvailabilityZone)
	if value == "" {
		klog.FromContext(ctx).Info("Volume's availability zone is no label value; the PV is not pinned", "volumeID", vol.ID, "zone", vol.AvailabilityZone)
		return
	}
	pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
			Key: p.zoneKey, Operator: corev1.NodeSelectorOpIn, Values: []string{value},
		}}}},
	}}
}

// sanitizeZone turns a Cinder zone name into a label value (at most 63
// characters of [A-Za-z0-9._-], starting and ending alphanumeric): every
// other character becomes "-", as admins label nodes with the zone's name.
// "" when nothing of it is left.
func sanitizeZone(zone string) string {
	b := []byte(zone)
	for i, c := range b {
		if !labelChar(c) {
			b[i] = '-'
		}
	}
	s := string(b)
	if len(s) > validation.LabelValueMaxLength {
		s = s[:validation.LabelValueMaxLength]
	}
	s = strings.TrimFunc(s, func(r rune) bool { return r == '-' || r == '.' || r == '_' })
	if len(validation.IsValidLabelValue(s)) > 0 {
		return ""
	}
	return s
}

func labelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ZoneLabel is the node label value that stands for a Cinder availability
// zone (see sanitizeZone); "" when the zone cannot be one.
func ZoneLabel(zone string) string { return sanitizeZone(zone) }
