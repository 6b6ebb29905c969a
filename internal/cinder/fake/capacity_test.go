package fake

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// TestCreateEnforcesGigabytesQuota: a create that would take the project
// over its gigabytes quota is Cinder's 413 and creates nothing; deleting
// volumes (still counted until gone) do not free the room before they are.
func TestCreateEnforcesGigabytesQuota(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetGigabytesQuota(5)
	first, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "a", SizeGiB: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.CreateVolume(ctx, cinder.CreateRequest{Name: "b", SizeGiB: 3})
	if !errors.Is(err, cinder.ErrQuotaExceeded) || !strings.Contains(err.Error(), "Requested 3G, quota is 5G and 3G has been consumed.") {
		t.Fatalf("over quota: got %v, want 413 VolumeSizeExceedsAvailableQuota", err)
	}
	if n := len(f.Volumes()); n != 1 {
		t.Fatalf("%d volumes after a refused create, want 1", n)
	}
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "c", SizeGiB: 2}); err != nil {
		t.Fatalf("a create that fits exactly: %v", err)
	}
	if _, err := f.WaitForVolumeStatus(ctx, first.ID, cinder.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteVolume(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	l, err := f.ProjectLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (cinder.Limits{MaxGigabytes: 5, UsedGigabytes: 5, MaxVolumes: -1, UsedVolumes: 2}); *l != want {
		t.Errorf("limits with a volume deleting: %+v, want %+v", *l, want)
	}
	if err := f.WaitForVolumeDeleted(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if l, _ = f.ProjectLimits(ctx); l.UsedGigabytes != 2 {
		t.Errorf("used gigabytes after the delete: %d, want 2", l.UsedGigabytes)
	}
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "d", SizeGiB: 3}); err != nil {
		t.Errorf("a create after the room came back: %v", err)
	}
}

func TestCapacityReads(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		setup      func(f *Fake)
		wantLimits cinder.Limits
		wantZones  []string
		wantPools  []cinder.Pool
		wantTypes  map[string]string
		wantErr    error // of Pools
	}{
		{
			name:       "defaults",
			setup:      func(*Fake) {},
			wantLimits: cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1},
			wantZones:  []string{"nova"},
			wantPools:  []cinder.Pool{{Name: defaultHost, Backend: "lvm", Zone: "nova", TotalGiB: math.Inf(1), FreeGiB: math.Inf(1)}},
			wantTypes:  map[string]string{"default": ""},
		},
		{
			name: "configured",
			setup: func(f *Fake) {
				f.SetZones(false, "zone-b", "zone-a")
				f.SetQuota(10)
				f.SetGigabytesQuota(100)
				f.SetPools(cinder.Pool{Name: "h2@slow#p", Backend: "slow", Zone: "zone-b", TotalGiB: 10, FreeGiB: 0},
					cinder.Pool{Name: "h1@fast#p", Backend: "fast", Zone: "zone-a", TotalGiB: 10, FreeGiB: 10})
				f.SetVolumeTypeBackend("fast", "fast")
				f.SetVolumeTypeBackend("slow", "slow")
			},
			wantLimits: cinder.Limits{MaxGigabytes: 100, MaxVolumes: 10},
			wantZones:  []string{"zone-a", "zone-b"},
			wantPools: []cinder.Pool{{Name: "h1@fast#p", Backend: "fast", Zone: "zone-a", TotalGiB: 10, FreeGiB: 10},
				{Name: "h2@slow#p", Backend: "slow", Zone: "zone-b", TotalGiB: 10, FreeGiB: 0}},
			wantTypes: map[string]string{"default": "", "fast": "fast", "slow": "slow"},
		},
		{
			name: "pools forbidden",
			setup: func(f *Fake) {
				f.Fail(OpPools, cinder.NewError("read scheduler pool stats", "", cinder.ErrUnauthorized, "Policy doesn't allow"))
			},
			wantLimits: cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1},
			wantZones:  []string{"nova"},
			wantTypes:  map[string]string{"default": ""},
			wantErr:    cinder.ErrUnauthorized,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			tc.setup(f)
			l, err := f.ProjectLimits(ctx)
			if err != nil || *l != tc.wantLimits {
				t.Errorf("ProjectLimits = %+v, %v; want %+v", l, err, tc.wantLimits)
			}
			zones, err := f.AvailabilityZones(ctx)
			if err != nil || !reflect.DeepEqual(zones, tc.wantZones) {
				t.Errorf("AvailabilityZones = %v, %v; want %v", zones, err, tc.wantZones)
			}
			pools, err := f.Pools(ctx)
			if !errors.Is(err, tc.wantErr) || !reflect.DeepEqual(pools, tc.wantPools) {
				t.Errorf("Pools = %+v, %v; want %+v, %v", pools, err, tc.wantPools, tc.wantErr)
			}
			types, err := f.VolumeTypeBackends(ctx)
			if err != nil || !reflect.DeepEqual(types, tc.wantTypes) {
				t.Errorf("VolumeTypeBackends = %v, %v; want %v", types, err, tc.wantTypes)
			}
		})
	}
}
