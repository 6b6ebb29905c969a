package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

var (
	// a claim's first attempt: nothing was ever sent for it, so there is
	// nothing to look up before the create
	opsCreateAndExport = []string{fake.OpCreateVolume, fake.OpWaitForVolumeStatus, fake.OpExport}
	// removing an available volume: read its status, delete, wait
	opsDelete = []string{fake.OpGetVolume, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}
	// removing an exported volume: read, clear its exports, delete, wait
	opsUnexportAndDelete = []string{fake.OpGetVolume, fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}
	// a refusal before any create looks for an earlier attempt's volume
	opsLookup = []string{fake.OpFindVolumeByName}
)

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

func TestProvisionISCSIWithCHAP(t *testing.T) {
	e := newEnv(t)
	class := newClass(map[string]string{"type": "lvm"})
	class.MountOptions = []string{"discard"}
	claim := newClaim(claimSpec{size: "1500M", modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany}})

	pv, state, err := e.provision(options(claim, class))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if state != controller.ProvisioningFinished {
		t.Errorf("state = %s, want %s", state, controller.ProvisioningFinished)
	}
	if got := e.ops(); !slices.Equal(got, opsCreateAndExport) {
		t.Errorf("Cinder calls = %q, want %q", got, opsCreateAndExport)
	}
	vols := e.cinder.Volumes()
	if len(vols) != 1 {
		t.Fatalf("Cinder has %d volumes, want 1", len(vols))
	}
	vol := vols[0]
	exports := e.cinder.Exports(vol.ID)
	if len(exports) != 1 {
		t.Fatalf("volume has %d exports, want 1", len(exports))
	}

	// the Cinder volume
	req := e.calls(fake.OpCreateVolume)[0].Request
	if req.Name != testPVName || vol.Name != testPVName {
		t.Errorf("volume name = %q (requested %q), want the PV name %q", vol.Name, req.Name, testPVName)
	}
	if req.SizeGiB != 2 || req.VolumeType != "lvm" || req.AvailabilityZone != "" {
		t.Errorf("create request = size %d type %q zone %q multiattach %v, want 2 GiB of lvm, zone left to Cinder, not multiattach",
			req.SizeGiB, req.VolumeType, req.AvailabilityZone, false)
	}
	if !strings.Contains(req.Description, "app/data") {
		t.Errorf("description %q does not name the claim", req.Description)
	}
	wantMeta := map[string]string{
		contract.MetaClusterID:    testClusterID,
		contract.MetaPVCNamespace: "app",
		contract.MetaPVCName:      "data",
		contract.MetaPVName:       testPVName,
		contract.MetaProvisioner:  DefaultName,
		// no reclaim policy in the class: the API server's default
		contract.MetaReclaimPolicy: "Delete",
		// the provisioner's --secret-namespace: where its CHAP Secret is
		contract.MetaSecretNamespace: testSecretNamespace,
	}
	if !maps.Equal(vol.Metadata, wantMeta) {
		t.Errorf("volume metadata = %v, want %v", vol.Metadata, wantMeta)
	}

	// the PV
	if pv.Name != testPVName {
		t.Errorf("PV name = %q, want %q", pv.Name, testPVName)
	}
	exportCall := e.calls(fake.OpExport)[0]
	sentIQN := exportCall.Connector.Initiator
	if sentIQN != testIQN {
		t.Errorf("connector initiator sent to Cinder = %q, want %q", sentIQN, testIQN)
	}
	wantAnn := map[string]string{
		contract.AnnVolumeID:            vol.ID,
		contract.AnnExportMethod:        string(cinder.ExportAttachments),
		contract.AnnExportID:            exports[0].ID,
		contract.AnnProvisionerIdentity: DefaultName,
	}
	for k, v := range wantAnn {
		if pv.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, pv.Annotations[k], v)
		}
	}
	var rec connectorRecord
	if err := json.Unmarshal([]byte(pv.Annotations[contract.AnnConnector]), &rec); err != nil {
		t.Fatalf("annotation %s: %v", contract.AnnConnector, err)
	}
	if rec.Initiator != sentIQN || rec.Host != testHost {
		t.Errorf("recorded connector = %+v, want initiator %q host %q", rec, sentIQN, testHost)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
		t.Errorf("capacity = %s, want 2Gi", got.String())
	}
	if !slices.Equal(pv.Spec.AccessModes, claim.Spec.AccessModes) {
		t.Errorf("access modes = %v, want %v", pv.Spec.AccessModes, claim.Spec.AccessModes)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim policy = %s, want Delete (the default)", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if !slices.Equal(pv.Spec.MountOptions, []string{"discard"}) {
		t.Errorf("mountOptions = %v, want [discard]", pv.Spec.MountOptions)
	}
	if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("volumeMode = %v, want Filesystem", pv.Spec.VolumeMode)
	}
	src := pv.Spec.ISCSI
	if src == nil {
		t.Fatalf("PV source = %+v, want iSCSI", pv.Spec.PersistentVolumeSource)
	}
	if src.InitiatorName == nil || *src.InitiatorName != sentIQN {
		t.Errorf("iSCSI initiatorName = %v, want the IQN sent to Cinder %q", src.InitiatorName, sentIQN)
	}
	if src.TargetPortal != "127.0.0.1:3260" || src.IQN != "iqn.2010-10.org.openstack:volume-"+vol.ID || src.Lun != 1 || src.FSType != defaultFSType {
		t.Errorf("iSCSI source = portal %s iqn %s lun %d fsType %q", src.TargetPortal, src.IQN, src.Lun, src.FSType)
	}
	wantRef := &corev1.SecretReference{Name: testPVName + "-chap", Namespace: testSecretNamespace}
	if !src.SessionCHAPAuth || src.SecretRef == nil || *src.SecretRef != *wantRef {
		t.Errorf("CHAP: sessionCHAPAuth %v secretRef %v, want true and %v", src.SessionCHAPAuth, src.SecretRef, wantRef)
	}

	// the CHAP Secret, in the provisioner's namespace
	s, err := e.kube.CoreV1().Secrets(testSecretNamespace).Get(e.ctx, wantRef.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CHAP Secret: %v", err)
	}
	if s.Type != mapper.SecretTypeISCSICHAP || s.Labels[mapper.LabelPV] != testPVName {
		t.Errorf("CHAP Secret type %q labels %v, want %q labelled with the PV", s.Type, s.Labels, mapper.SecretTypeISCSICHAP)
	}
	if !strings.HasPrefix(string(s.Data[mapper.KeySessionPassword]), chapPasswordPrefix) {
		t.Errorf("CHAP Secret does not hold the fake's password")
	}
	if evs := e.drainEvents(); len(evs) != 0 {
		t.Errorf("events = %q, want none", evs)
	}
	e.noCredentials(err)
}

