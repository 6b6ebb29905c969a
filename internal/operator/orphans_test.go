package operator

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
)

const (
	testCluster     = "c1"
	testProvisioner = "openstack.org/standalone-cinder"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// meta is the metadata the provisioner writes on a volume of a class with
// reclaim policy Delete.
func meta(cluster, pv string) map[string]string {
	return metaPolicy(cluster, pv, "Delete")
}

// metaPolicy is meta with another reclaim policy; "": none recorded (a
// volume made before the provisioner recorded it).
func metaPolicy(cluster, pv, policy string) map[string]string {
	m := map[string]string{
		provisioner.MetaClusterID:    cluster,
		provisioner.MetaPVName:       pv,
		provisioner.MetaPVCNamespace: "apps",
		provisioner.MetaPVCName:      "data-" + pv,
	}
	if policy != "" {
		m[provisioner.MetaReclaimPolicy] = policy
	}
	return m
}

func pv(name, volumeID, identity string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			provisioner.AnnVolumeID:            volumeID,
			provisioner.AnnProvisionerIdentity: identity,
		}},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "apps", Name: "data-" + name}},
	}
}

// world is a cluster with:
//   - bound: volume with a PV
//   - orphan: volume of the cluster without a PV (available, old, policy Delete)
//   - young: volume of the cluster, available for 1 minute, no PV (a provisioner may be exporting it)
//   - stuck: volume of the cluster creating for an hour that the scheduler never placed, no PV
//   - kept: volume of a Retain class whose PV an admin deleted (old, available)
//   - unknown: old volume without a PV whose metadata records no reclaim policy
//   - foreign: volume of another cluster without a PV
//   - pv-gone: PV of the provisioner whose volume does not exist
//   - pv-other: PV of another provisioner whose volume does not exist
type world struct {
	cinder                                            *fake.Fake
	kube                                              *kubefake.Clientset
	orphan, young, stuck, kept, unknown, foreign, bnd string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	f := fake.New()
	w := &world{cinder: f}
	w.bnd = f.AddVolume(cinder.Volume{Name: "pvc-bound", SizeGiB: 1, Metadata: meta(testCluster, "pvc-bound"), CreatedAt: now.Add(-time.Hour)})
	w.orphan = f.AddVolume(cinder.Volume{Name: "pvc-orphan", SizeGiB: 2, Metadata: meta(testCluster, "pvc-orphan"), CreatedAt: now.Add(-time.Hour)})
	w.young = f.AddVolume(cinder.Volume{Name: "pvc-young", SizeGiB: 1, Status: cinder.StatusAvailable, Metadata: meta(testCluster, "pvc-young"), CreatedAt: now.Add(-time.Minute)})
	w.stuck = f.AddVolume(cinder.Volume{Name: "pvc-stuck", SizeGiB: 1, Status: cinder.StatusCreating, Metadata: meta(testCluster, "pvc-stuck"), CreatedAt: now.Add(-time.Hour)})
	// its create never reached a backend: Cinder deletes it in any status
	if err := f.SetHost(w.stuck, ""); err != nil {
		t.Fatal(err)
	}
	w.kept = f.AddVolume(cinder.Volume{Name: "pvc-kept", SizeGiB: 3, Metadata: metaPolicy(testCluster, "pvc-kept", "Retain"), CreatedAt: now.Add(-24 * time.Hour)})
	w.unknown = f.AddVolume(cinder.Volume{Name: "pvc-unknown", SizeGiB: 4, Metadata: metaPolicy(testCluster, "pvc-unknown", ""), CreatedAt: now.Add(-24 * time.Hour)})
	w.foreign = f.AddVolume(cinder.Volume{Name: "pvc-foreign", SizeGiB: 1, Metadata: meta("c10", "pvc-foreign"), CreatedAt: now.Add(-time.Hour)})
	w.kube = kubefake.NewClientset([]runtime.Object{
		pv("pvc-bound", w.bnd, testProvisioner),
		pv("pvc-gone", "4d4d4d4d-0000-4000-a000-000000000000", testProvisioner),
		pv("pvc-other", "5e5e5e5e-0000-4000-a000-000000000000", "other.example.com/cinder"),
	}...)
	return w
}

func (w *world) config(out *bytes.Buffer, in string) OrphansConfig {
	return OrphansConfig{
		Cinder:          w.cinder,
		Kube:            w.kube,
		Out:             out,
		In:              strings.NewReader(in),
		ClusterID:       testCluster,
		ProvisionerName: testProvisioner,
		Connector:       testConnector,
		Now:             func() time.Time { return now },
	}
}

