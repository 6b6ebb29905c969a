package provisioner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

func TestSweepRemovesOnlyVolumesOfDeletedClaims(t *testing.T) {
	const otherUID = "6a1d2c3e-0000-4000-8000-0000000000ff"
	tests := []struct {
		name      string
		policy    string
		claim     string // "" no claim; else its UID
		pv        bool
		cluster   string
		exported  bool
		wantGone  bool
		wantCalls bool // Cinder calls beyond the list
	}{
		{name: "claim deleted, policy Delete, no PV", policy: "Delete", wantGone: true, wantCalls: true},
		{name: "claim deleted, still exported", policy: "Delete", exported: true, wantGone: true, wantCalls: true},
		{name: "claim made anew under the same name", policy: "Delete", claim: otherUID, wantGone: true, wantCalls: true},
		{name: "claim still there: the library's", policy: "Delete", claim: testClaimUID},
		{name: "a PV holds it", policy: "Delete", pv: true},
		{name: "Retain: kept on purpose", policy: "Retain"},
		{name: "policy unknown: kept", policy: ""},
		{name: "another cluster's", policy: "Delete", cluster: "cluster-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cluster := testClusterID
			if tc.cluster != "" {
				cluster = tc.cluster
			}
			md := map[string]string{MetaClusterID: cluster, MetaProvisioner: DefaultName, MetaPVName: testPVName, MetaPVCNamespace: "app", MetaPVCName: "data"}
			if tc.policy != "" {
				md[MetaReclaimPolicy] = tc.policy
			}
			id := e.cinder.AddVolume(cinder.Volume{Name: testPVName, SizeGiB: 1, Metadata: md})
			if tc.exported {
				if _, err := e.cinder.Export(e.ctx, id, cinder.Connector{Initiator: testIQN, Host: testHost}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.claim != "" {
				c := newClaim(claimSpec{})
				c.UID = types.UID(tc.claim)
				e.ensureClaim(c)
			}
			if tc.pv {
				e.save(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: testPVName, Annotations: map[string]string{AnnVolumeID: id}}})
			}
			e.cinder.ResetCalls()
			n, err := e.p.Sweep(e.ctx)
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			_, exists := e.cinder.Volume(id)
			if exists == tc.wantGone || (n == 1) != tc.wantGone {
				t.Errorf("volume exists %v, removed %d; want gone %v", exists, n, tc.wantGone)
			}
			if ops := e.ops(); (len(ops) > 1) != tc.wantCalls || ops[0] != fake.OpListVolumes {
				t.Errorf("Cinder calls = %q, want the list and calls beyond it: %v", ops, tc.wantCalls)
			}
		})
	}
}