func TestProvisionHonoursClassAndClaimSettings(t *testing.T) {
	retain := corev1.PersistentVolumeReclaimRetain
	const classIQN = "iqn.2026-01.org.example:class-initiator"
	tests := []struct {
		name   string
		params map[string]string
		claim  claimSpec
		setup  func(e *env)
		check  func(t *testing.T, e *env, pv *corev1.PersistentVolume)
	}{
		{
			name:   "chapSecretNamespace overrides the provisioner's namespace",
			params: map[string]string{"chapSecretNamespace": "chap"},
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if ref := pv.Spec.ISCSI.SecretRef; ref == nil || ref.Namespace != "chap" {
					t.Errorf("secretRef = %v, want namespace chap", ref)
				}
				if _, err := e.kube.CoreV1().Secrets("chap").Get(e.ctx, testPVName+"-chap", metav1.GetOptions{}); err != nil {
					t.Errorf("CHAP Secret in chap: %v", err)
				}
				if l, _ := e.kube.CoreV1().Secrets(testSecretNamespace).List(e.ctx, metav1.ListOptions{}); len(l.Items) != 0 {
					t.Errorf("%d Secrets in %s, want none", len(l.Items), testSecretNamespace)
				}
			},
		},
		{
			name:  "block mode has no fsType",
			claim: claimSpec{block: true},
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeBlock {
					t.Errorf("volumeMode = %v, want Block", pv.Spec.VolumeMode)
				}
				if pv.Spec.ISCSI.FSType != "" {
					t.Errorf("fsType = %q, want none for a block volume", pv.Spec.ISCSI.FSType)
				}
			},
		},
		{
			name:   "fsType and readOnly from the class",
			params: map[string]string{"fsType": "xfs", "readOnly": "true"},
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if pv.Spec.ISCSI.FSType != "xfs" || !pv.Spec.ISCSI.ReadOnly {
					t.Errorf("fsType %q readOnly %v, want xfs read-only", pv.Spec.ISCSI.FSType, pv.Spec.ISCSI.ReadOnly)
				}
			},
		},
		{
			name:   "availability zone from the class",
			params: map[string]string{"availability": "zone-b"},
			setup:  func(e *env) { e.cinder.SetZones(false, "nova", "zone-b") },
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if z := e.calls(fake.OpCreateVolume)[0].Request.AvailabilityZone; z != "zone-b" {
					t.Errorf("requested zone %q, want zone-b", z)
				}
			},
		},
		{
			name:   "initiatorName from the class is sent to Cinder and written into the PV",
			params: map[string]string{"initiatorName": classIQN},
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if got := e.calls(fake.OpExport)[0].Connector.Initiator; got != classIQN {
					t.Errorf("connector initiator = %q, want %q", got, classIQN)
				}
				if got := pv.Spec.ISCSI.InitiatorName; got == nil || *got != classIQN {
					t.Errorf("initiatorName = %v, want %q", got, classIQN)
				}
				if !strings.Contains(pv.Annotations[contract.AnnConnector], classIQN) {
					t.Errorf("recorded connector %s lacks %q", pv.Annotations[contract.AnnConnector], classIQN)
				}
			},
		},
		{
			// Cinder 21 refuses a multiattach flag on create: the type decides
			name:   "ReadWriteMany block on a multiattach volume type",
			params: map[string]string{"type": "multi"},
			claim:  claimSpec{block: true, modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}},
			setup:  func(e *env) { e.cinder.SetMultiattachType("multi") },
			check: func(t *testing.T, e *env, pv *corev1.PersistentVolume) {
				if v, _ := e.cinder.Volume(pv.Annotations[contract.AnnVolumeID]); !v.Multiattach {
					t.Error("the volume is not multiattach")
				}
				if !slices.Equal(pv.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
					t.Errorf("access modes = %v, want RWX", pv.Spec.AccessModes)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			pv, _, err := e.provision(options(newClaim(tc.claim), newClass(tc.params)))
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			tc.check(t, e, pv)
		})
	}

	t.Run("reclaim policy from the class", func(t *testing.T) {
		e := newEnv(t)
		class := newClass(nil)
		class.ReclaimPolicy = &retain
		pv, _, err := e.provision(options(newClaim(claimSpec{}), class))
		if err != nil {
			t.Fatalf("Provision: %v", err)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != retain {
			t.Errorf("reclaim policy = %s, want Retain", pv.Spec.PersistentVolumeReclaimPolicy)
		}
	})
}