func (w *world) remaining() []string {
	var ids []string
	for _, v := range w.cinder.Volumes() {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids
}

// untouched fails for any call other than GetVolume on the given volumes.
func (w *world) untouched(t *testing.T, ids ...string) {
	t.Helper()
	for _, c := range w.cinder.Steps() {
		if slices.Contains(ids, c.VolumeID) && c.Op != fake.OpGetVolume {
			t.Errorf("%s called on volume %s, which must not be touched", c.Op, c.VolumeID)
		}
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
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

const (
	titleOrphans = "Cinder volumes of cluster c1 without a PV (reclaim policy Delete): "
	titleKept    = "Cinder volumes of cluster c1 without a PV, kept on purpose (reclaim policy Retain): "
	titleUnknown = "Cinder volumes of cluster c1 without a PV, reclaim policy unknown: "
)

func TestOrphansListsEachKindInItsSection(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	if err := Orphans(context.Background(), w.config(&out, "")); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	got := out.String()
	for _, tc := range []struct {
		title         string
		want, unwants []string
	}{
		{titleOrphans + "3", []string{
			w.orphan, "pvc-orphan", "available", "2Gi", "apps/data-pvc-orphan", "2026-03-01T11:00:00Z (1h0m0s ago)",
			w.young, w.stuck,
			w.young + " is younger than 10m0s: a provisioner may be working on it; not deleted",
		}, []string{w.kept, w.unknown, w.stuck + " is younger"}},
		{titleKept + "1", []string{w.kept, "pvc-kept", "3Gi", "apps/data-pvc-kept", "never deletes them"}, []string{w.orphan, w.unknown}},
		{titleUnknown + "1", []string{
			w.unknown, "pvc-unknown", "4Gi", provisioner.MetaReclaimPolicy, "--delete skips them",
			"openstack volume set --property cinder.openstack.org/reclaim-policy=Delete ID", "--include-unknown-policy",
		}, []string{w.orphan, w.kept, "deletes them like the orphans"}},
		{"PVs of provisioner openstack.org/standalone-cinder whose Cinder volume is gone: 1", []string{
			"pvc-gone", "4d4d4d4d-0000-4000-a000-000000000000", "apps/data-pvc-gone",
		}, []string{"pvc-other"}},
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
	for _, unwanted := range []string{w.bnd, w.foreign} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output shows %q:\n%s", unwanted, got)
		}
	}
	if got := w.remaining(); len(got) != 7 {
		t.Errorf("without --delete volumes were deleted: %v", got)
	}
	w.untouched(t, w.bnd, w.orphan, w.young, w.stuck, w.kept, w.unknown, w.foreign)
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
			cfg := w.config(&out, tc.answer)
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
			want := sorted(w.bnd, w.orphan, w.young, w.stuck, w.kept, w.unknown, w.foreign)
			if tc.wantDeleted {
				// the old stuck creating volume goes too; the young one,
				// the Retain one, the one of unknown policy and the
				// foreign one are never touched
				want = sorted(w.bnd, w.young, w.kept, w.unknown, w.foreign)
			}
			if got := w.remaining(); !slices.Equal(got, want) {
				t.Errorf("volumes left = %v, want %v", got, want)
			}
			w.untouched(t, w.foreign, w.young, w.bnd, w.kept, w.unknown)
			pvs, err := w.kube.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
			if err != nil || len(pvs.Items) != 3 {
				t.Errorf("PVs = %d (%v), want all 3 kept", len(pvs.Items), err)
			}
		})
	}
}

func TestOrphansNeverDeletesARetainVolume(t *testing.T) {
	// Whatever the flags: no age protection, unknown policies included.
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes, cfg.IncludeUnknownPolicy, cfg.MinAge = true, true, true, -1
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	if _, ok := w.cinder.Volume(w.kept); !ok {
		t.Errorf("the Retain volume was deleted:\n%s", out.String())
	}
	w.untouched(t, w.kept)
	if strings.Contains(out.String(), w.kept+" (pvc-kept)") {
		t.Errorf("the Retain volume was offered for deletion:\n%s", out.String())
	}
}

