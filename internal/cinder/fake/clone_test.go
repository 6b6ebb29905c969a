package fake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Creates from a source follow Cinder 21's checks
// (volume/flows/api/create_volume.py).
func TestCreateFromSource(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		req     func(src, snap string) cinder.CreateRequest
		srcStat string
		snapSt  string
		wantErr error
		wantMsg string
		wantAZ  string
	}{
		{"clone of an available volume", func(s, _ string) cinder.CreateRequest { return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2} }, cinder.StatusAvailable, "", nil, "", "zone-b"},
		{"clone of an in-use volume", func(s, _ string) cinder.CreateRequest { return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2} }, cinder.StatusInUse, "", nil, "", "zone-b"},
		{"clone of a volume in error", func(s, _ string) cinder.CreateRequest { return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2} }, cinder.StatusError, "", cinder.ErrInvalid, "Originating source volume status", ""},
		{"clone of a creating volume", func(s, _ string) cinder.CreateRequest { return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2} }, cinder.StatusCreating, "", cinder.ErrInvalid, "Originating source volume status", ""},
		{"clone smaller than the source", func(s, _ string) cinder.CreateRequest { return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 1} }, cinder.StatusAvailable, "", cinder.ErrInvalid, "cannot be smaller than original volume size", ""},
		{"clone of an unknown volume", func(string, string) cinder.CreateRequest {
			return cinder.CreateRequest{SourceVolumeID: "00000000-0000-4000-8000-00000000dead", SizeGiB: 2}
		}, cinder.StatusAvailable, "", cinder.ErrNotFound, "could not be found", ""},
		{"clone into another zone", func(s, _ string) cinder.CreateRequest {
			return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2, AvailabilityZone: "nova"}
		}, cinder.StatusAvailable, "", cinder.ErrInvalid, "same availability zone as the source volume", ""},
		{"clone of another type", func(s, _ string) cinder.CreateRequest {
			return cinder.CreateRequest{SourceVolumeID: s, SizeGiB: 2, VolumeType: "other"}
		}, cinder.StatusAvailable, "", cinder.ErrInvalid, "Invalid volume_type provided", ""},
		{"restore of an available snapshot", func(_, n string) cinder.CreateRequest { return cinder.CreateRequest{SnapshotID: n, SizeGiB: 2} }, cinder.StatusAvailable, "", nil, "", "zone-b"},
		{"restore of a snapshot in error", func(_, n string) cinder.CreateRequest { return cinder.CreateRequest{SnapshotID: n, SizeGiB: 2} }, cinder.StatusAvailable, "error", cinder.ErrInvalid, "Originating snapshot status", ""},
		{"restore smaller than the snapshot", func(_, n string) cinder.CreateRequest { return cinder.CreateRequest{SnapshotID: n, SizeGiB: 1} }, cinder.StatusAvailable, "", cinder.ErrInvalid, "cannot be smaller than the snapshot size", ""},
		{"restore of an unknown snapshot", func(string, string) cinder.CreateRequest {
			return cinder.CreateRequest{SnapshotID: "5a000000-0000-4000-8000-00000000dead", SizeGiB: 2}
		}, cinder.StatusAvailable, "", cinder.ErrNotFound, "Snapshot", ""},
		{"unknown zone", func(string, string) cinder.CreateRequest {
			return cinder.CreateRequest{SizeGiB: 1, AvailabilityZone: "atlantis"}
		}, cinder.StatusAvailable, "", cinder.ErrInvalid, "Availability zone 'atlantis' is invalid.", ""},
		{"no zone: the default", func(string, string) cinder.CreateRequest { return cinder.CreateRequest{SizeGiB: 1} }, cinder.StatusAvailable, "", nil, "", "nova"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			f.SetZones(false, "nova", "zone-b")
			src := f.AddVolume(cinder.Volume{Name: "src", SizeGiB: 2, AvailabilityZone: "zone-b"})
			snap, err := f.AddSnapshot(cinder.Snapshot{VolumeID: src, Status: tc.snapSt})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetStatus(src, tc.srcStat); err != nil {
				t.Fatal(err)
			}
			req := tc.req(src, snap)
			req.Name = "pvc-1"
			v, err := f.CreateVolume(ctx, req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("CreateVolume = %v, want %v saying %q", err, tc.wantErr, tc.wantMsg)
				}
				if n := len(f.Volumes()); n != 1 {
					t.Errorf("%d volumes after a refusal, want the source only", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateVolume: %v", err)
			}
			if v.Status != cinder.StatusCreating || v.AvailabilityZone != tc.wantAZ || v.SourceVolumeID != req.SourceVolumeID || v.SnapshotID != req.SnapshotID {
				t.Errorf("volume %+v, want creating in %s from the request's source", v, tc.wantAZ)
			}
			// the source keeps its status: Cinder has none for "being cloned"
			if s, _ := f.Volume(src); s.Status != tc.srcStat {
				t.Errorf("source status %s, want %s", s.Status, tc.srcStat)
			}
		})
	}
}

func TestZoneFallback(t *testing.T) {
	f := New()
	f.SetZones(true, "nova", "zone-b")
	v, err := f.CreateVolume(context.Background(), cinder.CreateRequest{Name: "pvc-1", SizeGiB: 1, AvailabilityZone: "atlantis"})
	if err != nil || v.AvailabilityZone != "nova" {
		t.Fatalf("CreateVolume = %+v, %v; want the default zone", v, err)
	}
}

func TestGetSnapshot(t *testing.T) {
	f := New()
	src := f.AddVolume(cinder.Volume{Name: "src", SizeGiB: 3})
	id, err := f.AddSnapshot(cinder.Snapshot{VolumeID: src})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.GetSnapshot(context.Background(), id)
	if err != nil || s.SizeGiB != 3 || s.Status != cinder.SnapshotAvailable || s.VolumeID != src {
		t.Fatalf("GetSnapshot = %+v, %v", s, err)
	}
	f.FailNext(OpGetSnapshot, cinder.NewError("get snapshot", id, cinder.ErrUnavailable, "down"))
	if _, err := f.GetSnapshot(context.Background(), id); !errors.Is(err, cinder.ErrUnavailable) {
		t.Errorf("injected failure: %v", err)
	}
	f.RemoveSnapshot(id)
	if _, err := f.GetSnapshot(context.Background(), id); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("removed snapshot: %v, want ErrNotFound", err)
	}
}