// earlierVolume seeds a volume an earlier attempt of this cluster created for
// the claim.
func earlierVolume(e *env, v cinder.Volume) string {
	e.attempted = true
	v.Name = testPVName
	if v.SizeGiB == 0 {
		v.SizeGiB = 1
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{contract.MetaClusterID: testClusterID, contract.MetaPVName: testPVName}
	}
	return e.cinder.AddVolume(v)
}

func TestProvisionReusesTheVolumeOfAnEarlierAttempt(t *testing.T) {
	for _, status := range []string{cinder.StatusAvailable, cinder.StatusCreating} {
		t.Run(status, func(t *testing.T) {
			e := newEnv(t)
			id := earlierVolume(e, cinder.Volume{Status: status, SizeGiB: 1})
			if status == cinder.StatusCreating {
				// a seeded volume keeps its status: Cinder finishes it
				// while the provisioner waits
				e.cinder.Hook(fake.OpWaitForVolumeStatus, func(context.Context, fake.Call) error {
					return e.cinder.SetStatus(id, cinder.StatusAvailable)
				})
			}
			pv, state, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			want := []string{fake.OpFindVolumeByName, fake.OpExport}
			if status == cinder.StatusCreating {
				want = []string{fake.OpFindVolumeByName, fake.OpWaitForVolumeStatus, fake.OpExport}
			}
			if got := e.ops(); !slices.Equal(got, want) {
				t.Errorf("Cinder calls = %q, want %q (no CreateVolume)", got, want)
			}
			if vols := e.cinder.Volumes(); len(vols) != 1 || vols[0].ID != id {
				t.Errorf("Cinder volumes = %+v, want only %s", vols, id)
			}
			if pv.Annotations[contract.AnnVolumeID] != id || state != controller.ProvisioningFinished {
				t.Errorf("PV volume %s state %s, want %s Finished", pv.Annotations[contract.AnnVolumeID], state, id)
			}
			if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
				t.Errorf("capacity = %s, want 1Gi", got.String())
			}
		})
	}
}