func TestOrphansIncludeUnknownPolicy(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.config(&out, "y\n")
	cfg.Delete, cfg.IncludeUnknownPolicy = true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"--include-unknown-policy: --delete deletes them like the orphans above.",
		"delete 3 volumes? [y/N] ",
		w.unknown + " (pvc-unknown): deleted in",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got, want := w.remaining(), sorted(w.bnd, w.young, w.kept, w.foreign); !slices.Equal(got, want) {
		t.Errorf("volumes left = %v, want %v", got, want)
	}
}

func TestOrphansIncludeUnknownPolicyStillSparesYoungVolumes(t *testing.T) {
	w := newWorld(t)
	young := w.cinder.AddVolume(cinder.Volume{Name: "pvc-young-unknown", SizeGiB: 1, Metadata: metaPolicy(testCluster, "pvc-young-unknown", ""), CreatedAt: now.Add(-time.Minute)})
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes, cfg.IncludeUnknownPolicy = true, true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	if _, ok := w.cinder.Volume(young); !ok {
		t.Errorf("a young volume of unknown policy was deleted:\n%s", out.String())
	}
	if sec := section(out.String(), titleUnknown+"2"); !strings.Contains(sec, young+" is younger than 10m0s") {
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
		if got := policyOf(cinder.Volume{Metadata: metaPolicy(testCluster, "pvc-x", value)}); got != want {
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
	cfg := w.config(&out, "")
	cfg.Cinder = unfiltered{w.cinder}
	cfg.ClusterID = "c" // prefix of c1 and c10
	cfg.Delete, cfg.Yes, cfg.IncludeUnknownPolicy = true, true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	if got := w.remaining(); len(got) != 7 {
		t.Errorf("volumes deleted for cluster %q: left %v", cfg.ClusterID, got)
	}
	for _, want := range []string{"(reclaim policy Delete): 0", "(reclaim policy Retain): 0", "reclaim policy unknown: 0", "Nothing to delete."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestOrphansAVolumeNamedByALegacyPVIsNoOrphan(t *testing.T) {
	// A PV of the original standalone-cinder provisioner names its volume
	// with cinderVolumeId only, and has another name than the volume's.
	w := newWorld(t)
	legacy := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-legacy", Annotations: map[string]string{
		annLegacyVolumeID:                     w.orphan,
		"standaloneCinderProvisionerIdentity": "7f1c0b9e-0000-4000-a000-000000000000",
	}}}
	if _, err := w.kube.CoreV1().PersistentVolumes().Create(context.Background(), legacy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes = true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	if _, ok := w.cinder.Volume(w.orphan); !ok {
		t.Errorf("volume of a legacy PV deleted:\n%s", out.String())
	}
	if sec := section(out.String(), titleOrphans+"2"); sec == "" || strings.Contains(sec, w.orphan) {
		t.Errorf("volume of a legacy PV listed as an orphan:\n%s", out.String())
	}
}

func TestOrphansDeleteClearsExportsInAnyStatusFirst(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		method cinder.ExportMethod
		// leave makes the orphan's exports the way an interrupted
		// provisioner left them
		leave func(t *testing.T, f *fake.Fake, id string)
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
			if v, _ := w.cinder.Volume(w.orphan); v.Status == cinder.StatusAvailable {
				t.Fatalf("the orphan is available: the case tests nothing")
			}
			w.cinder.ResetCalls()
			var out bytes.Buffer
			cfg := w.config(&out, "")
			cfg.Delete, cfg.Yes = true, true
			if err := Orphans(ctx, cfg); err != nil {
				t.Fatalf("Orphans: %v\n%s", err, out.String())
			}
			if _, ok := w.cinder.Volume(w.orphan); ok {
				t.Errorf("exported orphan not deleted:\n%s", out.String())
			}
			var ops []string
			for _, c := range w.cinder.Calls() {
				if c.VolumeID != w.orphan || c.Op == fake.OpGetVolume {
					continue
				}
				ops = append(ops, c.Op)
				if c.Op == fake.OpClearExports && (c.Connector == nil || c.Connector.Initiator != testConnector.Initiator) {
					t.Errorf("ClearExports with connector %+v, want the configured one", c.Connector)
				}
			}
			if want := []string{fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}; !slices.Equal(ops, want) {
				t.Errorf("calls on the orphan = %v, want %v", ops, want)
			}
		})
	}
}

