package fake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// CreateSnapshot refuses what Cinder refuses and the snapshot goes
// creating -> final status as GetSnapshot polls it.
func TestCreateSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status string // the volume's
		force  bool
		setup  func(f *Fake)
		kind   error  // nil: created
		final  string // the status after the polls
	}{
		{name: "available", status: cinder.StatusAvailable, final: cinder.SnapshotAvailable},
		{name: "in-use with force", status: cinder.StatusInUse, force: true, final: cinder.SnapshotAvailable},
		{name: "in-use without force", status: cinder.StatusInUse, kind: cinder.ErrInvalid},
		{name: "volume in error", status: cinder.StatusError, force: true, kind: cinder.ErrInvalid},
		{name: "quota", status: cinder.StatusAvailable, setup: func(f *Fake) { f.SetSnapshotQuota(1); mustSnapshot(t, f) }, kind: cinder.ErrQuotaExceeded},
		{name: "backend error", status: cinder.StatusAvailable, setup: func(f *Fake) { f.SetSnapshotFinalStatus(cinder.SnapshotError) }, final: cinder.SnapshotError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			f.SetSnapshotCreatingPolls(2)
			v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "v", SizeGiB: 3})
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			if err := f.SetStatus(v.ID, tc.status); err != nil {
				t.Fatal(err)
			}
			s, err := f.CreateSnapshot(ctx, cinder.SnapshotRequest{VolumeID: v.ID, Name: "snap", Force: tc.force})
			if tc.kind != nil {
				if !errors.Is(err, tc.kind) {
					t.Fatalf("err %v, want %v", err, tc.kind)
				}
				return
			}
			if err != nil || s.Status != cinder.SnapshotCreating || s.SizeGiB != 3 {
				t.Fatalf("snapshot %+v, %v; want creating, 3 GiB", s, err)
			}
			var got *cinder.Snapshot
			for range 3 {
				if got, err = f.GetSnapshot(ctx, s.ID); err != nil {
					t.Fatal(err)
				}
			}
			if got.Status != tc.final {
				t.Errorf("status %s after 3 polls, want %s", got.Status, tc.final)
			}
		})
	}
}

func mustSnapshot(t *testing.T, f *Fake) {
	t.Helper()
	v, err := f.CreateVolume(context.Background(), cinder.CreateRequest{Name: "other", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddSnapshot(cinder.Snapshot{VolumeID: v.ID}); err != nil {
		t.Fatal(err)
	}
}

// A volume with snapshots is not deleted; deleting the snapshot (gone at
// the next poll) lets it go. A creating snapshot is not deleted.
func TestVolumeWithSnapshots(t *testing.T) {
	ctx := context.Background()
	f := New()
	v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "v", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	s, err := f.CreateSnapshot(ctx, cinder.SnapshotRequest{VolumeID: v.ID, Name: "snap"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteSnapshot(ctx, s.ID); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("delete creating snapshot: %v, want ErrInvalid", err)
	}
	if err := f.DeleteVolume(ctx, v.ID); !errors.Is(err, cinder.ErrInvalid) || !strings.Contains(err.Error(), "have snapshots") {
		t.Errorf("delete volume with snapshots: %v, want ErrInvalid", err)
	}
	if list, err := f.ListSnapshots(ctx, cinder.SnapshotFilter{VolumeID: v.ID}); err != nil || len(list) != 1 || list[0].Name != "snap" {
		t.Errorf("list %+v, %v", list, err)
	}
	if _, err := f.GetSnapshot(ctx, s.ID); err != nil { // available
		t.Fatal(err)
	}
	if err := f.DeleteSnapshot(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetSnapshot(ctx, s.ID); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("deleted snapshot: %v, want ErrNotFound", err)
	}
	if err := f.DeleteSnapshot(ctx, s.ID); err != nil {
		t.Errorf("delete missing snapshot: %v, want success", err)
	}
	if err := f.DeleteVolume(ctx, v.ID); err != nil {
		t.Errorf("delete volume: %v", err)
	}
}