func TestProvisionReplacesAVolumeLeftInError(t *testing.T) {
	e := newEnv(t)
	old := earlierVolume(e, cinder.Volume{Status: cinder.StatusError})
	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	want := concat([]string{fake.OpFindVolumeByName}, opsDelete, opsCreateAndExport)
	if got := e.ops(); !slices.Equal(got, want) {
		t.Errorf("Cinder calls = %q, want %q", got, want)
	}
	if c := e.calls(fake.OpDeleteVolume)[0]; c.VolumeID != old {
		t.Errorf("deleted %s, want the volume in error %s", c.VolumeID, old)
	}
	vols := e.cinder.Volumes()
	if len(vols) != 1 || vols[0].ID == old || vols[0].ID != pv.Annotations[contract.AnnVolumeID] {
		t.Errorf("Cinder volumes = %+v, want one new volume backing the PV", vols)
	}
}

func TestProvisionRemovesAnExportAnEarlierAttemptLeft(t *testing.T) {
	e := newEnv(t)
	const classIQN = "iqn.2026-01.org.example:class-initiator"
	id := earlierVolume(e, cinder.Volume{})
	classConnector := cinder.Connector{Initiator: classIQN, Host: testHost}
	left, err := e.cinder.Export(e.ctx, id, classConnector)
	if err != nil {
		t.Fatal(err)
	}
	e.cinder.ResetCalls()

	pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(map[string]string{"initiatorName": classIQN})))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	want := []string{fake.OpFindVolumeByName, fake.OpClearExports, fake.OpExport}
	if got := e.ops(); !slices.Equal(got, want) {
		t.Errorf("Cinder calls = %q, want %q", got, want)
	}
	cl := e.calls(fake.OpClearExports)[0]
	if cl.VolumeID != id {
		t.Errorf("cleared exports of %s, want %s", cl.VolumeID, id)
	}
	// legacy teardown (os-terminate_connection) must send the connector the
	// export was made for
	if cl.Connector.Initiator != classIQN {
		t.Errorf("clear connector initiator = %q, want the class's %q", cl.Connector.Initiator, classIQN)
	}
	exps := e.cinder.Exports(id)
	if len(exps) != 1 || exps[0].ID == left.ID || exps[0].ID != pv.Annotations[contract.AnnExportID] {
		t.Errorf("exports = %+v, want only the PV's new one", exps)
	}
}

func TestProvisionLeavesAnotherClustersVolumeAlone(t *testing.T) {
	e := newEnv(t)
	id := earlierVolume(e, cinder.Volume{Metadata: map[string]string{contract.MetaClusterID: "cluster-b"}})
	before, _ := e.cinder.Volume(id)

	pv, state, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err == nil {
		t.Fatalf("Provision = %v, want an error", pv)
	}
	if state != controller.ProvisioningFinished {
		t.Errorf("state = %s, want Finished", state)
	}
	if got := e.ops(); !slices.Equal(got, []string{fake.OpFindVolumeByName}) {
		t.Errorf("Cinder calls = %q, want only the lookup", got)
	}
	after, ok := e.cinder.Volume(id)
	if !ok || after.Status != before.Status || len(e.cinder.Volumes()) != 1 {
		t.Errorf("the other cluster's volume changed: %+v -> %+v", before, after)
	}
	msg := e.oneWarning(ReasonNameConflict)
	if !strings.Contains(msg, `belongs to cluster "cluster-b"`) {
		t.Errorf("event message %q does not name the other cluster", msg)
	}
}

