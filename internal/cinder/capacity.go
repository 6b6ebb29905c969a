package cinder

import (
	"context"
	"math"
	"strings"
)

// CapacityReader reads what decides whether Cinder has room for a new
// volume: the project's quota and usage, the availability zones and, where
// the credentials allow, the scheduler's pool statistics and the volume
// types' backends. Every method is one or two read requests; none changes
// anything.
type CapacityReader interface {
	// ProjectLimits returns the project's absolute limits and usage
	// (GET /limits).
	ProjectLimits(ctx context.Context) (*Limits, error)
	// AvailabilityZones returns the names of the zones Cinder reports as
	// available (GET /os-availability-zone), sorted.
	AvailabilityZones(ctx context.Context) ([]string, error)
	// Pools returns the scheduler's pool statistics
	// (GET /scheduler-stats/get_pools?detail=true), each with the zone of
	// its cinder-volume service (GET /os-services?binary=cinder-volume).
	// Both are admin-only by Cinder's default policy: a forbidden pool list
	// is ErrUnauthorized (the caller degrades to the quota alone); a
	// forbidden service list leaves Pool.Zone empty.
	Pools(ctx context.Context) ([]Pool, error)
	// VolumeTypeBackends maps each volume type's name to its
	// volume_backend_name extra spec ("" when it has none, or when the
	// credentials cannot see extra specs: they are admin-only by default).
	VolumeTypeBackends(ctx context.Context) (map[string]string, error)
}

// Unlimited is Cinder's -1: no limit.
const Unlimited = -1

// Limits are a project's absolute limits and usage, as /limits reports
// them; a Max of Unlimited (-1) is no limit.
type Limits struct {
	MaxGigabytes  int // maxTotalVolumeGigabytes
	UsedGigabytes int // totalGigabytesUsed
	MaxVolumes    int // maxTotalVolumes
	UsedVolumes   int // totalVolumesUsed
}

// GigabytesLeft is the GiB the project may still create: max - used,
// never negative; ok is false when the quota is unlimited.
func (l Limits) GigabytesLeft() (left int, ok bool) {
	return remaining(l.MaxGigabytes, l.UsedGigabytes)
}

// VolumesLeft is the number of volumes the project may still create; ok is
// false when the quota is unlimited.
func (l Limits) VolumesLeft() (left int, ok bool) {
	return remaining(l.MaxVolumes, l.UsedVolumes)
}

func remaining(limit, used int) (int, bool) {
	if limit < 0 {
		return 0, false
	}
	return max(limit-used, 0), true
}

// Pool is one storage pool as Cinder's scheduler sees it.
type Pool struct {
	Name    string // host@backend#pool
	Backend string // capabilities.volume_backend_name
	Zone    string // availability zone of the pool's cinder-volume service; "": unknown
	// TotalGiB and FreeGiB are the backend's last report; either may be
	// +Inf for a backend that reports "infinite" (or "unknown", which
	// Cinder's scheduler treats the same way).
	TotalGiB, FreeGiB        float64
	ProvisionedGiB           float64 // provisioned_capacity_gb (thin pools)
	ReservedPercentage       int
	ThinProvisioning         bool    // thin_provisioning_support
	MaxOverSubscriptionRatio float64 // 0: not reported (1)
}

// Host is the pool's cinder-volume service host (host@backend), the part
// of its name before "#".
func (p Pool) Host() string {
	host, _, _ := strings.Cut(p.Name, "#")
	return host
}

// LargestVolumeGiB is the largest volume Cinder's CapacityFilter would
// place on the pool (cinder/scheduler/filters/capacity_filter.py): the free
// space less the reserved percentage of the total; on a thin pool, that
// free space times max_over_subscription_ratio, and no more than the room
// left under the ratio (total*ratio - provisioned). +Inf for an infinite
// pool. It is what a pool can promise, not a guarantee: the report is as old
// as the backend's last stats update (60 s by default) and other
// volume-type filters (capabilities, goodness) are not considered.
func (p Pool) LargestVolumeGiB() float64 {
	if math.IsInf(p.FreeGiB, 1) || math.IsInf(p.TotalGiB, 1) {
		return math.Inf(1)
	}
	free := p.FreeGiB - math.Floor(p.TotalGiB*float64(p.ReservedPercentage)/100)
	if p.ThinProvisioning && p.MaxOverSubscriptionRatio >= 1 {
		free *= p.MaxOverSubscriptionRatio
		if room := p.TotalGiB*p.MaxOverSubscriptionRatio - p.ProvisionedGiB; room < free {
			free = room
		}
	}
	return max(free, 0)
}
