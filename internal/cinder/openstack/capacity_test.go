package openstack

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestProjectLimits(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /limits", 200, `{"limits":{"rate":[],"absolute":{"totalSnapshotsUsed":0,"maxTotalBackups":10,"maxTotalVolumeGigabytes":100,`+
		`"maxTotalSnapshots":10,"maxTotalBackupGigabytes":1000,"totalBackupGigabytesUsed":0,"maxTotalVolumes":-1,"totalVolumesUsed":7,"totalBackupsUsed":0,"totalGigabytesUsed":93}}}`)
	c, _ := s.client(ExportAuto)
	got, err := c.ProjectLimits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &cinder.Limits{MaxGigabytes: 100, UsedGigabytes: 93, MaxVolumes: -1, UsedVolumes: 7}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if left, ok := got.GigabytesLeft(); !ok || left != 7 {
		t.Errorf("GigabytesLeft = %d, %v; want 7, true", left, ok)
	}
	if _, ok := got.VolumesLeft(); ok {
		t.Error("VolumesLeft of an unlimited quota is limited")
	}
}

func TestAvailabilityZones(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /os-availability-zone", 200, `{"availabilityZoneInfo":[{"zoneName":"zone-b","zoneState":{"available":true}},`+
		`{"zoneName":"zone-a","zoneState":{"available":true}},{"zoneName":"down","zoneState":{"available":false}}]}`)
	c, _ := s.client(ExportAuto)
	got, err := c.AvailabilityZones(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"zone-a", "zone-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

const poolsJSON = `{"pools":[
 {"name":"host1@tgtfile#tgtfile","capabilities":{"volume_backend_name":"tgtfile","total_capacity_gb":100,"free_capacity_gb":40,"reserved_percentage":10,
  "thin_provisioning_support":false,"provisioned_capacity_gb":60,"max_over_subscription_ratio":"20.0"}},
 {"name":"host2@thin#p1","capabilities":{"volume_backend_name":"thin","total_capacity_gb":10,"free_capacity_gb":8,"reserved_percentage":0,
  "thin_provisioning_support":true,"provisioned_capacity_gb":25,"max_over_subscription_ratio":3}},
 {"name":"host3@fake#fake","capabilities":{"volume_backend_name":"fake","total_capacity_gb":"infinite","free_capacity_gb":"unknown","reserved_percentage":0}}
]}`

func TestPools(t *testing.T) {
	wantPools := []cinder.Pool{
		{Name: "host1@tgtfile#tgtfile", Backend: "tgtfile", Zone: "zone-a", TotalGiB: 100, FreeGiB: 40, ProvisionedGiB: 60, ReservedPercentage: 10, MaxOverSubscriptionRatio: 20},
		{Name: "host2@thin#p1", Backend: "thin", Zone: "zone-b", TotalGiB: 10, FreeGiB: 8, ProvisionedGiB: 25, ThinProvisioning: true, MaxOverSubscriptionRatio: 3},
		{Name: "host3@fake#fake", Backend: "fake", TotalGiB: math.Inf(1), FreeGiB: math.Inf(1)},
	}
	// 40 - 10% of 100; thin: min(8*3, 10*3-25); unknown passes like infinite
	wantLargest := []float64{30, 5, math.Inf(1)}
	for _, tc := range []struct {
		name            string
		servicesStatus  int
		wantZonesOfPool bool
	}{
		{name: "admin", servicesStatus: 200, wantZonesOfPool: true},
		{name: "services forbidden", servicesStatus: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, "3.70")
			s.onJSON("GET /scheduler-stats/get_pools", 200, poolsJSON)
			body := `{"services":[{"binary":"cinder-volume","host":"host1@tgtfile","zone":"zone-a","status":"enabled","state":"up"},` +
				`{"binary":"cinder-volume","host":"host2@thin","zone":"zone-b","status":"enabled","state":"up"}]}`
			if tc.servicesStatus != 200 {
				body = `{"forbidden":{"message":"Policy doesn't allow volume_extension:services:index to be performed.","code":403}}`
			}
			s.onJSON("GET /os-services", tc.servicesStatus, body)
			c, _ := s.client(ExportAuto)
			got, err := c.Pools(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(wantPools)
			if !tc.wantZonesOfPool {
				for i := range want {
					want[i].Zone = ""
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			for i, p := range got {
				if l := p.LargestVolumeGiB(); l != wantLargest[i] {
					t.Errorf("%s: LargestVolumeGiB = %v, want %v", p.Name, l, wantLargest[i])
				}
			}
		})
	}
}

func TestPoolsForbidden(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /scheduler-stats/get_pools", 403, `{"forbidden":{"message":"Policy doesn't allow scheduler_extension:scheduler_stats:get_pools to be performed.","code":403}}`)
	c, _ := s.client(ExportAuto)
	_, err := c.Pools(context.Background())
	if !errors.Is(err, cinder.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if got := s.requests(); !reflect.DeepEqual(got, []string{"GET /scheduler-stats/get_pools"}) {
		t.Errorf("requests %v: the services need not be read when the pools cannot", got)
	}
}

func TestVolumeTypeBackends(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /types", 200, `{"volume_types":[{"id":"t1","name":"tgtfile","is_public":true,"extra_specs":{"volume_backend_name":"tgtfile"}},`+
		`{"id":"t2","name":"any","is_public":true,"extra_specs":{}},{"id":"t3","name":"no-specs","is_public":true}]}`)
	c, _ := s.client(ExportAuto)
	got, err := c.VolumeTypeBackends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"tgtfile": "tgtfile", "any": "", "no-specs": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