func TestProvisionFailures(t *testing.T) {
	nfs := cinder.Connection{DriverVolumeType: "nfs", Data: map[string]any{
		"export": "192.0.2.1:/srv/cinder", "name": "volume-" + fake.VolumeIDPlaceholder, "options": nil,
	}}
	noTarget := cinder.Connection{DriverVolumeType: "iscsi", Data: map[string]any{"volume_id": fake.VolumeIDPlaceholder}}
	createOnly := []string{fake.OpCreateVolume}
	createAndWait := opsCreateAndExport[:2]
	unexportAndDelete := opsUnexportAndDelete

	tests := []struct {
		name        string
		params      map[string]string
		claim       claimSpec
		setup       func(e *env)
		wantOps     []string
		wantState   controller.ProvisioningState
		wantReason  string
		wantMsg     string // part of the event message
		wantVolumes int
		// the volume stays exported for the next attempt, which clears it
		wantExported bool
	}{
		{
			name:       "unknown StorageClass parameter",
			params:     map[string]string{"zone": "a"},
			wantOps:    opsLookup,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonInvalidParameter,
			wantMsg:    `StorageClass parameter "zone": unknown parameter`,
		},
		{
			name:       "ReadWriteMany filesystem claim",
			claim:      claimSpec{modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}},
			wantOps:    opsLookup,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonInvalidClaim,
			wantMsg:    "ReadWriteMany is only possible with volumeMode: Block",
		},
		{
			name:       "missing Ceph Secret named by the class",
			params:     map[string]string{"clusterID": "ceph-1", "cephSecretName": "ceph-user", "cephSecretNamespace": "ceph"},
			wantOps:    opsLookup,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonMissingSecret,
			wantMsg:    "Secret ceph/ceph-user named by the StorageClass",
		},
		{
			name:   "Ceph Secret named by the class without userKey",
			params: map[string]string{"clusterID": "ceph-1", "cephSecretName": "ceph-user", "cephSecretNamespace": "ceph"},
			setup: func(e *env) {
				sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ceph-user", Namespace: "ceph"}, Data: map[string][]byte{"userID": []byte("cinder")}}
				if _, err := e.kube.CoreV1().Secrets("ceph").Create(e.ctx, sec, metav1.CreateOptions{}); err != nil {
					e.t.Fatal(err)
				}
			},
			wantOps:    opsLookup,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonMissingSecret,
			wantMsg:    "Secret ceph/ceph-user named by the StorageClass (cephSecretName/cephSecretNamespace) has no userKey",
		},
		{
			name: "Cinder unreachable for the lookup",
			setup: func(e *env) {
				e.attempted = true // an earlier attempt may have made the volume
				e.cinder.FailNext(fake.OpFindVolumeByName, cinder.NewError("find volume", testPVName, cinder.ErrUnavailable, ""))
			},
			wantOps: []string{fake.OpFindVolumeByName},
			// an earlier attempt's volume may exist: never forget the claim
			wantState:  controller.ProvisioningInBackground,
			wantReason: ReasonCinderUnavailable,
		},
		{
			// one of them is another cluster's: nothing is picked
			name: "several volumes carry the name, not all ours",
			setup: func(e *env) {
				earlierVolume(e, cinder.Volume{})
				earlierVolume(e, cinder.Volume{Metadata: map[string]string{contract.MetaClusterID: "cluster-b", contract.MetaPVName: testPVName}})
			},
			wantOps:     []string{fake.OpFindVolumeByName, fake.OpGetVolume, fake.OpGetVolume},
			wantState:   controller.ProvisioningInBackground,
			wantReason:  ReasonNameConflict,
			wantVolumes: 2,
		},
		{
			name:       "quota exceeded on create",
			setup:      func(e *env) { e.cinder.SetQuota(0) },
			wantOps:    createOnly,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonQuotaExceeded,
			wantMsg:    "Maximum number of volumes allowed (0) exceeded",
		},
		{
			name: "create rejected",
			setup: func(e *env) {
				e.cinder.FailNext(fake.OpCreateVolume, cinder.NewError("create volume", testPVName, cinder.ErrNotFound, "Volume type with name nope could not be found."))
			},
			wantOps:    createOnly,
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonCinderRejected,
		},
		{
			name: "create unanswered: Cinder may have made it",
			setup: func(e *env) {
				e.cinder.FailNext(fake.OpCreateVolume, cinder.NewError("create volume", testPVName, cinder.ErrUnavailable, ""))
			},
			wantOps:    createOnly,
			wantState:  controller.ProvisioningInBackground,
			wantReason: ReasonCinderUnavailable,
		},
		{
			name:       "volume goes to error while creating",
			setup:      func(e *env) { e.cinder.SetCreateFinalStatus(cinder.StatusError) },
			wantOps:    concat(createAndWait, opsDelete),
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonVolumeError,
		},
		{
			name: "export fails",
			setup: func(e *env) {
				e.cinder.FailNext(fake.OpExport, cinder.NewError("export volume", "", cinder.ErrInvalid, "connector rejected"))
			},
			wantOps:    concat(opsCreateAndExport, opsDelete),
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonCinderRejected,
			wantMsg:    "export volume",
		},
		{
			name:       "nfs backend has no native source",
			params:     map[string]string{"type": "nfs"},
			setup:      func(e *env) { e.cinder.SetConnection("nfs", nfs) },
			wantOps:    concat(opsCreateAndExport, unexportAndDelete),
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonUnsupportedTransport,
			wantMsg:    `unsupported transport "nfs"`,
		},
		{
			name:       "iSCSI connection info without target",
			params:     map[string]string{"type": "fake"},
			setup:      func(e *env) { e.cinder.SetConnection("fake", noTarget) },
			wantOps:    concat(opsCreateAndExport, unexportAndDelete),
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonInvalidConnectionInfo,
			wantMsg:    "iscsi connection info: target_portal missing",
		},
		{
			name:   "cleanup fails: the next attempt must retry",
			params: map[string]string{"type": "nfs"},
			setup: func(e *env) {
				e.cinder.SetConnection("nfs", nfs)
				e.cinder.Fail(fake.OpDeleteVolume, cinder.NewError("delete volume", "", cinder.ErrUnavailable, ""))
			},
			wantOps:     concat(opsCreateAndExport, []string{fake.OpGetVolume, fake.OpClearExports, fake.OpDeleteVolume}),
			wantState:   controller.ProvisioningInBackground,
			wantReason:  ReasonUnsupportedTransport,
			wantMsg:     "removing what an attempt left for this claim did not finish, will retry",
			wantVolumes: 1,
		},
		{
			name: "CHAP Secret cannot be created",
			setup: func(e *env) {
				e.kube.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("etcdserver: request timed out")
				})
			},
			// the API server may recover: the volume is kept, and the next
			// attempt clears its export and exports it again
			wantOps:      opsCreateAndExport,
			wantState:    controller.ProvisioningInBackground,
			wantReason:   ReasonProvisioningFailed,
			wantMsg:      "create Secret " + testSecretNamespace + "/" + testPVName + "-chap: etcdserver: request timed out",
			wantVolumes:  1,
			wantExported: true,
		},
		{
			name:  "ReadWriteMany block on a volume that is not multiattach",
			claim: claimSpec{block: true, modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}},
			// the fake grants every multiattach request; an earlier
			// attempt's volume stands for a type without multiattach
			setup:      func(e *env) { earlierVolume(e, cinder.Volume{Multiattach: false}) },
			wantOps:    concat([]string{fake.OpFindVolumeByName}, opsDelete),
			wantState:  controller.ProvisioningFinished,
			wantReason: ReasonInvalidClaim,
			wantMsg:    "ReadWriteMany needs a multiattach volume",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			pv, state, err := e.provision(options(newClaim(tc.claim), newClass(tc.params)))
			if err == nil {
				t.Fatalf("Provision = %v, want an error", pv)
			}
			if pv != nil {
				t.Errorf("Provision returned PV %s with error %v", pv.Name, err)
			}
			if state != tc.wantState {
				t.Errorf("state = %s, want %s (error: %v)", state, tc.wantState, err)
			}
			if got := e.ops(); !slices.Equal(got, tc.wantOps) {
				t.Errorf("Cinder calls = %q, want %q", got, tc.wantOps)
			}
			if vols := e.cinder.Volumes(); len(vols) != tc.wantVolumes {
				t.Errorf("Cinder has %d volumes, want %d: %+v", len(vols), tc.wantVolumes, vols)
			}
			for _, v := range e.cinder.Volumes() {
				if exps := e.cinder.Exports(v.ID); (len(exps) != 0) != tc.wantExported {
					t.Errorf("volume %s exports: %+v, want exported %v", v.ID, exps, tc.wantExported)
				}
			}
			if l, _ := e.kube.CoreV1().Secrets(testSecretNamespace).List(e.ctx, metav1.ListOptions{}); len(l.Items) != 0 {
				t.Errorf("%d Secrets left behind", len(l.Items))
			}
			msg := e.oneWarning(tc.wantReason)
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("event message %q does not contain %q", msg, tc.wantMsg)
			}
			e.noCredentials(err, msg)
		})
	}
}

