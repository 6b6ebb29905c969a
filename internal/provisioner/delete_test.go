package provisioner

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// provisioned provisions the test claim with params, saves the PV as the
// library would (a saved PV has a UID), and forgets the calls that took.
func provisioned(t *testing.T, e *env, params map[string]string) *corev1.PersistentVolume {
	t.Helper()
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(params)))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	e.cinder.ResetCalls()
	return e.save(pv)
}

// save stores a PV in the API server, as the library's volume store does,
// and returns it as stored (with a UID).
func (e *env) save(pv *corev1.PersistentVolume) *corev1.PersistentVolume {
	e.t.Helper()
	pv = pv.DeepCopy()
	pv.UID = types.UID("uid-" + pv.Name)
	out, err := e.kube.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("save PV: %v", err)
	}
	return out
}

// edit changes the live PV in the API server, as an admin would.
func (e *env) edit(pv *corev1.PersistentVolume) *corev1.PersistentVolume {
	e.t.Helper()
	out, err := e.kube.CoreV1().PersistentVolumes().Update(e.ctx, pv, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("update PV: %v", err)
	}
	return out
}

func (e *env) secretExists(namespace, name string) bool {
	e.t.Helper()
	_, err := e.kube.CoreV1().Secrets(namespace).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	return err == nil
}

