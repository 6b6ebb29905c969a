package operator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

const (
	testCluster     = "c1"
	testProvisioner = "openstack.org/standalone-cinder"
	testSecretNS    = "cinder-provisioner"
	claimNS         = "apps"
)

// uidFor is a fixed claim uid per label: the volume of claim apps/<label>
// is named pvc-<uid>, as the provisioner names it.
func uidFor(label string) types.UID {
	h := fnv.New32a()
	_, _ = h.Write([]byte(label))
	return types.UID(fmt.Sprintf("%08x-0000-4000-a000-000000000000", h.Sum32()))
}

// pvNameFor is the name of the PV (and volume) of claim apps/<label>.
func pvNameFor(label string) string { return "pvc-" + string(uidFor(label)) }

// metaFor is the metadata the provisioner writes on the volume of claim
// apps/<label>; policy "": none recorded (made before it was recorded).
func metaFor(cluster, label, policy string) map[string]string {
	m := map[string]string{
		contract.MetaClusterID:    cluster,
		contract.MetaPVName:       pvNameFor(label),
		contract.MetaPVCNamespace: claimNS,
		contract.MetaPVCName:      label,
	}
	if policy != "" {
		m[contract.MetaReclaimPolicy] = policy
	}
	return m
}

// addVolume adds the volume of claim apps/<label>, age old by Cinder's clock.
func addVolume(f *fake.Fake, cluster, label, policy string, age time.Duration) string {
	return f.AddVolume(cinder.Volume{Name: pvNameFor(label), SizeGiB: 1, Metadata: metaFor(cluster, label, policy), CreatedAt: f.Now().Add(-age)})
}

// pv is a PV of ours (annotations) named name for the volume.
func pv(name, volumeID, identity string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			contract.AnnVolumeID:            volumeID,
			contract.AnnProvisionerIdentity: identity,
		}},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: claimNS, Name: "data-" + name}},
	}
}

// staticISCSIPV is a PV an admin wrote by hand for a kept LVM/tgt volume:
// no annotation, the IQN ends in the volume id.
func staticISCSIPV(name, volumeID string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
			TargetPortal: "192.0.2.10:3260", IQN: "iqn.2010-10.org.openstack:volume-" + volumeID, Lun: 1,
		}}},
	}
}

// claim is claim apps/<label> with the uid its volume's name carries.
func claim(label string, phase corev1.PersistentVolumeClaimPhase, finalizers ...string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: claimNS, Name: label, UID: uidFor(label), Finalizers: finalizers},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: phase},
	}
}

func terminating(c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	ts := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c.DeletionTimestamp = &ts
	return c
}

// world is a cluster with:
//   - bound: volume of a Bound claim, exported, its PV refers to it
//   - orphan: no PV, no claim, no export, reclaim policy Delete, an hour old by Cinder's clock
//   - other: like orphan, two hours old
//   - young: like orphan, a minute old by Cinder's clock
//   - kept: reclaim policy Retain, still exported, no PV (an admin deleted the PV object)
//   - neverHeld: reclaim policy Retain, never exported, no PV, no claim
//   - unknown: no PV, no claim, no export, no reclaim policy recorded
//   - exported: reclaim policy Delete, exported, no PV, no claim
//   - pending: reclaim policy Delete, no PV, its claim Pending with the provisioner's finalizer
//   - foreign: volume of another cluster without a PV
//   - pv-gone: PV of the provisioner whose volume does not exist
//   - pv-other: PV of another provisioner whose volume does not exist
type world struct {
	cinder                                                                            *fake.Fake
	kube                                                                              *kubefake.Clientset
	bound, orphan, other, young, kept, neverHeld, unknown, exported, pending, foreign string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	f := fake.New()
	w := &world{cinder: f}
	w.bound = addVolume(f, testCluster, "bound", "Delete", time.Hour)
	w.orphan = addVolume(f, testCluster, "orphan", "Delete", time.Hour)
	w.other = addVolume(f, testCluster, "other", "Delete", 2*time.Hour)
	w.young = addVolume(f, testCluster, "young", "Delete", time.Minute)
	w.kept = addVolume(f, testCluster, "kept", "Retain", 24*time.Hour)
	w.neverHeld = addVolume(f, testCluster, "never-held", "Retain", 24*time.Hour)
	w.unknown = addVolume(f, testCluster, "unknown", "", 24*time.Hour)
	w.exported = addVolume(f, testCluster, "exported", "Delete", time.Hour)
	w.pending = addVolume(f, testCluster, "pending", "Delete", time.Hour)
	w.foreign = addVolume(f, "c10", "foreign", "Delete", time.Hour)
	for _, id := range []string{w.bound, w.kept, w.exported} {
		if _, err := f.Export(ctx, id, testConnector); err != nil {
			t.Fatal(err)
		}
	}
	bound := claim("bound", corev1.ClaimBound)
	bound.Spec.VolumeName = pvNameFor("bound")
	w.kube = kubefake.NewClientset(
		pv(pvNameFor("bound"), w.bound, testProvisioner),
		pv("pvc-gone", "4d4d4d4d-0000-4000-a000-000000000000", testProvisioner),
		pv("pvc-other", "5e5e5e5e-0000-4000-a000-000000000000", "other.example.com/cinder"),
		bound,
		claim("pending", corev1.ClaimPending, contract.FinalizerProvisioning),
	)
	f.ResetCalls()
	return w
}