// TestProvisionNeverShowsCHAPPasswords fails after the CHAP Secret was
// built, the one moment a password is in the provisioner's hands.
func TestProvisionNeverShowsCHAPPasswords(t *testing.T) {
	e := newEnv(t)
	e.kube.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("admission webhook denied the request")
	})
	_, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
	if err == nil {
		t.Fatal("Provision succeeded, want the Secret failure")
	}
	e.noCredentials(err, e.drainEvents()...)
	// positive control: the password was in the provisioner's hands
	var seen bool
	for _, a := range e.kube.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok {
			if s, ok := c.GetObject().(*corev1.Secret); ok {
				seen = seen || strings.HasPrefix(string(s.Data[mapper.KeySessionPassword]), chapPasswordPrefix)
			}
		}
	}
	if !seen {
		t.Error("no Secret with the fake's CHAP password was sent: the test proves nothing")
	}
}

func TestProvisionWaitCutShortLeavesTheVolumeForTheRetry(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env) (context.Context, context.CancelFunc)
	}{
		{
			name: "provision deadline ends while Cinder creates",
			setup: func(e *env) (context.Context, context.CancelFunc) {
				e.cinder.SetCreatingPolls(1 << 30)
				// long enough for the lookup and the create, never for
				// the wait
				return context.WithTimeout(e.ctx, 200*time.Millisecond)
			},
		},
		{
			name: "wait gives up",
			setup: func(e *env) (context.Context, context.CancelFunc) {
				e.cinder.SetCreatingPolls(1 << 30)
				e.cinder.Hook(fake.OpWaitForVolumeStatus, func(_ context.Context, c fake.Call) error {
					return &cinder.WaitError{What: "volume " + c.VolumeID + " to become available", Last: cinder.StatusCreating, Err: context.DeadlineExceeded}
				})
				return context.WithCancel(e.ctx)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.ensureClaim(newClaim(claimSpec{}))
			ctx, cancel := tc.setup(e)
			defer cancel()
			_, state, err := e.p.Provision(ctx, options(newClaim(claimSpec{}), newClass(nil)))
			if err == nil {
				t.Fatal("Provision succeeded, want the wait to end")
			}
			if c := e.calls(fake.OpCreateVolume); len(c) != 1 || c[0].Err != nil {
				t.Fatalf("create = %v: the deadline ended before the wait", c)
			}
			var we *cinder.WaitError
			if !errors.As(err, &we) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v is not a wait cut short", err)
			}
			if state != controller.ProvisioningInBackground {
				t.Errorf("state = %s, want InBackground", state)
			}
			want := createAndWaitOps()
			if got := e.ops(); !slices.Equal(got, want) {
				t.Errorf("Cinder calls = %q, want %q (no delete of a volume Cinder is creating)", got, want)
			}
			if vols := e.cinder.Volumes(); len(vols) != 1 {
				t.Errorf("Cinder has %d volumes, want the one being created", len(vols))
			}
			e.oneWarning(ReasonCinderUnavailable)

			// the retry finds the volume by name and finishes
			e.cinder.Hook(fake.OpWaitForVolumeStatus, nil)
			if err := e.cinder.SetStatus(e.cinder.Volumes()[0].ID, cinder.StatusAvailable); err != nil {
				t.Fatal(err)
			}
			pv, _, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if vols := e.cinder.Volumes(); len(vols) != 1 || pv.Annotations[contract.AnnVolumeID] != vols[0].ID {
				t.Errorf("after the retry Cinder has %+v, want the one volume behind the PV", vols)
			}
		})
	}
}