func TestDeleteRemovesSecretExportAndVolume(t *testing.T) {
	const classIQN = "iqn.2026-01.org.example:class-initiator"
	e := newEnv(t)
	pv := provisioned(t, e, map[string]string{"initiatorName": classIQN})
	volumeID, exportID := pv.Annotations[contract.AnnVolumeID], pv.Annotations[contract.AnnExportID]
	secret := pv.Spec.ISCSI.SecretRef
	if !e.secretExists(secret.Namespace, secret.Name) {
		t.Fatal("no CHAP Secret after Provision")
	}

	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// the volume is read first: it must be the PV's; it has no snapshots;
	// in-use when read and unexported, it is deleted without a second read
	want := []string{fake.OpGetVolume, fake.OpUnexport, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}
	if got := e.ops(); !slices.Equal(got, want) {
		t.Errorf("Cinder calls = %q, want %q", got, want)
	}
	un := e.calls(fake.OpUnexport)[0]
	if un.VolumeID != volumeID || un.ExportID != exportID {
		t.Errorf("unexported %s %s, want %s %s", un.VolumeID, un.ExportID, volumeID, exportID)
	}
	if un.Connector.Initiator != classIQN || un.Connector.Host != testHost {
		t.Errorf("unexport connector = %+v, want the recorded one (initiator %s)", un.Connector, classIQN)
	}
	if _, ok := e.cinder.Volume(volumeID); ok {
		t.Errorf("volume %s still exists", volumeID)
	}
	if e.secretExists(secret.Namespace, secret.Name) {
		t.Errorf("CHAP Secret %s/%s still exists", secret.Namespace, secret.Name)
	}
	// done is done: a second Delete (the library retrying) succeeds
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func TestDeleteClearsAnotherExportWhenCinderRefusesTheDelete(t *testing.T) {
	e := newEnv(t)
	e.cinder.SetMultiattachType("shared")
	pv := provisioned(t, e, map[string]string{"type": "shared"})
	volumeID := pv.Annotations[contract.AnnVolumeID]
	// an export someone else made: Cinder refuses the DELETE after ours is gone
	if _, err := e.cinder.Export(e.ctx, volumeID, cinder.Connector{Initiator: "iqn.2026-01.org.example:other", Host: "other"}); err != nil {
		t.Fatalf("second export: %v", err)
	}
	e.cinder.ResetCalls()

	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := e.cinder.Volume(volumeID); ok {
		t.Errorf("volume %s still exists", volumeID)
	}
	// Cinder's 400 does not say why: snapshots are ruled out first
	want := []string{fake.OpGetVolume, fake.OpUnexport, fake.OpDeleteVolume, fake.OpListSnapshots, fake.OpGetVolume, fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}
	if got := e.ops(); !slices.Equal(got, want) {
		t.Errorf("Cinder calls = %q, want %q", got, want)
	}
}

func TestDeleteOfAVolumeAlreadyGoneSucceeds(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	id := pv.Annotations[contract.AnnVolumeID]
	if err := e.cinder.Unexport(e.ctx, id, cinder.ExportRef{ID: pv.Annotations[contract.AnnExportID]}, cinder.Connector{}); err != nil {
		t.Fatal(err)
	}
	if err := e.cinder.DeleteVolume(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

func TestDeleteIgnoresPVsThatAreNotOurs(t *testing.T) {
	retain := func(pv *corev1.PersistentVolume) {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	tests := []struct {
		name   string
		mutate func(pv *corev1.PersistentVolume)
	}{
		{"another provisioner's identity", func(pv *corev1.PersistentVolume) {
			pv.Annotations[contract.AnnProvisionerIdentity] = "example.com/other"
		}},
		{"no identity", func(pv *corev1.PersistentVolume) { delete(pv.Annotations, contract.AnnProvisionerIdentity) }},
		{"no volume annotation", func(pv *corev1.PersistentVolume) { pv.Annotations = nil }},
		{"reclaim policy Retain", retain},
		{"reclaim policy Recycle", func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRecycle
		}},
		{"legacy PV with Retain", func(pv *corev1.PersistentVolume) {
			id := pv.Annotations[contract.AnnVolumeID]
			pv.Annotations = map[string]string{contract.AnnLegacyVolumeID: id, contract.AnnLegacyIdentity: "some-identity"}
			retain(pv)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pv := provisioned(t, e, nil)
			id := pv.Annotations[contract.AnnVolumeID]
			before, _ := e.cinder.Volume(id)
			tc.mutate(pv)
			pv = e.edit(pv)

			err := e.p.Delete(e.ctx, pv)
			var ie *controller.IgnoredError
			if !errors.As(err, &ie) {
				t.Fatalf("Delete = %v (%T), want an *controller.IgnoredError", err, err)
			}
			if ops := e.ops(); len(ops) != 0 {
				t.Errorf("Cinder calls = %q, want none", ops)
			}
			after, ok := e.cinder.Volume(id)
			if !ok || after.Status != before.Status || !slices.Equal(after.AttachmentIDs, before.AttachmentIDs) {
				t.Errorf("volume changed: %+v -> %+v", before, after)
			}
			if ref := pv.Spec.ISCSI.SecretRef; !e.secretExists(ref.Namespace, ref.Name) {
				t.Error("the CHAP Secret was deleted")
			}
		})
	}
}

func TestDeleteKeepsASecretThatIsNotThePVs(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	ref := pv.Spec.ISCSI.SecretRef
	// someone replaced the Secret with one of their own, same name
	if err := e.kube.CoreV1().Secrets(ref.Namespace).Delete(e.ctx, ref.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace, Labels: map[string]string{"app": "theirs"}}}
	if _, err := e.kube.CoreV1().Secrets(ref.Namespace).Create(e.ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !e.secretExists(ref.Namespace, ref.Name) {
		t.Error("Delete removed a Secret without the PV's label")
	}
	if _, ok := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); ok {
		t.Error("volume still exists")
	}
}

func TestDeleteLegacyPV(t *testing.T) {
	e := newEnv(t)
	const pvName = "pvc-legacy"
	id := e.cinder.AddVolume(cinder.Volume{Name: pvName, SizeGiB: 1, Multiattach: true})
	var exports []string
	for range 2 {
		exp, err := e.cinder.Export(e.ctx, id, cinder.Connector{Initiator: testIQN, Host: "old-provisioner"})
		if err != nil {
			t.Fatal(err)
		}
		exports = append(exports, exp.ID)
	}
	legacySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: pvName + "-secret", Namespace: "app"}}
	if _, err := e.kube.CoreV1().Secrets("app").Create(e.ctx, legacySecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cinder.ResetCalls()
	initiator := testIQN
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, Annotations: map[string]string{
			contract.AnnLegacyVolumeID: id,
			contract.AnnLegacyIdentity: "2a5d5d5e-1c1e-11e8-8f2a-0242ac110002",
		}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "app", Name: "data"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + id, InitiatorName: &initiator,
				SessionCHAPAuth: true, SecretRef: &corev1.SecretReference{Name: pvName + "-secret"},
			}},
		},
	}

	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// the PV records no export: every export of the volume goes
	want := []string{fake.OpGetVolume, fake.OpGetVolume, fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}
	if got := e.ops(); !slices.Equal(got, want) {
		t.Errorf("Cinder calls = %q, want %q", got, want)
	}
	var deleted []string
	for _, c := range e.cinder.Steps() {
		if c.Op == fake.OpAttachmentDelete {
			deleted = append(deleted, c.ExportID)
		}
	}
	if !slices.Equal(deleted, exports) {
		t.Errorf("attachments deleted %q, want every export %q", deleted, exports)
	}
	if _, ok := e.cinder.Volume(id); ok {
		t.Error("volume still exists")
	}
	if e.secretExists("app", pvName+"-secret") {
		t.Error("the original provisioner's CHAP Secret still exists")
	}
}

func TestDeleteFailureIsReturned(t *testing.T) {
	e := newEnv(t)
	pv := provisioned(t, e, nil)
	id := pv.Annotations[contract.AnnVolumeID]
	e.cinder.FailNext(fake.OpDeleteVolume, cinder.NewError("delete volume", id, cinder.ErrUnavailable, ""))
	err := e.p.Delete(e.ctx, pv)
	if !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("Delete = %v, want the Cinder failure", err)
	}
	want := "delete volume " + id + " of PV " + pv.Name + ": delete volume " + id + ": cinder unavailable"
	if err.Error() != want {
		t.Errorf("Delete =\n%s\nwant\n%s", err, want)
	}
	// the retry finishes the job
	if err := e.p.Delete(e.ctx, pv); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, ok := e.cinder.Volume(id); ok {
		t.Error("volume still exists")
	}
}

