package capacity

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const zoneKey = "topology.kubernetes.io/zone"

func class(name string, params map[string]string, allowed ...string) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "cinder.openstack.org", Parameters: params}
	if len(allowed) > 0 {
		sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: zoneKey, Values: allowed}}}}
	}
	return sc
}

// TestSegments: the node sets of a class, and the Cinder zone the
// provisioner would create a volume in for a pod put on each.
func TestSegments(t *testing.T) {
	type seg struct{ key, zone string }
	for _, tc := range []struct {
		name        string
		class       *storagev1.StorageClass
		cinderZones []string
		want        []seg // zone "*": any (Cinder's default)
	}{
		{name: "Cinder's zones", class: class("c", nil), cinderZones: []string{"zone-a", "zone-b"},
			want: []seg{{"zone=zone-a", "zone-a"}, {"zone=zone-b", "zone-b"}, {"no-zone-label", "*"}}},
		{name: "a Cinder zone that is no label value is unreachable through a node", class: class("c", nil), cinderZones: []string{"zone a", "nova"},
			want: []seg{{"zone=nova", "nova"}, {"no-zone-label", "*"}}},
		{name: "allowedTopologies", class: class("c", nil, "zone-b", "zone-x"), cinderZones: []string{"zone-a", "zone-b"},
			// zone-x is unknown to Cinder; unlabelled nodes get the first allowed zone
			want: []seg{{"zone=zone-b", "zone-b"}, {"no-zone-label", "zone-b"}}},
		{name: "allowedTopologies, first allowed unknown", class: class("c", nil, "zone-b", "zone-a"), cinderZones: []string{"zone-b"},
			want: []seg{{"zone=zone-b", "zone-b"}}},
		{name: "availability", class: class("c", map[string]string{"Availability": "zone_a"}), cinderZones: []string{"zone_a", "zone-b"},
			want: []seg{{"zone=zone_a", "zone_a"}, {"no-zone-label", "zone_a"}}},
		{name: "availability and allowedTopologies", class: class("c", map[string]string{"availability": "zone-a"}, "zone-a", "zone-b"), cinderZones: []string{"zone-a", "zone-b"},
			want: []seg{{"zone=zone-a", "zone-a"}, {"no-zone-label", "zone-a"}}},
		{name: "availability outside allowedTopologies: every claim refused", class: class("c", map[string]string{"availability": "zone-c"}, "zone-a"),
			cinderZones: []string{"zone-a", "zone-c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []seg
			for _, s := range specOf(tc.class, zoneKey).segments(zoneKey, tc.cinderZones) {
				zone := s.cinderZone
				if s.anyZone {
					zone = "*"
				}
				got = append(got, seg{s.key, zone})
				if s.selector == nil || len(s.selector.MatchExpressions) != 1 || s.selector.MatchExpressions[0].Key != zoneKey {
					t.Errorf("%s: selector %v", s.key, s.selector)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
