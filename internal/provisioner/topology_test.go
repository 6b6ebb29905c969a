package provisioner

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

func zoneTopology(zones ...string) []corev1.TopologySelectorTerm {
	return []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: DefaultZoneKey, Values: zones}}}}
}

func pinnedZone(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 {
		return "?"
	}
	e := terms[0].MatchExpressions[0]
	if e.Key != DefaultZoneKey || e.Operator != corev1.NodeSelectorOpIn || len(e.Values) != 1 {
		return "?"
	}
	return e.Values[0]
}

func TestTopologyZoneChoice(t *testing.T) {
	tests := []struct {
		name      string
		params    map[string]string
		allowed   []string
		nodeZone  string // "": no selected node; "-": a node without the label
		fallback  bool
		wantAsk   string
		wantPin   string
		wantEvent string
	}{
		{"nothing: Cinder chooses, no pin", nil, nil, "", false, "", "", ""},
		{"class availability only: no pin", map[string]string{"availability": "zone-b"}, nil, "", false, "zone-b", "", ""},
		{"selected node's label", nil, nil, "zone-b", false, "zone-b", "zone-b", ""},
		{"node without the label: Cinder chooses", nil, nil, "-", false, "", "", ""},
		{"allowedTopologies, first zone", nil, []string{"zone-c", "zone-b"}, "", false, "zone-b", "zone-b", ""},
		{"node's zone among allowedTopologies", nil, []string{"zone-b", "zone-c"}, "zone-c", false, "zone-c", "zone-c", ""},
		{"class availability and matching node", map[string]string{"availability": "zone-b"}, nil, "zone-b", false, "zone-b", "zone-b", ""},
		{"fallback: pinned to the zone Cinder used", nil, []string{"zone-x"}, "", true, "zone-x", "nova", "Normal " + ReasonZoneFallback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cinder.SetZones(tc.fallback, "nova", "zone-b", "zone-c")
			class := newClass(tc.params)
			class.AllowedTopologies = nil
			if tc.allowed != nil {
				class.AllowedTopologies = zoneTopology(tc.allowed...)
			}
			opts := options(newClaim(claimSpec{}), class)
			if tc.nodeZone != "" {
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
				if tc.nodeZone != "-" {
					node.Labels = map[string]string{DefaultZoneKey: tc.nodeZone}
				}
				if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				opts.SelectedNodeName = "node-1"
			}
			pv, _, err := e.provision(opts)
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if z := e.calls(fake.OpCreateVolume)[0].Request.AvailabilityZone; z != tc.wantAsk {
				t.Errorf("asked for zone %q, want %q", z, tc.wantAsk)
			}
			if z := pinnedZone(pv); z != tc.wantPin {
				t.Errorf("PV pinned to %q (%v), want %q", z, pv.Spec.NodeAffinity, tc.wantPin)
			}
			evs := e.drainEvents()
			if tc.wantEvent == "" && len(evs) != 0 || tc.wantEvent != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tc.wantEvent)) {
				t.Errorf("events = %q, want %q", evs, tc.wantEvent)
			}
		})
	}
}

func TestTopologyRefusals(t *testing.T) {
	tests := []struct {
		name     string
		params   map[string]string
		allowed  []string
		nodeZone string
		reason   string
		want     string
	}{
		{"zone Cinder does not know", map[string]string{"availability": "atlantis"}, nil, "", ReasonInvalidZone, "Availability zone 'atlantis' is invalid."},
		{"node label Cinder does not know", nil, nil, "atlantis", ReasonInvalidZone, "Availability zone 'atlantis' is invalid."},
		{"node not in allowedTopologies", nil, []string{"zone-b"}, "zone-c", ReasonInvalidZone, "not among the StorageClass's allowedTopologies"},
		{"class availability and another node zone", map[string]string{"availability": "zone-b"}, nil, "zone-c", ReasonInvalidZone, `is in zone "zone-c"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cinder.SetZones(false, "nova", "zone-b", "zone-c")
			class := newClass(tc.params)
			if tc.allowed != nil {
				class.AllowedTopologies = zoneTopology(tc.allowed...)
			}
			opts := options(newClaim(claimSpec{}), class)
			if tc.nodeZone != "" {
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{DefaultZoneKey: tc.nodeZone}}}
				if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				opts.SelectedNodeName = "node-1"
			}
			_, state, err := e.provision(opts)
			if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision = %v, %v; want a refusal saying %q", state, err, tc.want)
			}
			if msg := e.oneWarning(tc.reason); !strings.Contains(msg, tc.want) {
				t.Errorf("event %q does not say %q", msg, tc.want)
			}
			if vols := e.cinder.Volumes(); len(vols) != 0 {
				t.Errorf("Cinder has %+v, want nothing", vols)
			}
		})
	}
}

func TestTopologySelectedNodeGone(t *testing.T) {
	e := newEnv(t)
	opts := options(newClaim(claimSpec{}), newClass(nil))
	opts.SelectedNodeName = "node-gone"
	_, state, err := e.provision(opts)
	var nge *nodeGoneError
	if state != controller.ProvisioningReschedule || !errors.As(err, &nge) {
		t.Fatalf("Provision = %v, %v; want Reschedule", state, err)
	}
	e.oneWarning(ReasonSelectedNodeGone)
	if ops := e.ops(); len(ops) != 1 || ops[0] != fake.OpFindVolumeByName {
		t.Errorf("Cinder calls %v, want only the lookup of a volume an earlier attempt made", ops)
	}
}

// A reused volume in another zone than the class asks for is a mismatch,
// and a clone of a source in zone-b lets Cinder take the source's zone.
func TestTopologyCloneTakesSourceZone(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetZones(false, "nova", "zone-b")
	e.addSource(sourceSpec{zone: "zone-b"})
	class := newClass(nil)
	class.AllowedTopologies = zoneTopology("zone-b")
	pv, _, err := e.provision(options(cloneClaim("1Gi"), class))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if z := e.calls(fake.OpCreateVolume)[0].Request.AvailabilityZone; z != "" {
		t.Errorf("asked for zone %q, want none (Cinder takes the source's)", z)
	}
	if z := pinnedZone(pv); z != "zone-b" {
		t.Errorf("pinned to %q, want zone-b", z)
	}
}

func TestSanitizeZone(t *testing.T) {
	for in, want := range map[string]string{
		"nova":                  "nova",
		"eu-west-1a":            "eu-west-1a",
		"az:rack 1":             "az-rack-1",
		"-edge-":                "edge",
		"":                      "",
		"::":                    "",
		strings.Repeat("z", 70): strings.Repeat("z", 63),
	} {
		if got := sanitizeZone(in); got != want {
			t.Errorf("sanitizeZone(%q) = %q, want %q", in, got, want)
		}
	}
}