func TestDeleteRefusesAVolumeThatIsNotThePVs(t *testing.T) {
	tests := []struct {
		name, volumeID string // "" : another PV's volume
		want           string
	}{
		{"annotation names another PV's volume", "", "which is not its own"},
		{"annotation is not a volume id", "garbage", "not a Cinder volume id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			other := e.cinder.AddVolume(cinder.Volume{Name: "pvc-other", SizeGiB: 1, Metadata: map[string]string{contract.MetaClusterID: testClusterID, contract.MetaPVName: "pvc-other"}})
			otherExp, err := e.cinder.Export(e.ctx, other, cinder.Connector{Initiator: testIQN, Host: testHost})
			if err != nil {
				t.Fatal(err)
			}
			pv := provisioned(t, e, nil)
			own := pv.Annotations[contract.AnnVolumeID]
			pv.Annotations[contract.AnnVolumeID] = other
			if tc.volumeID != "" {
				pv.Annotations[contract.AnnVolumeID] = tc.volumeID
			}
			pv = e.edit(pv)
			err = e.p.Delete(e.ctx, pv)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was deleted") {
				t.Fatalf("Delete = %v, want a refusal saying %q", err, tc.want)
			}
			for _, id := range []string{own, other} {
				if v, ok := e.cinder.Volume(id); !ok || v.Status != cinder.StatusInUse {
					t.Errorf("volume %s: %+v, want it kept, in use", id, v)
				}
			}
			if exps := e.cinder.Exports(other); len(exps) != 1 || exps[0].ID != otherExp.ID {
				t.Errorf("the other PV's export is gone: %+v", exps)
			}
			if ref := pv.Spec.ISCSI.SecretRef; !e.secretExists(ref.Namespace, ref.Name) {
				t.Error("the PV's Secret was deleted by a refused delete")
			}
		})
	}
}

// A volume with snapshots is not deleted: the error names the snapshots
// (the library's VolumeFailedDelete Event on the PV carries it). A volume
// our snapshotter marked (contract.MetaSnapshotted) is checked before
// anything is sent: its export and CHAP Secret stay, every retry costs one
// list and no DELETE. A volume snapshotted outside Kubernetes carries no
// mark: Cinder's refusal of the DELETE tells, after the export went; no
// delete spends a list on volumes that have no snapshots. Once the
// snapshots are gone the next attempt deletes.
func TestDeleteKeepsAVolumeWithSnapshots(t *testing.T) {
	for _, tc := range []struct {
		name       string
		marked     bool
		perAttempt []string
		keeps      bool // the export and the Secret stay
	}{
		{name: "snapshotted by us", marked: true, perAttempt: []string{fake.OpGetVolume, fake.OpListSnapshots}, keeps: true},
		{name: "snapshotted outside Kubernetes", perAttempt: []string{fake.OpGetVolume, fake.OpUnexport, fake.OpDeleteVolume, fake.OpListSnapshots}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pv := provisioned(t, e, nil)
			volumeID := pv.Annotations[contract.AnnVolumeID]
			if tc.marked {
				if err := e.cinder.UpdateVolumeMetadata(e.ctx, volumeID, map[string]string{contract.MetaSnapshotted: "true"}); err != nil {
					t.Fatal(err)
				}
			}
			snapID, err := e.cinder.AddSnapshot(cinder.Snapshot{VolumeID: volumeID, Name: "snapcontent-1"})
			if err != nil {
				t.Fatal(err)
			}
			e.cinder.ResetCalls()
			secret := pv.Spec.ISCSI.SecretRef
			for attempt := range 3 {
				err := e.p.Delete(e.ctx, pv)
				var left *snapshotsLeftError
				if !errors.As(err, &left) || !strings.Contains(err.Error(), snapID) || !strings.Contains(err.Error(), "snapcontent-1") {
					t.Fatalf("attempt %d: %v, want a snapshotsLeftError naming %s", attempt, err, snapID)
				}
			}
			want := slices.Concat(tc.perAttempt, tc.perAttempt, tc.perAttempt)
			if got := e.ops(); !slices.Equal(got, want) {
				t.Errorf("Cinder calls = %q, want %q", got, want)
			}
			if got := e.secretExists(secret.Namespace, secret.Name); got != tc.keeps {
				t.Errorf("CHAP Secret exists: %v, want %v", got, tc.keeps)
			}
			if got := len(e.cinder.Exports(volumeID)) == 1; got != tc.keeps {
				t.Errorf("export kept: %v, want %v", got, tc.keeps)
			}
			if v, ok := e.cinder.Volume(volumeID); !ok || v.Status == cinder.StatusDeleting {
				t.Fatalf("the volume with a snapshot: %+v, %v; want it kept", v, ok)
			}
			e.cinder.RemoveSnapshot(snapID)
			if err := e.p.Delete(e.ctx, pv); err != nil {
				t.Fatalf("Delete once the snapshot is gone: %v", err)
			}
			if _, ok := e.cinder.Volume(volumeID); ok {
				t.Errorf("volume %s still exists", volumeID)
			}
		})
	}
}