func (w *world) config(out *bytes.Buffer, in io.Reader) OrphansConfig {
	return OrphansConfig{
		Cinder:          w.cinder,
		Kube:            w.kube,
		Out:             out,
		In:              in,
		ClusterID:       testCluster,
		ProvisionerName: testProvisioner,
		SecretNamespace: testSecretNS,
	}
}

// deleteConfig is config with --delete --yes.
func (w *world) deleteConfig(out *bytes.Buffer) OrphansConfig {
	cfg := w.config(out, nil)
	cfg.Delete, cfg.Yes = true, true
	return cfg
}

func (w *world) add(t *testing.T, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		if err := w.kube.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) setMeta(t *testing.T, id string, md map[string]string) {
	t.Helper()
	if err := w.cinder.UpdateVolumeMetadata(context.Background(), id, md); err != nil {
		t.Fatal(err)
	}
}

func (w *world) exists(id string) bool {
	_, ok := w.cinder.Volume(id)
	return ok
}

func (w *world) remaining() []string {
	var ids []string
	for _, v := range w.cinder.Volumes() {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids
}

// reads are the calls that change nothing in Cinder.
var reads = []string{fake.OpGetVolume, fake.OpListExports, fake.OpListVolumes}

// untouched fails for any call other than a read on the given volumes.
func (w *world) untouched(t *testing.T, ids ...string) {
	t.Helper()
	for _, c := range w.cinder.Steps() {
		if slices.Contains(ids, c.VolumeID) && !slices.Contains(reads, c.Op) {
			t.Errorf("%s called on volume %s, which must not be touched", c.Op, c.VolumeID)
		}
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// answerAfter answers the confirmation prompt after running change: the
// world changes while the admin reads the list, which may take minutes.
type answerAfter struct {
	change func()
	r      io.Reader
}

func (a *answerAfter) Read(p []byte) (int, error) {
	if a.change != nil {
		a.change()
		a.change = nil
	}
	return a.r.Read(p)
}

// section returns the part of out from the line starting with title to the
// next line that starts without indentation.
func section(out, title string) string {
	rest, ok := strings.CutPrefix(out, title)
	if ok {
		rest = title + rest
	} else {
		i := strings.Index(out, "\n"+title)
		if i < 0 {
			return ""
		}
		rest = out[i+1:]
	}
	lines := strings.SplitAfter(rest, "\n")
	end := len(lines[0])
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, " ") {
			break
		}
		end += len(l)
	}
	return rest[:end]
}

// mentions reports whether a line of out says both s and what.
func mentions(out, s, what string) bool {
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) && strings.Contains(l, what) {
			return true
		}
	}
	return false
}

// lineOf returns the first line of out that contains s.
func lineOf(out, s string) string {
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

const (
	titleOrphans   = "Orphans of cluster c1, reclaim policy Delete: "
	titleNeverHeld = "Orphans of cluster c1, reclaim policy Retain but never held by a PV: "
	titleUnknown   = "Orphans of cluster c1, reclaim policy unknown: "
	titleKept      = "Volumes of cluster c1 kept on purpose (reclaim policy Retain, still exported, no PV): "
	titleExported  = "Volumes of cluster c1 exported, no PV refers to it: a host may still use it: "
	titleClaimed   = "Volumes of cluster c1 without a PV whose claim exists: "
	titleUnchecked = "Volumes of cluster c1 that could not be checked: "
	titleGone      = "PVs of provisioner openstack.org/standalone-cinder whose Cinder volume is gone: "
)

func TestOrphansListsEachKindInItsSection(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	if err := Orphans(context.Background(), w.config(&out, nil)); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	got := out.String()
	for _, tc := range []struct {
		title         string
		want, unwants []string
	}{
		{titleOrphans + "3", []string{
			w.orphan, w.other, pvNameFor("orphan"), "available", "1Gi", "apps/orphan", "2025-12-31T23:00:00Z", "1h0m0s",
			w.young, "younger than 10m0s by Cinder's clock",
			"--delete deletes",
		}, []string{w.kept, w.unknown, w.neverHeld, w.exported, w.pending}},
		{titleNeverHeld + "1", []string{w.neverHeld, "apps/never-held", "--delete skips them", "--include-never-held-retain"}, []string{w.kept, w.orphan}},
		{titleUnknown + "1", []string{
			w.unknown, contract.MetaReclaimPolicy, "--delete skips them",
			"openstack volume set --property cinder.openstack.org/reclaim-policy=Delete ID", "--include-unknown-policy",
		}, []string{w.orphan, w.kept}},
		{titleKept + "1", []string{w.kept, "apps/kept", "never deletes them"}, []string{w.orphan, w.neverHeld}},
		{titleExported + "1", []string{w.exported, "apps/exported", "attached", "never deletes them"}, []string{w.orphan, w.kept}},
		{titleClaimed + "1", []string{w.pending, "apps/pending", "Pending", "in flight", "never deletes them"}, []string{w.orphan}},
		{titleGone + "1", []string{"pvc-gone", "4d4d4d4d-0000-4000-a000-000000000000", "apps/data-pvc-gone"}, []string{"pvc-other"}},
	} {
		sec := section(got, tc.title)
		if sec == "" {
			t.Errorf("no section %q in:\n%s", tc.title, got)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(sec, want) {
				t.Errorf("section %q lacks %q:\n%s", tc.title, want, sec)
			}
		}
		for _, unwanted := range tc.unwants {
			if strings.Contains(sec, unwanted) {
				t.Errorf("section %q shows %q:\n%s", tc.title, unwanted, sec)
			}
		}
	}
	if strings.Contains(got, titleUnchecked) {
		t.Errorf("a section of unchecked volumes although every check worked:\n%s", got)
	}
	for _, unwanted := range []string{w.bound, w.foreign} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output shows %q:\n%s", unwanted, got)
		}
	}
	if got := w.remaining(); len(got) != 10 {
		t.Errorf("without --delete volumes were deleted: %v", got)
	}
	w.untouched(t, w.bound, w.orphan, w.other, w.young, w.kept, w.neverHeld, w.unknown, w.exported, w.pending, w.foreign)
}

