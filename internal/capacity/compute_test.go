package capacity

import (
	"math"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestRoomFor(t *testing.T) {
	pools := []cinder.Pool{
		{Name: "a@fast#p", Backend: "fast", Zone: "zone-a", TotalGiB: 100, FreeGiB: 50.7},
		{Name: "a@fast#q", Backend: "fast", Zone: "zone-a", TotalGiB: 100, FreeGiB: 20},
		{Name: "b@fast#p", Backend: "fast", Zone: "zone-b", TotalGiB: 100, FreeGiB: 0},
		{Name: "b@slow#p", Backend: "slow", Zone: "zone-b", TotalGiB: 100, FreeGiB: 8},
		{Name: "x@inf#p", Backend: "inf", TotalGiB: math.Inf(1), FreeGiB: math.Inf(1)},
	}
	backends := map[string]string{"fast": "fast", "slow": "slow", "inf": "inf", "any": ""}
	zoneA := segment{key: "zone=zone-a", cinderZone: "zone-a"}
	zoneB := segment{key: "zone=zone-b", cinderZone: "zone-b"}
	for _, tc := range []struct {
		name  string
		state cinderState
		class classSpec
		seg   segment
		want  room
	}{
		{name: "no quota, pools unreadable", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}},
			seg: zoneA, want: room{unlimitedGiB, unlimitedGiB}},
		{name: "quota only", state: cinderState{limits: &cinder.Limits{MaxGigabytes: 10, UsedGigabytes: 3, MaxVolumes: -1}},
			seg: zoneA, want: room{7, 7}},
		{name: "quota over-used", state: cinderState{limits: &cinder.Limits{MaxGigabytes: 10, UsedGigabytes: 12, MaxVolumes: -1}},
			seg: zoneA, want: room{0, 0}},
		{name: "volumes quota used up", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: 4, UsedVolumes: 4}},
			seg: zoneA, want: room{0, 0}},
		{name: "pools of the type's backend in the zone", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}, pools: pools, backends: backends},
			class: classSpec{volumeType: "fast"}, seg: zoneA, want: room{70, 50}},
		{name: "quota below the pools", state: cinderState{limits: &cinder.Limits{MaxGigabytes: 60, MaxVolumes: -1}, pools: pools, backends: backends},
			class: classSpec{volumeType: "fast"}, seg: zoneA, want: room{60, 50}},
		{name: "the backend's pool in the zone is full", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}, pools: pools, backends: backends},
			class: classSpec{volumeType: "fast"}, seg: zoneB, want: room{0, 0}},
		{name: "a pool of unknown zone counts everywhere", state: cinderState{limits: &cinder.Limits{MaxGigabytes: 30, MaxVolumes: -1}, pools: pools, backends: backends},
			class: classSpec{volumeType: "inf"}, seg: zoneB, want: room{30, 30}},
		{name: "a type without backend may use any pool of the zone", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}, pools: pools[:4], backends: backends},
			class: classSpec{volumeType: "any"}, seg: zoneB, want: room{8, 8}},
		{name: "Cinder's default zone: any pool", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}, pools: pools[:4], backends: backends},
			class: classSpec{}, seg: segment{key: segmentNoZoneLabel, anyZone: true}, want: room{78, 50}},
		{name: "readable, no pool", state: cinderState{limits: &cinder.Limits{MaxGigabytes: -1, MaxVolumes: -1}, pools: []cinder.Pool{}},
			seg: zoneA, want: room{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.state.roomFor(tc.class, tc.seg); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
