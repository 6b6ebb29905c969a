package operator

import (
	"bytes"
	"context"
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

func meta(cluster, pv string) map[string]string {
	return map[string]string{
		provisioner.MetaClusterID:    cluster,
		provisioner.MetaPVName:       pv,
		provisioner.MetaPVCNamespace: "apps",
		provisioner.MetaPVCName:      "data-" + pv,
	}
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
//   - orphan: volume of the cluster without a PV (available, old)
//   - young: volume of the cluster, available for 1 minute, no PV (a provisioner may be exporting it)
//   - stuck: volume of the cluster creating for an hour, no PV
//   - foreign: volume of another cluster without a PV
//   - pv-gone: PV of the provisioner whose volume does not exist
//   - pv-other: PV of another provisioner whose volume does not exist
type world struct {
	cinder                             *fake.Fake
	kube                               *kubefake.Clientset
	orphan, young, stuck, foreign, bnd string
}

func newWorld() *world {
	f := fake.New()
	w := &world{cinder: f}
	w.bnd = f.AddVolume(cinder.Volume{Name: "pvc-bound", SizeGiB: 1, Metadata: meta(testCluster, "pvc-bound"), CreatedAt: now.Add(-time.Hour)})
	w.orphan = f.AddVolume(cinder.Volume{Name: "pvc-orphan", SizeGiB: 2, Metadata: meta(testCluster, "pvc-orphan"), CreatedAt: now.Add(-time.Hour)})
	w.young = f.AddVolume(cinder.Volume{Name: "pvc-young", SizeGiB: 1, Status: cinder.StatusAvailable, Metadata: meta(testCluster, "pvc-young"), CreatedAt: now.Add(-time.Minute)})
	w.stuck = f.AddVolume(cinder.Volume{Name: "pvc-stuck", SizeGiB: 1, Status: cinder.StatusCreating, Metadata: meta(testCluster, "pvc-stuck"), CreatedAt: now.Add(-time.Hour)})
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

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestOrphansListsBothKinds(t *testing.T) {
	w := newWorld()
	var out bytes.Buffer
	if err := Orphans(context.Background(), w.config(&out, "")); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"Cinder volumes of cluster c1 without a PV: 3",
		w.orphan, "pvc-orphan", "available", "2Gi", "apps/data-pvc-orphan", "2026-03-01T11:00:00Z (1h0m0s ago)",
		w.young, w.stuck,
		w.young + " is younger than 10m0s: a provisioner may be working on it; not deleted",
		"PVs of provisioner openstack.org/standalone-cinder whose Cinder volume is gone: 1",
		"pvc-gone", "4d4d4d4d-0000-4000-a000-000000000000", "apps/data-pvc-gone",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{w.bnd, w.foreign, "pvc-other", w.stuck + " is younger"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output shows %q:\n%s", unwanted, got)
		}
	}
	if got := w.remaining(); len(got) != 5 {
		t.Errorf("without --delete volumes were deleted: %v", got)
	}
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
			w := newWorld()
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
			want := sorted(w.bnd, w.orphan, w.young, w.stuck, w.foreign)
			if tc.wantDeleted {
				// the stuck creating volume is old enough; the young one and
				// the foreign one are never touched
				want = sorted(w.bnd, w.young, w.foreign)
			}
			if got := w.remaining(); !slices.Equal(got, want) {
				t.Errorf("volumes left = %v, want %v", got, want)
			}
			for _, c := range w.cinder.Calls() {
				if (c.VolumeID == w.foreign || c.VolumeID == w.young || c.VolumeID == w.bnd) && c.Op != fake.OpGetVolume {
					t.Errorf("%s called on a volume that must not be touched (%s)", c.Op, c.VolumeID)
				}
			}
			pvs, err := w.kube.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
			if err != nil || len(pvs.Items) != 3 {
				t.Errorf("PVs = %d (%v), want all 3 kept", len(pvs.Items), err)
			}
		})
	}
}

// unfiltered is a Cinder that ignores the metadata filter of ListVolumes.
type unfiltered struct{ *fake.Fake }

func (u unfiltered) ListVolumes(ctx context.Context, _ map[string]string) ([]cinder.Volume, error) {
	return u.Fake.ListVolumes(ctx, nil)
}

func TestOrphansNeverDeletesAForeignVolumeEvenIfCinderFiltersBadly(t *testing.T) {
	// A cluster id that is a prefix of others must match neither.
	w := newWorld()
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Cinder = unfiltered{w.cinder}
	cfg.ClusterID = "c" // prefix of c1 and c10
	cfg.Delete, cfg.Yes = true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	if got := w.remaining(); len(got) != 5 {
		t.Errorf("volumes deleted for cluster %q: left %v", cfg.ClusterID, got)
	}
	if !strings.Contains(out.String(), "without a PV: 0") || !strings.Contains(out.String(), "Nothing to delete.") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestOrphansDeleteUnexportsFirst(t *testing.T) {
	w := newWorld()
	exp, err := w.cinder.Export(context.Background(), w.orphan, testConnector)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes = true, true
	if err := Orphans(context.Background(), cfg); err != nil {
		t.Fatalf("Orphans: %v\n%s", err, out.String())
	}
	if _, ok := w.cinder.Volume(w.orphan); ok {
		t.Errorf("exported orphan not deleted:\n%s", out.String())
	}
	var ops []string
	for _, c := range w.cinder.Calls() {
		if c.VolumeID == w.orphan && c.Op != fake.OpGetVolume && c.Op != fake.OpExport {
			ops = append(ops, c.Op)
			if c.Op == fake.OpUnexport && c.ExportID != exp.ID {
				t.Errorf("unexported %s, want %s", c.ExportID, exp.ID)
			}
		}
	}
	if want := []string{fake.OpUnexport, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}; !slices.Equal(ops, want) {
		t.Errorf("calls on the orphan = %v, want %v", ops, want)
	}
}

func TestOrphansDeleteSkipsAVolumeWhoseExportCannotBeRemoved(t *testing.T) {
	w := newWorld()
	if _, err := w.cinder.Export(context.Background(), w.orphan, testConnector); err != nil {
		t.Fatal(err)
	}
	w.cinder.FailNext(fake.OpUnexport, cinder.NewError("unexport volume", w.orphan, cinder.ErrUnavailable, ""))
	var out bytes.Buffer
	cfg := w.config(&out, "")
	cfg.Delete, cfg.Yes = true, true
	err := Orphans(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 volumes not deleted: "+w.orphan) {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out.String(), w.orphan+" (pvc-orphan): not deleted") || !strings.Contains(out.String(), "skipped: could not remove its export") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, ok := w.cinder.Volume(w.orphan); !ok {
		t.Error("volume deleted although its export could not be removed")
	}
	if _, ok := w.cinder.Volume(w.stuck); ok {
		t.Error("the other orphan was not deleted")
	}
}

func TestOrphansDeleteRechecksBeforeDeleting(t *testing.T) {
	w := newWorld()
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
}

func TestOrphansRequiresAClusterID(t *testing.T) {
	w := newWorld()
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