func TestOrphansDelete(t *testing.T) {
	tests := []struct {
		name        string
		answer      string
		yes         bool
		wantDeleted bool
		wantOut     string
	}{
		{"answer no", "n\n", false, false, "Not deleting."},
		{"empty answer", "\n", false, false, "Not deleting."},
		{"no input", "", false, false, "Not deleting."},
		{"answer yes", "y\n", false, true, "deleted in"},
		{"answer YES", "YES\n", false, true, "deleted in"},
		{"--yes", "", true, true, "deleted in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			var out bytes.Buffer
			cfg := w.config(&out, strings.NewReader(tc.answer))
			cfg.Delete, cfg.Yes = true, tc.yes
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			prompted := strings.Contains(out.String(), "delete 2 volumes? [y/N] ")
			if prompted == tc.yes {
				t.Errorf("prompted = %v with --yes = %v:\n%s", prompted, tc.yes, out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
			all := []string{w.bound, w.orphan, w.other, w.young, w.kept, w.neverHeld, w.unknown, w.exported, w.pending, w.foreign}
			want := sorted(all...)
			if tc.wantDeleted {
				// the two orphans of reclaim policy Delete
				want = sorted(slices.DeleteFunc(all, func(id string) bool { return id == w.orphan || id == w.other })...)
			}
			if got := w.remaining(); !slices.Equal(got, want) {
				t.Errorf("volumes left = %v, want %v\n%s", got, want, out.String())
			}
			w.untouched(t, w.bound, w.young, w.kept, w.neverHeld, w.unknown, w.exported, w.pending, w.foreign)
			pvs, err := w.kube.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
			if err != nil || len(pvs.Items) != 3 {
				t.Errorf("PVs = %d (%v), want all 3 kept", len(pvs.Items), err)
			}
		})
	}
}

// Rule: a volume that any PV refers to, however, is never offered.
func TestOrphansNeverOffersAVolumeAPVRefersTo(t *testing.T) {
	tests := []struct {
		name string
		pv   func(name, id string) *corev1.PersistentVolume
	}{
		{"our annotation, PV under another name", func(name, id string) *corev1.PersistentVolume {
			return pv("pvc-renamed-"+name, id, testProvisioner)
		}},
		{"the original provisioner's annotation", func(name, id string) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-legacy-" + name, Annotations: map[string]string{
				contract.AnnLegacyVolumeID:            id,
				"standaloneCinderProvisionerIdentity": "7f1c0b9e-0000-4000-a000-000000000000",
			}}}
		}},
		{"a static iSCSI PV written by hand under a new name (IQN ends in the id)", func(name, id string) *corev1.PersistentVolume {
			return staticISCSIPV("kept-disk-"+name, id)
		}},
		{"a ceph-csi static PV (image volume-<id>)", func(name, id string) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "rbd-static-" + name},
				Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
					Driver: "rbd.csi.ceph.com", VolumeHandle: "rbd-static",
					VolumeAttributes: map[string]string{"staticVolume": "true", "pool": "volumes", "imageName": "volume-" + id},
				}}},
			}
		}},
		{"a CSI volumeHandle (cinder-csi)", func(name, id string) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "cinder-csi-pv-" + name},
				Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
					Driver: "cinder.csi.openstack.org", VolumeHandle: id,
				}}},
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.add(t, tc.pv("a", w.orphan), tc.pv("b", w.neverHeld), tc.pv("c", w.unknown))
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.IncludeUnknownPolicy, cfg.MinAge = true, -1
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			for _, id := range []string{w.orphan, w.neverHeld, w.unknown} {
				if !w.exists(id) {
					t.Errorf("volume %s deleted although a PV refers to it:\n%s", id, out.String())
				}
				if strings.Contains(out.String(), id) {
					t.Errorf("volume %s listed although a PV refers to it:\n%s", id, out.String())
				}
			}
			w.untouched(t, w.orphan, w.neverHeld, w.unknown)
		})
	}
}

