package provisioner

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// The sweep deletes only on proof: ours, policy Delete, no claim of its
// UID, no PV referring to it in any field, no export, and older than the
// grace period by Cinder's clock. Every other volume stays.
func TestSweepDeletesOnlyProvenUnreferencedVolumes(t *testing.T) {
	const otherUID = "6a1d2c3e-0000-4000-8000-0000000000ff"
	old := 2 * DefaultSweepGrace
	tests := []struct {
		name     string
		policy   string
		age      time.Duration // by Cinder's clock
		claim    string        // "": none; else its UID
		pv       string        // "": none; "same": the PV of its name; "static": an admin's PV of another name naming its IQN
		cluster  string
		status   string
		exported bool
		want     verdict
	}{
		{name: "proven: ours, Delete, no claim, no PV, no export, old", policy: "Delete", age: old, want: sweepDelete},
		{name: "claim made anew under the same name (another UID)", policy: "Delete", age: old, claim: otherUID, want: sweepDelete},
		{name: "younger than the grace period by Cinder's clock", policy: "Delete", age: DefaultSweepGrace / 2, want: keepYoung},
		{name: "its claim exists: its attempt, finalizer or PV owns it", policy: "Delete", age: old, claim: testClaimUID, want: keepClaim},
		{name: "the PV of its name holds it", policy: "Delete", age: old, pv: "same", want: keepReferenced},
		{name: "an admin's static PV of another name refers to it (kept disk, re-created PV)", policy: "Delete", age: old, pv: "static", want: keepReferenced},
		{name: "exported, no PV: a host may use it", policy: "Delete", age: old, exported: true, want: keepStatus},
		{name: "Retain (the class's, or an admin's mirrored from the PV)", policy: "Retain", age: old, want: keepPolicy},
		{name: "policy unknown", age: old, want: keepPolicy},
		{name: "in use", policy: "Delete", age: old, status: cinder.StatusInUse, want: keepStatus},
		{name: "another cluster's: never listed", policy: "Delete", age: old, cluster: "cluster-b", want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cluster := testClusterID
			if tc.cluster != "" {
				cluster = tc.cluster
			}
			md := map[string]string{contract.MetaClusterID: cluster, contract.MetaProvisioner: DefaultName, contract.MetaPVName: testPVName, contract.MetaPVCNamespace: "app", contract.MetaPVCName: "data"}
			if tc.policy != "" {
				md[contract.MetaReclaimPolicy] = tc.policy
			}
			id := e.cinder.AddVolume(cinder.Volume{Name: testPVName, SizeGiB: 1, Status: tc.status, Metadata: md})
			e.cinder.Advance(tc.age)
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
			switch tc.pv {
			case "same":
				e.save(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: testPVName, Annotations: map[string]string{contract.AnnVolumeID: id}}})
			case "static":
				e.save(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "kept-disk"}, Spec: corev1.PersistentVolumeSpec{
					PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
						TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + id, Lun: 1}}}})
			}
			e.cinder.ResetCalls()
			n, err := e.p.Sweep(e.ctx)
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			_, exists := e.cinder.Volume(id)
			if gone := tc.want == sweepDelete; exists == gone || (n == 1) != gone {
				t.Errorf("volume exists %v, deleted %d; want %v", exists, n, tc.want)
			}
			ops := e.ops()
			if ops[0] != fake.OpListVolumes {
				t.Errorf("first Cinder call %q, want the list", ops[0])
			}
			// exports are looked up only for a volume that passed every other check
			if looked := slices.Contains(ops, fake.OpListExports); looked != (tc.want == sweepDelete) {
				t.Errorf("Cinder calls %q: exports looked up %v", ops, looked)
			}
			if tc.want != sweepDelete && slices.Contains(ops, fake.OpDeleteVolume) {
				t.Errorf("Cinder calls %q: a kept volume was sent DELETE", ops)
			}
		})
	}
}

// A skewed provisioner clock cannot make a volume old: only Cinder's says.
func TestSweepAgeIsCinderClockNotOurs(t *testing.T) {
	e := newEnv(t)
	md := map[string]string{contract.MetaClusterID: testClusterID, contract.MetaProvisioner: DefaultName, contract.MetaPVName: testPVName, contract.MetaReclaimPolicy: "Delete"}
	// made "long ago" by a clock far behind Cinder's: its created_at is
	// Cinder's own, a minute before Cinder's now
	id := e.cinder.AddVolume(cinder.Volume{Name: testPVName, SizeGiB: 1, Metadata: md})
	e.cinder.Advance(time.Minute)
	if n, err := e.p.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing deleted", n, err)
	}
	if _, ok := e.cinder.Volume(id); !ok {
		t.Fatal("a volume a minute old by Cinder's clock was deleted")
	}
}