func createAndWaitOps() []string { return opsCreateAndExport[:2] }

func TestProvisionFibreChannelConnector(t *testing.T) {
	fc := cinder.Connection{DriverVolumeType: "fibre_channel", Data: map[string]any{
		"target_wwn": []any{"500a098800000001"}, "target_lun": json.Number("2"), "volume_id": fake.VolumeIDPlaceholder,
	}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{
		mapper.AnnotationFCWWPNs: "50:0A:09:81:00:00:00:AA",
	}}}
	tests := []struct {
		name      string
		params    map[string]string
		node      string
		wantWWPNs []string
	}{
		{"provisioner's WWPNs", map[string]string{}, "", []string{"500a098100000099"}},
		{"class fcWWPNs override the connector", map[string]string{"fcWWPNs": "50:0a:09:81:00:00:00:01"}, "", []string{"500a098100000001"}},
		{"selected node's annotation when the class gives none", map[string]string{}, "node-1", []string{"500a0981000000aa"}},
		{"class fcWWPNs win over the node's", map[string]string{"fcWWPNs": "500a098100000001"}, "node-1", []string{"500a098100000001"}},
		// a selected node that is gone: TestTopologySelectedNodeGone
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.p.connector.WWPNs = []string{"500a098100000099"}
			if _, err := e.kube.CoreV1().Nodes().Create(e.ctx, node, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.cinder.SetConnection("fc", fc)
			tc.params["type"] = "fc"
			opts := options(newClaim(claimSpec{}), newClass(tc.params))
			opts.SelectedNodeName = tc.node
			pv, _, err := e.provision(opts)
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if got := e.calls(fake.OpExport)[0].Connector.WWPNs; !slices.Equal(got, tc.wantWWPNs) {
				t.Errorf("connector WWPNs = %q, want %q", got, tc.wantWWPNs)
			}
			var rec connectorRecord
			if err := json.Unmarshal([]byte(pv.Annotations[contract.AnnConnector]), &rec); err != nil || !slices.Equal(rec.WWPNs, tc.wantWWPNs) {
				t.Errorf("recorded connector %s (%v), want WWPNs %q", pv.Annotations[contract.AnnConnector], err, tc.wantWWPNs)
			}
			if pv.Spec.FC == nil || !slices.Equal(pv.Spec.FC.TargetWWNs, []string{"500a098800000001"}) || *pv.Spec.FC.Lun != 2 {
				t.Errorf("FC source = %+v", pv.Spec.FC)
			}
			if e.p.connector.WWPNs[0] != "500a098100000099" {
				t.Errorf("provisioner's connector changed to %q", e.p.connector.WWPNs)
			}
		})
	}
}