// Rule: a volume whose claim exists (Pending, Terminating, Bound) is never
// offered; a claim of that name with another uid is another claim.
func TestOrphansNeverOffersAVolumeWhoseClaimExists(t *testing.T) {
	tests := []struct {
		name string
		// setup adds a volume and the cluster's objects; it returns the volume
		setup    func(t *testing.T, w *world) string
		wantKept bool
		wantNote string
	}{
		{"claim Pending with the provisioner's finalizer (in flight)", func(t *testing.T, w *world) string {
			w.add(t, claim("orphan", corev1.ClaimPending, contract.FinalizerProvisioning))
			return w.orphan
		}, true, "in flight"},
		{"claim Pending without finalizer (made before the finalizer)", func(t *testing.T, w *world) string {
			w.add(t, claim("orphan", corev1.ClaimPending))
			return w.orphan
		}, true, "Pending"},
		{"claim Terminating", func(t *testing.T, w *world) string {
			w.add(t, terminating(claim("orphan", corev1.ClaimPending, "kubernetes.io/pvc-protection")))
			return w.orphan
		}, true, "Terminating"},
		{"claim Terminating, held by the provisioner's finalizer", func(t *testing.T, w *world) string {
			w.add(t, terminating(claim("orphan", corev1.ClaimPending, contract.FinalizerProvisioning)))
			return w.orphan
		}, true, "Terminating"},
		{"claim Bound to another PV", func(t *testing.T, w *world) string {
			c := claim("orphan", corev1.ClaimBound)
			c.Spec.VolumeName = "pvc-elsewhere"
			w.add(t, c)
			return w.orphan
		}, true, "Bound to PV pvc-elsewhere"},
		{"volume named otherwise, its pv-name metadata carries the claim's uid", func(t *testing.T, w *world) string {
			id := w.cinder.AddVolume(cinder.Volume{Name: "renamed-by-admin", SizeGiB: 1, Metadata: metaFor(testCluster, "renamed", "Delete"), CreatedAt: w.cinder.Now().Add(-time.Hour)})
			w.add(t, claim("renamed", corev1.ClaimPending))
			return id
		}, true, "Pending"},
		{"no uid in its name or metadata: a claim of the recorded name may be its own", func(t *testing.T, w *world) string {
			md := metaFor(testCluster, "by-hand", "Delete")
			md[contract.MetaPVName] = "by-hand-disk"
			id := w.cinder.AddVolume(cinder.Volume{Name: "by-hand-disk", SizeGiB: 1, Metadata: md, CreatedAt: w.cinder.Now().Add(-time.Hour)})
			c := claim("by-hand", corev1.ClaimPending)
			c.UID = "99999999-0000-4000-a000-000000000000"
			w.add(t, c)
			return id
		}, true, "cannot tell"},
		{"a claim of that name with another uid: the volume's claim is gone", func(t *testing.T, w *world) string {
			c := claim("orphan", corev1.ClaimPending, contract.FinalizerProvisioning)
			c.UID = "99999999-0000-4000-a000-000000000000"
			w.add(t, c)
			return w.orphan
		}, false, ""},
		{"no claim", func(t *testing.T, w *world) string { return w.orphan }, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			id := tc.setup(t, w)
			w.cinder.ResetCalls()
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.MinAge = -1
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if got := w.exists(id); got != tc.wantKept {
				t.Errorf("volume kept = %v, want %v:\n%s", got, tc.wantKept, out.String())
			}
			if !tc.wantKept {
				return
			}
			w.untouched(t, id)
			if sec := section(out.String(), titleClaimed); !strings.Contains(sec, id) || !strings.Contains(lineOf(sec, id), tc.wantNote) {
				t.Errorf("claim section does not list %s with %q:\n%s", id, tc.wantNote, out.String())
			}
		})
	}
}

// cinderWithoutDate is a Cinder whose answers carry no Date header: no
// volume's age is known.
type cinderWithoutDate struct {
	*fake.Fake
	list, get bool // which reads lose their date
}

func (c cinderWithoutDate) ListVolumes(ctx context.Context, md map[string]string) ([]cinder.Volume, error) {
	vols, err := c.Fake.ListVolumes(ctx, md)
	for i := range vols {
		if c.list {
			vols[i].ReadAt = time.Time{}
		}
	}
	return vols, err
}

func (c cinderWithoutDate) GetVolume(ctx context.Context, id string) (*cinder.Volume, error) {
	v, err := c.Fake.GetVolume(ctx, id)
	if v != nil && c.get {
		v.ReadAt = time.Time{}
	}
	return v, err
}

// Rule: age is Cinder's clock (its Date minus created_at), never the
// workstation's; unknown means young.
func TestOrphansJudgesAgeByCindersClock(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration // by Cinder's clock
		minAge   time.Duration
		noDate   cinderWithoutDate
		wantKept bool
		wantNote string
	}{
		// the workstation's clock is months ahead of Cinder's here
		{"a minute old by Cinder's clock", time.Minute, 0, cinderWithoutDate{}, true, "younger than 10m0s by Cinder's clock"},
		{"eleven minutes old by Cinder's clock", 11 * time.Minute, 0, cinderWithoutDate{}, false, ""},
		{"two seconds old, --min-age 1s", 2 * time.Second, time.Second, cinderWithoutDate{}, false, ""},
		{"half a second old, --min-age 1s", 500 * time.Millisecond, time.Second, cinderWithoutDate{}, true, "younger than 1s by Cinder's clock"},
		{"age unknown (no Date header), no age protection", time.Hour, -1, cinderWithoutDate{list: true, get: true}, true, "age unknown"},
		{"age unknown at the check before deleting", time.Hour, -1, cinderWithoutDate{get: true}, true, "age unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			id := addVolume(w.cinder, testCluster, "aged", "Delete", tc.age)
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.MinAge = tc.minAge
			if tc.noDate.list || tc.noDate.get {
				tc.noDate.Fake = w.cinder
				cfg.Cinder = tc.noDate
			}
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if got := w.exists(id); got != tc.wantKept {
				t.Errorf("volume kept = %v, want %v:\n%s", got, tc.wantKept, out.String())
			}
			if tc.wantKept {
				w.untouched(t, id)
				if !mentions(out.String(), id, tc.wantNote) {
					t.Errorf("output does not say %q of %s:\n%s", tc.wantNote, id, out.String())
				}
			}
		})
	}
}

