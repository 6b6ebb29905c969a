package fake

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Operation names of the cinder.CapacityReader methods.
const (
	OpProjectLimits      = "ProjectLimits"
	OpAvailabilityZones  = "AvailabilityZones"
	OpPools              = "Pools"
	OpVolumeTypeBackends = "VolumeTypeBackends"
)

var _ cinder.CapacityReader = (*Fake)(nil)

// capacitySettings are what the fake's scheduler reports: its pools and
// the volume types' volume_backend_name. The zero value reports one pool
// of infinite capacity, defaultHost, in the default zone.
type capacitySettings struct {
	pools    []cinder.Pool // nil: the default pool
	backends map[string]string
}

// SetPools sets the pool statistics Pools reports, as Cinder's scheduler
// last received them from the backends: they do not change as volumes are
// created (the backends report every 60 s by default). To make the pools
// unreadable, as for a non-admin, inject ErrUnauthorized with
// Fail(OpPools, ...).
func (f *Fake) SetPools(pools ...cinder.Pool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity.pools = slices.Clone(pools)
	if f.capacity.pools == nil {
		f.capacity.pools = []cinder.Pool{}
	}
}

// SetVolumeTypeBackend sets a volume type's volume_backend_name extra spec
// ("" removes it); the type is then listed by VolumeTypeBackends.
func (f *Fake) SetVolumeTypeBackend(volumeType, backend string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.capacity.backends == nil {
		f.capacity.backends = map[string]string{}
	}
	f.capacity.backends[volumeType] = backend
}

// usedGigabytesLocked is the gigabytes quota usage: the sizes of every
// volume Cinder still has, deleting ones included.
func (f *Fake) usedGigabytesLocked() int {
	used := 0
	for _, v := range f.volumes {
		used += v.vol.SizeGiB
	}
	return used
}

// checkCreateQuotaLocked is Cinder's gigabytes quota check of a create
// (quota reservation in volume/flows/api/create_volume.py): 413 when the
// new volume would take the project over SetGigabytesQuota.
func (f *Fake) checkCreateQuotaLocked(req cinder.CreateRequest) error {
	quota := f.ext.gigabytes
	if quota <= 0 {
		return nil
	}
	if used := f.usedGigabytesLocked(); used+req.SizeGiB > quota {
		return cinder.NewError("create volume", req.Name, cinder.ErrQuotaExceeded, fmt.Sprintf(
			"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.",
			req.SizeGiB, quota, used))
	}
	return nil
}

// ProjectLimits implements cinder.CapacityReader: SetGigabytesQuota and
// SetQuota as the maxima (unset: -1), the volumes the fake holds as usage.
func (f *Fake) ProjectLimits(ctx context.Context) (out *cinder.Limits, err error) {
	err = f.do(ctx, levelCall, &Call{Op: OpProjectLimits}, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = &cinder.Limits{MaxGigabytes: cinder.Unlimited, UsedGigabytes: f.usedGigabytesLocked(), MaxVolumes: f.quota, UsedVolumes: len(f.volumes)}
		if f.ext.gigabytes > 0 {
			out.MaxGigabytes = f.ext.gigabytes
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AvailabilityZones implements cinder.CapacityReader: the zones of
// SetZones, sorted ("nova" by default).
func (f *Fake) AvailabilityZones(ctx context.Context) (out []string, err error) {
	err = f.do(ctx, levelCall, &Call{Op: OpAvailabilityZones}, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = slices.Clone(f.sources.zones)
		if len(out) == 0 {
			out = []string{defaultZone}
		}
		slices.Sort(out)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Pools implements cinder.CapacityReader: the pools of SetPools, by name.
func (f *Fake) Pools(ctx context.Context) (out []cinder.Pool, err error) {
	err = f.do(ctx, levelCall, &Call{Op: OpPools}, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = slices.Clone(f.capacity.pools)
		if out == nil {
			zone := defaultZone
			if len(f.sources.zones) > 0 {
				zone = f.sources.zones[0]
			}
			out = []cinder.Pool{{Name: defaultHost, Backend: "lvm", Zone: zone, TotalGiB: math.Inf(1), FreeGiB: math.Inf(1)}}
		}
		slices.SortFunc(out, func(a, b cinder.Pool) int { return strings.Compare(a.Name, b.Name) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// VolumeTypeBackends implements cinder.CapacityReader: every type the fake
// knows (the default, those with a connection or a backend set) with its
// SetVolumeTypeBackend backend.
func (f *Fake) VolumeTypeBackends(ctx context.Context) (out map[string]string, err error) {
	err = f.do(ctx, levelCall, &Call{Op: OpVolumeTypeBackends}, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = maps.Clone(f.capacity.backends)
		if out == nil {
			out = map[string]string{}
		}
		for _, t := range append([]string{f.defaultType}, slices.Collect(maps.Keys(f.connections))...) {
			if _, ok := out[t]; !ok {
				out[t] = ""
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
