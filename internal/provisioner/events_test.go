package provisioner

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

func TestProvisionReportsPathsLeftOutOfThePV(t *testing.T) {
	e := newEnv(t)
	// a second portal serving another IQN cannot go into one iSCSI source
	e.cinder.SetConnection("multi", cinder.Connection{DriverVolumeType: "iscsi", Data: map[string]any{
		"target_portal":  "192.0.2.1:3260",
		"target_iqn":     "iqn.2010-10.org.openstack:volume-" + fake.VolumeIDPlaceholder,
		"target_lun":     json.Number("1"),
		"target_portals": []any{"192.0.2.1:3260", "192.0.2.2:3260"},
		"target_iqns":    []any{"iqn.2010-10.org.openstack:volume-" + fake.VolumeIDPlaceholder, "iqn.2010-10.org.openstack:other"},
		"target_luns":    []any{json.Number("1"), json.Number("1")},
		"volume_id":      fake.VolumeIDPlaceholder,
	}})
	pv, state, err := e.provision(options(newClaim(claimSpec{}), newClass(map[string]string{"type": "multi"})))
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision: %v (%s)", err, state)
	}
	if len(pv.Spec.ISCSI.Portals) != 0 {
		t.Errorf("portals %q: the other IQN's portal must be left out", pv.Spec.ISCSI.Portals)
	}
	evs := e.drainEvents()
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+ReasonPartialConnectionInfo+" ") || !strings.Contains(evs[0], "192.0.2.2:3260") {
		t.Errorf("events = %q, want one %s naming the portal left out", evs, ReasonPartialConnectionInfo)
	}
}

func TestProvisionRefusesAMalformedNodeAnnotationBeforeCreating(t *testing.T) {
	e := newEnv(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{
		mapper.AnnotationFCWWPNs: "not-a-wwn",
	}}}
	if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := options(newClaim(claimSpec{}), newClass(map[string]string{"type": "fc"}))
	opts.SelectedNodeName = "node-1"
	_, state, err := e.provision(opts)
	if err == nil || !strings.HasPrefix(err.Error(), "node node-1: ") || !strings.Contains(err.Error(), "set fcWWPNs in the StorageClass") {
		t.Fatalf("error = %v, want one naming node-1 and what to do", err)
	}
	if state != controller.ProvisioningFinished {
		t.Errorf("state = %s, want Finished", state)
	}
	// only the lookup for an earlier attempt's volume, which a refusal removes
	if ops := e.cinder.Ops(); !slices.Equal(ops, []string{fake.OpFindVolumeByName}) {
		t.Errorf("Cinder calls %q, want only %s", ops, fake.OpFindVolumeByName)
	}
	evs := e.drainEvents()
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+ReasonInvalidNodeAnnotation+" ") {
		t.Errorf("events = %q, want one %s", evs, ReasonInvalidNodeAnnotation)
	}
}

// docs/parameters.md must list exactly the keys the code knows.
func TestParametersDocListsEveryKnownKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/parameters.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	if known := documentedParams(); !slices.Equal(documented, known) {
		t.Errorf("docs/parameters.md documents %q, the code knows %q", documented, known)
	}
}