// Rule: a volume with an export, in any state, is never deleted; without a
// PV it is listed as exported (Retain: kept on purpose).
func TestOrphansNeverDeletesAnExportedVolume(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		method cinder.ExportMethod
		leave  func(t *testing.T, f *fake.Fake, id string)
	}{
		{"attached export", cinder.ExportAttachments, func(t *testing.T, f *fake.Fake, id string) {
			if _, err := f.Export(ctx, id, testConnector); err != nil {
				t.Fatal(err)
			}
		}},
		{"reserved attachment (not in the volume view)", cinder.ExportAttachments, func(t *testing.T, f *fake.Fake, id string) {
			f.CrashAt(fake.OpAttachmentCreate)
			_, _ = f.Export(ctx, id, testConnector)
			f.Restart()
		}},
		{"attaching attachment (backend export done, os-complete not sent)", cinder.ExportAttachments, func(t *testing.T, f *fake.Fake, id string) {
			f.CrashAt(fake.OpAttachmentComplete)
			_, _ = f.Export(ctx, id, testConnector)
			f.Restart()
		}},
		{"legacy export", cinder.ExportLegacy, func(t *testing.T, f *fake.Fake, id string) {
			if _, err := f.Export(ctx, id, testConnector); err != nil {
				t.Fatal(err)
			}
		}},
		{"legacy reservation without a record", cinder.ExportLegacy, func(t *testing.T, f *fake.Fake, id string) {
			f.CrashAt(fake.OpReserve)
			_, _ = f.Export(ctx, id, testConnector)
			f.Restart()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.cinder.SetExportMethod(tc.method)
			tc.leave(t, w.cinder, w.orphan)
			tc.leave(t, w.cinder, w.neverHeld)
			if v, _ := w.cinder.Volume(w.orphan); v.Status == cinder.StatusAvailable {
				t.Fatalf("the orphan is available: the case tests nothing")
			}
			w.cinder.ResetCalls()
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.MinAge = -1
			if err := Orphans(ctx, cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			for _, id := range []string{w.orphan, w.neverHeld} {
				if !w.exists(id) {
					t.Errorf("exported volume %s deleted:\n%s", id, out.String())
				}
			}
			w.untouched(t, w.orphan, w.neverHeld)
			if sec := section(out.String(), titleExported+"2"); !strings.Contains(sec, w.orphan) {
				t.Errorf("the exported volume is not in the exported section:\n%s", out.String())
			}
			if sec := section(out.String(), titleKept+"2"); !strings.Contains(sec, w.neverHeld) {
				t.Errorf("the exported Retain volume is not kept on purpose:\n%s", out.String())
			}
		})
	}
}

// Rule: a Retain volume that no PV ever held (never exported, no PV, no
// claim) is an orphan, listed apart from the kept ones; --delete takes it
// only with IncludeNeverHeldRetain.
func TestOrphansRetainVolumeNoPVEverHeldIsAnOrphan(t *testing.T) {
	for _, include := range []bool{false, true} {
		t.Run(fmt.Sprintf("include never held Retain %v", include), func(t *testing.T) {
			w := newWorld(t)
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.IncludeNeverHeldRetain = include
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if sec := section(out.String(), titleNeverHeld+"1"); !strings.Contains(sec, w.neverHeld) {
				t.Errorf("never held Retain volume not in its section:\n%s", out.String())
			}
			if sec := section(out.String(), titleKept+"1"); strings.Contains(sec, w.neverHeld) || !strings.Contains(sec, w.kept) {
				t.Errorf("kept on purpose lists the never held volume, or not the kept one:\n%s", out.String())
			}
			if w.exists(w.neverHeld) == include {
				t.Errorf("never held Retain volume kept = %v with IncludeNeverHeldRetain = %v:\n%s", w.exists(w.neverHeld), include, out.String())
			}
			if !w.exists(w.kept) {
				t.Errorf("Retain volume kept on purpose deleted:\n%s", out.String())
			}
			w.untouched(t, w.kept)
			if !include {
				w.untouched(t, w.neverHeld)
			}
		})
	}
}

// Rule: a second volume of one name, next to the one a PV holds, is listed
// as such.
func TestOrphansListsASecondVolumeOfOneName(t *testing.T) {
	tests := []struct {
		name     string
		claim    bool // the claim exists, bound to the first volume's PV
		title    string
		wantKept bool
	}{
		{"claim gone: an orphan", false, titleOrphans + "4", false},
		{"claim bound to the first: never deleted", true, titleClaimed + "2", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			first := addVolume(w.cinder, testCluster, "dup", "Delete", 2*time.Hour)
			second := addVolume(w.cinder, testCluster, "dup", "Delete", time.Hour)
			w.add(t, pv(pvNameFor("dup"), first, testProvisioner))
			if tc.claim {
				c := claim("dup", corev1.ClaimBound)
				c.Spec.VolumeName = pvNameFor("dup")
				w.add(t, c)
			}
			w.cinder.ResetCalls()
			var out bytes.Buffer
			if err := Orphans(context.Background(), w.deleteConfig(&out)); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			note := "second volume named " + pvNameFor("dup") + ": PV " + pvNameFor("dup") + " holds " + first
			if sec := section(out.String(), tc.title); !strings.Contains(lineOf(sec, second), note) {
				t.Errorf("section %q does not list %s with %q:\n%s", tc.title, second, note, out.String())
			}
			if !w.exists(first) {
				t.Errorf("the volume a PV holds was deleted:\n%s", out.String())
			}
			if got := w.exists(second); got != tc.wantKept {
				t.Errorf("second volume kept = %v, want %v:\n%s", got, tc.wantKept, out.String())
			}
			w.untouched(t, first)
		})
	}
}