func TestProvisionCHAPSecretOfAnEarlierAttempt(t *testing.T) {
	name := testPVName + "-chap"
	tests := []struct {
		name    string
		labels  map[string]string
		wantErr bool
	}{
		{"ours is updated", map[string]string{mapper.LabelPV: testPVName}, false},
		{"someone else's is refused and kept", map[string]string{"app": "theirs"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			stale := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testSecretNamespace, Labels: tc.labels},
				Data:       map[string][]byte{mapper.KeySessionPassword: []byte("stale")},
			}
			if _, err := e.kube.CoreV1().Secrets(testSecretNamespace).Create(e.ctx, stale, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			_, state, err := e.provision(options(newClaim(claimSpec{}), newClass(nil)))
			s, gerr := e.kube.CoreV1().Secrets(testSecretNamespace).Get(e.ctx, name, metav1.GetOptions{})
			if gerr != nil {
				t.Fatalf("Secret: %v", gerr)
			}
			password := string(s.Data[mapper.KeySessionPassword])
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				if !strings.HasPrefix(password, chapPasswordPrefix) {
					t.Errorf("Secret password = %q, want the new export's", password)
				}
				return
			}
			if err == nil || state != controller.ProvisioningFinished {
				t.Fatalf("Provision = %v, %s; want a final error", err, state)
			}
			if password != "stale" {
				t.Error("someone else's Secret was changed")
			}
			if len(e.cinder.Volumes()) != 0 {
				t.Error("volume left behind")
			}
			e.oneWarning(ReasonSecretConflict)
		})
	}
}
