package capacity

import (
	"slices"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
)

// StorageClass parameter keys the segments depend on, matched
// case-insensitively as the provisioner does (docs/parameters.md).
const (
	paramType         = "type"
	paramAvailability = "availability"
)

// Segment keys (the value of AnnotationSegment).
const (
	segmentZonePrefix  = "zone="         // nodes whose zone label has the value after "="
	segmentNoZoneLabel = "no-zone-label" // nodes without the zone label
)

// segment is a set of nodes, as a node label selector, and the Cinder zone
// the provisioner creates a volume in for a claim whose pod is put on one
// of them (zoneFor in internal/provisioner/topology.go).
type segment struct {
	key      string
	selector *metav1.LabelSelector
	// cinderZone is the Cinder availability zone the volume goes to; ""
	// with anyZone: none asked, Cinder's default zone.
	cinderZone string
	anyZone    bool
}

// classSpec is what of a StorageClass decides its capacity.
type classSpec struct {
	name         string
	volumeType   string // "": Cinder's default type
	availability string
	allowed      []string // label values of the zone key in allowedTopologies
}

func specOf(sc *storagev1.StorageClass, zoneKey string) classSpec {
	c := classSpec{name: sc.Name}
	for k, v := range sc.Parameters {
		switch strings.ToLower(k) {
		case paramType:
			c.volumeType = v
		case paramAvailability:
			c.availability = v
		}
	}
	for _, term := range sc.AllowedTopologies {
		for _, e := range term.MatchLabelExpressions {
			if e.Key == zoneKey {
				c.allowed = append(c.allowed, e.Values...)
			}
		}
	}
	slices.Sort(c.allowed)
	c.allowed = slices.Compact(c.allowed)
	return c
}

// segments are the node sets of a class and, for each, the Cinder zone its
// volumes would be created in, following the provisioner's zone choice:
// the class's availability parameter; else the selected node's zone label;
// else the first allowedTopologies zone; else none (Cinder's default).
// Nodes labelled with a zone the provisioner would refuse (not the class's
// availability, not in its allowedTopologies) or Cinder does not know get
// no segment: no capacity is published for them, and kube-scheduler puts
// no pod with a WaitForFirstConsumer claim of the class there.
func (c classSpec) segments(zoneKey string, cinderZones []string) []segment {
	// label value -> Cinder zone: the provisioner asks Cinder for the zone
	// named exactly like the node's label value, so only zones whose name
	// is a label value can be reached through a node
	byLabel := map[string]string{}
	for _, z := range cinderZones {
		if provisioner.ZoneLabel(z) == z {
			byLabel[z] = z
		}
	}
	if c.availability != "" && len(c.allowed) > 0 &&
		!slices.Contains(c.allowed, c.availability) && !slices.Contains(c.allowed, provisioner.ZoneLabel(c.availability)) {
		return nil // the provisioner refuses every claim of the class
	}
	values := c.allowed
	switch {
	case len(values) > 0:
	case c.availability != "":
		values = []string{provisioner.ZoneLabel(c.availability)}
	default:
		for v := range byLabel {
			values = append(values, v)
		}
		slices.Sort(values)
	}
	var out []segment
	for _, v := range values {
		zone := c.availability
		if zone == "" {
			zone = byLabel[v]
		} else if provisioner.ZoneLabel(zone) != v {
			continue // the provisioner refuses a node of another zone
		}
		if zone == "" || v == "" {
			continue // a zone Cinder does not know
		}
		out = append(out, segment{
			key: segmentZonePrefix + v,
			selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: zoneKey, Operator: metav1.LabelSelectorOpIn, Values: []string{v},
			}}},
			cinderZone: zone,
		})
	}
	// nodes without the zone label
	unlabelled := segment{
		key: segmentNoZoneLabel,
		selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: zoneKey, Operator: metav1.LabelSelectorOpDoesNotExist,
		}}},
	}
	switch {
	case c.availability != "":
		unlabelled.cinderZone = c.availability
	case len(c.allowed) > 0:
		unlabelled.cinderZone = byLabel[c.allowed[0]]
		if unlabelled.cinderZone == "" {
			return out
		}
	default:
		unlabelled.anyZone = true
	}
	return append(out, unlabelled)
}