// Rule: just before deleting (after the prompt, which may wait minutes)
// each volume is checked again, live; what changed is skipped and said.
func TestOrphansDeleteRechecksAfterTheConfirmation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		change  func(t *testing.T, w *world)
		wantOut string
		kept    bool
	}{
		{"a static PV under a new name now refers to it", func(t *testing.T, w *world) {
			w.add(t, staticISCSIPV("kept-disk", w.orphan))
		}, "skipped: PV kept-disk refers to it now", true},
		{"a PV of its name now exists", func(t *testing.T, w *world) {
			w.add(t, pv(pvNameFor("orphan"), w.orphan, testProvisioner))
		}, "skipped: PV " + pvNameFor("orphan") + " refers to it now", true},
		{"it is exported now", func(t *testing.T, w *world) {
			if _, err := w.cinder.Export(ctx, w.orphan, testConnector); err != nil {
				t.Fatal(err)
			}
		}, "skipped: exported now", true},
		{"an export is being made (reserved attachment)", func(t *testing.T, w *world) {
			w.cinder.CrashAt(fake.OpAttachmentCreate)
			_, _ = w.cinder.Export(ctx, w.orphan, testConnector)
			w.cinder.Restart()
		}, "skipped: exported now", true},
		{"its status is no longer available or error", func(t *testing.T, w *world) {
			if err := w.cinder.SetStatus(w.orphan, "backing-up"); err != nil {
				t.Fatal(err)
			}
		}, "skipped: status backing-up now", true},
		{"its claim exists now", func(t *testing.T, w *world) {
			w.add(t, claim("orphan", corev1.ClaimPending, contract.FinalizerProvisioning))
		}, "skipped: claim apps/orphan exists now", true},
		{"its reclaim policy is now Retain", func(t *testing.T, w *world) {
			w.setMeta(t, w.orphan, map[string]string{contract.MetaReclaimPolicy: "Retain"})
		}, "skipped: its reclaim policy is now Retain", true},
		{"its cluster id changed", func(t *testing.T, w *world) {
			w.setMeta(t, w.orphan, map[string]string{contract.MetaClusterID: "c2"})
		}, `skipped: its cluster id is now "c2"`, true},
		{"it is gone", func(t *testing.T, w *world) {
			if err := w.cinder.DeleteVolume(ctx, w.orphan); err != nil {
				t.Fatal(err)
			}
		}, "already gone", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			var out bytes.Buffer
			in := &answerAfter{change: func() { tc.change(t, w); w.cinder.ResetCalls() }, r: strings.NewReader("y\n")}
			cfg := w.config(&out, in)
			cfg.Delete = true
			if err := Orphans(ctx, cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if !strings.Contains(lineOf(out.String(), w.orphan+" ("), tc.wantOut) {
				t.Errorf("output lacks %q for %s:\n%s", tc.wantOut, w.orphan, out.String())
			}
			if tc.kept {
				if !w.exists(w.orphan) {
					t.Errorf("volume deleted although it changed after the listing:\n%s", out.String())
				}
				w.untouched(t, w.orphan)
			}
			if w.exists(w.other) {
				t.Errorf("the other orphan was not deleted:\n%s", out.String())
			}
		})
	}
}

func chapSecret(namespace, pvName, labelPV string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: mapper.ChapSecretName(pvName), Labels: map[string]string{mapper.LabelPV: labelPV}},
		Type:       "kubernetes.io/iscsi-chap",
	}
}

