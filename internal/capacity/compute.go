package capacity

import (
	"math"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// unlimitedGiB stands for "no limit known" (no quota, and pools unreadable
// or infinite): 4 EiB, far above any volume, since kube-scheduler reads an
// object without capacity as no capacity at all.
const unlimitedGiB = int64(4) << 30

// cinderState is what one refresh read from Cinder.
type cinderState struct {
	limits *cinder.Limits
	zones  []string
	// pools nil: unreadable (the credentials are not admin); the quota
	// alone then bounds the capacity.
	pools    []cinder.Pool
	backends map[string]string // volume type -> volume_backend_name
}

// room is the capacity of one class in one segment, in GiB: total is what
// the segment can still hold, largest the biggest single volume it can
// take (CSIStorageCapacity's capacity and maximumVolumeSize).
type room struct {
	total, largest int64
}

// roomFor is the room for volumes of the class's type in the segment's
// Cinder zone: the project's gigabytes quota left (0 when its volumes quota
// is used up), and, when the pools are readable, no more than the pools of
// the type's backend in that zone can take (Pool.LargestVolumeGiB; a pool
// whose zone is unknown counts for every zone; a type without
// volume_backend_name, or whose extra specs are not visible, may go to any
// pool).
func (s *cinderState) roomFor(c classSpec, seg segment) room {
	r := room{total: unlimitedGiB, largest: unlimitedGiB}
	if s.limits != nil {
		if left, ok := s.limits.VolumesLeft(); ok && left == 0 {
			return room{}
		}
		if left, ok := s.limits.GigabytesLeft(); ok {
			r = room{total: int64(left), largest: int64(left)}
		}
	}
	if s.pools == nil {
		return r
	}
	backend := s.backends[c.volumeType]
	var sum, largest float64
	for _, p := range s.pools {
		if backend != "" && p.Backend != backend {
			continue
		}
		if !seg.anyZone && p.Zone != "" && p.Zone != seg.cinderZone {
			continue
		}
		l := p.LargestVolumeGiB()
		sum += l
		largest = max(largest, l)
	}
	r.total = min(r.total, gib(sum))
	r.largest = min(r.largest, gib(largest))
	return r
}

// gib is a pool size in whole GiB (Cinder sizes volumes in whole GiB),
// rounded down; +Inf and anything beyond unlimitedGiB is unlimitedGiB.
func gib(v float64) int64 {
	if math.IsInf(v, 1) || v >= float64(unlimitedGiB) {
		return unlimitedGiB
	}
	return int64(math.Floor(v))
}