func TestOrphansDeleteSkipsAVolumeWhoseExportsCannotBeRemoved(t *testing.T) {
	w := newWorld(t)
	if _, err := w.cinder.Export(context.Background(), w.orphan, testConnector); err != nil {
		t.Fatal(err)
	}
	w.cinder.FailNext(fake.OpClearExports, cinder.NewError("clear exports", w.orphan, cinder.ErrUnavailable, ""))
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes = true, true
	err := Orphans(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 volumes not deleted: "+w.orphan) {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out.String(), w.orphan+" (pvc-orphan): not deleted") || !strings.Contains(out.String(), "skipped: could not remove its exports") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, ok := w.cinder.Volume(w.orphan); !ok {
		t.Error("volume deleted although its export could not be removed")
	}
	for _, c := range w.cinder.Calls() {
		if c.VolumeID == w.orphan && c.Op == fake.OpDeleteVolume {
			t.Error("DeleteVolume called although the exports could not be removed")
		}
	}
	if _, ok := w.cinder.Volume(w.stuck); ok {
		t.Error("the other orphan was not deleted")
	}
}

func TestOrphansDeleteOfAStuckVolumeSaysHowToUnstickIt(t *testing.T) {
	// Creating for an hour on a backend: Cinder refuses the DELETE.
	w := newWorld(t)
	if err := w.cinder.SetHost(w.stuck, "fake@lvm#lvm"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes = true, true
	err := Orphans(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 volumes not deleted: "+w.stuck) {
		t.Errorf("err = %v", err)
	}
	for _, want := range []string{"in status creating", "openstack volume set --state error " + w.stuck} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, ok := w.cinder.Volume(w.orphan); ok {
		t.Error("the other orphan was not deleted")
	}
}

// retainedLater is a Cinder where an admin records reclaim policy Retain
// on one volume between the listing and the deletion.
type retainedLater struct {
	*fake.Fake
	id string
}

func (r retainedLater) GetVolume(ctx context.Context, id string) (*cinder.Volume, error) {
	v, err := r.Fake.GetVolume(ctx, id)
	if err == nil && id == r.id {
		v.Metadata = maps.Clone(v.Metadata)
		v.Metadata[provisioner.MetaReclaimPolicy] = "Retain"
	}
	return v, err
}

func TestOrphansDeleteRechecksBeforeDeleting(t *testing.T) {
	t.Run("a PV appears", func(t *testing.T) {
		w := newWorld(t)
		var out bytes.Buffer
		cfg := w.config(&out, "")
		cfg.Delete, cfg.Yes = true, true
		// Between the listing and the deletion a provisioner creates the PV.
		w.cinder.Hook(fake.OpGetVolume, func(_ context.Context, c fake.Call) error {
			if c.VolumeID == w.orphan {
				_, err := w.kube.CoreV1().PersistentVolumes().Create(context.Background(), pv("pvc-orphan", w.orphan, testProvisioner), metav1.CreateOptions{})
				if err != nil && !strings.Contains(err.Error(), "already exists") {
					return err
				}
			}
			return nil
		})
		if err := Orphans(context.Background(), cfg); err != nil {
			t.Fatalf("Orphans: %v", err)
		}
		if _, ok := w.cinder.Volume(w.orphan); !ok {
			t.Errorf("volume deleted although its PV appeared:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "skipped: PV pvc-orphan exists now") {
			t.Errorf("output:\n%s", out.String())
		}
	})
	t.Run("the policy becomes Retain", func(t *testing.T) {
		w := newWorld(t)
		var out bytes.Buffer
		cfg := w.config(&out, "")
		cfg.Cinder = retainedLater{w.cinder, w.orphan}
		cfg.Delete, cfg.Yes = true, true
		if err := Orphans(context.Background(), cfg); err != nil {
			t.Fatalf("Orphans: %v", err)
		}
		if _, ok := w.cinder.Volume(w.orphan); !ok {
			t.Errorf("volume deleted although it is now Retain:\n%s", out.String())
		}
		w.untouched(t, w.orphan)
		if !strings.Contains(out.String(), w.orphan+" (pvc-orphan): skipped: its reclaim policy is now Retain (kept on purpose)") {
			t.Errorf("output:\n%s", out.String())
		}
	})
}

func TestOrphansRequiresAClusterID(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.ClusterID = ""
	if err := Orphans(context.Background(), cfg); err == nil {
		t.Fatal("no error without a cluster id")
	}
	if len(w.cinder.Calls()) != 0 {
		t.Errorf("calls without a cluster id: %v", w.cinder.Ops())
	}
}