func (w *world) secretExists(t *testing.T, namespace, name string) bool {
	t.Helper()
	_, err := w.kube.CoreV1().Secrets(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// Rule: deleting a volume deletes its CHAP Secret in the namespace recorded
// on the volume (else --secret-namespace), when it is labelled for the
// volume's PV and no PV refers to it.
func TestOrphansDeleteRemovesTheCHAPSecret(t *testing.T) {
	name := mapper.ChapSecretName(pvNameFor("orphan"))
	tests := []struct {
		name string
		// setup prepares the world; it returns where the Secret is
		setup      func(t *testing.T, w *world) (namespace string)
		secretNS   string // --secret-namespace
		wantGone   bool
		wantVolume bool // the volume stays
		wantOut    string
	}{
		{"in the namespace recorded on the volume", func(t *testing.T, w *world) string {
			w.setMeta(t, w.orphan, map[string]string{contract.MetaSecretNamespace: "tenant-chap"})
			w.add(t, chapSecret("tenant-chap", pvNameFor("orphan"), pvNameFor("orphan")), chapSecret(testSecretNS, pvNameFor("orphan"), pvNameFor("orphan")))
			return "tenant-chap"
		}, testSecretNS, true, false, "Secret tenant-chap/" + name + " deleted"},
		{"none recorded: in --secret-namespace", func(t *testing.T, w *world) string {
			w.add(t, chapSecret(testSecretNS, pvNameFor("orphan"), pvNameFor("orphan")))
			return testSecretNS
		}, testSecretNS, true, false, "Secret " + testSecretNS + "/" + name + " deleted"},
		{"labelled for another PV", func(t *testing.T, w *world) string {
			w.add(t, chapSecret(testSecretNS, pvNameFor("orphan"), "pvc-someone-else"))
			return testSecretNS
		}, testSecretNS, false, false, "not labelled " + mapper.LabelPV + "=" + pvNameFor("orphan")},
		{"a PV refers to it", func(t *testing.T, w *world) string {
			w.add(t, chapSecret(testSecretNS, pvNameFor("orphan"), pvNameFor("orphan")))
			other := staticISCSIPV("other-disk", "6f6f6f6f-0000-4000-a000-000000000000")
			other.Spec.ISCSI.SessionCHAPAuth = true
			other.Spec.ISCSI.SecretRef = &corev1.SecretReference{Namespace: testSecretNS, Name: name}
			w.add(t, other)
			return testSecretNS
		}, testSecretNS, false, false, "PV other-disk refers to it"},
		{"the volume is not deleted (young)", func(t *testing.T, w *world) string {
			w.add(t, chapSecret(testSecretNS, pvNameFor("young"), pvNameFor("young")))
			return testSecretNS
		}, testSecretNS, false, false, ""},
		{"no namespace known", func(t *testing.T, w *world) string {
			w.add(t, chapSecret(testSecretNS, pvNameFor("orphan"), pvNameFor("orphan")))
			return testSecretNS
		}, "", false, false, "namespace unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ns := tc.setup(t, w)
			w.cinder.ResetCalls()
			var out bytes.Buffer
			cfg := w.deleteConfig(&out)
			cfg.SecretNamespace = tc.secretNS
			if err := Orphans(context.Background(), cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if w.exists(w.orphan) != tc.wantVolume {
				t.Errorf("orphan volume kept = %v, want %v:\n%s", w.exists(w.orphan), tc.wantVolume, out.String())
			}
			secretName := name
			if strings.Contains(tc.name, "young") {
				secretName = mapper.ChapSecretName(pvNameFor("young"))
			}
			if gone := !w.secretExists(t, ns, secretName); gone != tc.wantGone {
				t.Errorf("Secret %s/%s gone = %v, want %v:\n%s", ns, secretName, gone, tc.wantGone, out.String())
			}
			if ns != testSecretNS && !w.secretExists(t, testSecretNS, name) {
				t.Errorf("the Secret of that name in --secret-namespace was deleted too:\n%s", out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

// Rule: a listing, a check or a deletion that fails makes the command fail;
// a volume whose check failed is not deleted.
func TestOrphansFailuresAreErrors(t *testing.T) {
	unavailable := cinder.NewError("x", "", cinder.ErrUnavailable, "")
	tests := []struct {
		name    string
		inject  func(w *world)
		wantErr string
		// kept: the orphan stays; deleted: the other orphan goes anyway
		kept, otherDeleted bool
		unchecked          bool // the orphan is listed as not checked
	}{
		{"its exports cannot be listed", func(w *world) {
			w.cinder.Hook(fake.OpListExports, func(_ context.Context, c fake.Call) error {
				if c.VolumeID == w.orphan {
					return unavailable
				}
				return nil
			})
		}, "list exports of volume", true, true, true},
		{"its claim cannot be read", func(w *world) {
			w.kube.PrependReactor("get", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.(k8stesting.GetAction).GetName() == "orphan" {
					return true, nil, errors.New("etcdserver: request timed out")
				}
				return false, nil, nil
			})
		}, "claim apps/orphan", true, true, true},
		{"its deletion fails", func(w *world) {
			w.cinder.Hook(fake.OpDeleteVolume, func(_ context.Context, c fake.Call) error {
				if c.VolumeID == w.orphan {
					return unavailable
				}
				return nil
			})
		}, "1 of 2 volumes not deleted: ", true, true, false},
		{"its check before deleting fails", func(w *world) {
			w.cinder.Hook(fake.OpGetVolume, func(_ context.Context, c fake.Call) error {
				if c.VolumeID == w.orphan {
					return unavailable
				}
				return nil
			})
		}, "1 of 2 volumes not deleted: ", true, true, false},
		{"PVs cannot be listed", func(w *world) {
			w.kube.PrependReactor("list", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, errors.New("etcdserver: request timed out")
			})
		}, "list PersistentVolumes", true, false, false},
		{"volumes cannot be listed", func(w *world) {
			w.cinder.FailNext(fake.OpListVolumes, unavailable)
		}, "list Cinder volumes", true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.inject(w)
			var out bytes.Buffer
			err := Orphans(context.Background(), w.deleteConfig(&out))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one saying %q\n%s", err, tc.wantErr, out.String())
			}
			if w.exists(w.orphan) != tc.kept {
				t.Errorf("orphan kept = %v, want %v:\n%s", w.exists(w.orphan), tc.kept, out.String())
			}
			if !w.exists(w.other) != tc.otherDeleted {
				t.Errorf("other orphan deleted = %v, want %v:\n%s", !w.exists(w.other), tc.otherDeleted, out.String())
			}
			if tc.unchecked && !strings.Contains(section(out.String(), titleUnchecked+"1"), w.orphan) {
				t.Errorf("the orphan is not listed as not checked:\n%s", out.String())
			}
			for _, c := range w.cinder.Calls() {
				if c.VolumeID == w.orphan && c.Op == fake.OpDeleteVolume && tc.name != "its deletion fails" {
					t.Errorf("DeleteVolume called on a volume whose check failed")
				}
			}
		})
	}
}

// Rule: only volumes available or in error are deleted; Cinder may still be
// working on the others.
func TestOrphansDeletesOnlyAvailableOrErrorVolumes(t *testing.T) {
	tests := []struct {
		status   string
		noHost   bool // the scheduler never placed it
		wantKept bool
	}{
		{cinder.StatusCreating, false, true},
		{cinder.StatusCreating + " (never scheduled)", true, true},
		{"downloading", false, true},
		{"maintenance", false, true},
		{cinder.StatusErrorDeleting, false, true},
		{cinder.StatusError, false, false},
		{cinder.StatusAvailable, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.status, func(t *testing.T) {
			w := newWorld(t)
			status, _, _ := strings.Cut(tc.status, " ")
			if err := w.cinder.SetStatus(w.orphan, status); err != nil {
				t.Fatal(err)
			}
			if tc.noHost {
				if err := w.cinder.SetHost(w.orphan, ""); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			if err := Orphans(context.Background(), w.deleteConfig(&out)); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if got := w.exists(w.orphan); got != tc.wantKept {
				t.Errorf("volume in status %s kept = %v, want %v:\n%s", status, got, tc.wantKept, out.String())
			}
			if tc.wantKept {
				w.untouched(t, w.orphan)
				if !strings.Contains(lineOf(section(out.String(), titleOrphans), w.orphan), "status "+status) {
					t.Errorf("output does not say why %s stays:\n%s", w.orphan, out.String())
				}
			}
		})
	}
}

func TestOrphansIncludeUnknownPolicy(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.config(&out, strings.NewReader("y\n"))
	cfg.Delete, cfg.IncludeUnknownPolicy = true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"--include-unknown-policy: --delete deletes them like the orphans above.",
		"delete 3 volumes? [y/N] ",
		w.unknown + " (" + pvNameFor("unknown") + "): deleted in",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got, want := w.remaining(), sorted(w.bound, w.young, w.kept, w.neverHeld, w.exported, w.pending, w.foreign); !slices.Equal(got, want) {
		t.Errorf("volumes left = %v, want %v", got, want)
	}
}

func TestOrphansIncludeUnknownPolicyStillSparesYoungVolumes(t *testing.T) {
	w := newWorld(t)
	young := addVolume(w.cinder, testCluster, "young-unknown", "", time.Minute)
	var out bytes.Buffer
	cfg := w.deleteConfig(&out)
	cfg.IncludeUnknownPolicy = true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	if !w.exists(young) {
		t.Errorf("a young volume of unknown policy was deleted:\n%s", out.String())
	}
	if sec := section(out.String(), titleUnknown+"2"); !strings.Contains(lineOf(sec, young), "younger than 10m0s") {
		t.Errorf("unknown section does not say the young volume is spared:\n%s", out.String())
	}
}

func TestPolicyOf(t *testing.T) {
	for value, want := range map[string]reclaimPolicy{
		"Delete":  policyDelete,
		"delete":  policyDelete,
		"Retain":  policyRetain,
		"RETAIN":  policyRetain,
		"":        policyUnknown,
		"Recycle": policyUnknown,
		"keep":    policyUnknown,
	} {
		if got := policyOf(cinder.Volume{Metadata: metaFor(testCluster, "x", value)}); got != want {
			t.Errorf("policyOf(%q) = %d, want %d", value, got, want)
		}
	}
	if got := policyOf(cinder.Volume{}); got != policyUnknown {
		t.Errorf("policyOf(no metadata) = %d, want unknown", got)
	}
}

// unfiltered is a Cinder that ignores the metadata filter of ListVolumes.
type unfiltered struct{ *fake.Fake }

func (u unfiltered) ListVolumes(ctx context.Context, _ map[string]string) ([]cinder.Volume, error) {
	return u.Fake.ListVolumes(ctx, nil)
}

func TestOrphansNeverDeletesAForeignVolumeEvenIfCinderFiltersBadly(t *testing.T) {
	// A cluster id that is a prefix of others must match neither.
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.deleteConfig(&out)
	cfg.Cinder = unfiltered{w.cinder}
	cfg.ClusterID = "c" // prefix of c1 and c10
	cfg.IncludeUnknownPolicy, cfg.MinAge = true, -1
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	if got := w.remaining(); len(got) != 10 {
		t.Errorf("volumes deleted for cluster %q: left %v", cfg.ClusterID, got)
	}
	if !strings.Contains(out.String(), "Nothing to delete.") {
		t.Errorf("output lacks %q:\n%s", "Nothing to delete.", out.String())
	}
	for _, id := range []string{w.orphan, w.foreign} {
		if strings.Contains(out.String(), id) {
			t.Errorf("output lists %s of another cluster:\n%s", id, out.String())
		}
	}
}

func TestOrphansRequiresAClusterID(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.config(&out, nil)
	cfg.ClusterID = ""
	if err := Orphans(context.Background(), cfg); err == nil {
		t.Fatal("no error without a cluster id")
	}
	if len(w.cinder.Calls()) != 0 {
		t.Errorf("calls without a cluster id: %v", w.cinder.Ops())
	}
}
