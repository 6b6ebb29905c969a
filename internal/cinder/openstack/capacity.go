package openstack

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/schedulerstats"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

var _ cinder.CapacityReader = (*Client)(nil)

// backendNameSpec is the volume type extra spec that ties a type to the
// backends of that volume_backend_name.
const backendNameSpec = "volume_backend_name"

// ProjectLimits implements cinder.CapacityReader: GET /limits.
func (c *Client) ProjectLimits(ctx context.Context) (*cinder.Limits, error) {
	var l *limits.Limits
	err := c.call(ctx, "get_limits", "read project limits", "", func(ctx context.Context) error {
		var err error
		l, err = limits.Get(ctx, c.sc).Extract()
		return err
	})
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, cinder.NewError("read project limits", "", cinder.ErrInvalid, "Cinder's answer has no limits")
	}
	a := l.Absolute
	return &cinder.Limits{
		MaxGigabytes: a.MaxTotalVolumeGigabytes, UsedGigabytes: a.TotalGigabytesUsed,
		MaxVolumes: a.MaxTotalVolumes, UsedVolumes: a.TotalVolumesUsed,
	}, nil
}

// AvailabilityZones implements cinder.CapacityReader:
// GET /os-availability-zone.
func (c *Client) AvailabilityZones(ctx context.Context) ([]string, error) {
	var zones []string
	err := c.call(ctx, "list_availability_zones", "list availability zones", "", func(ctx context.Context) error {
		pages, err := availabilityzones.List(c.sc).AllPages(ctx)
		if err != nil {
			return err
		}
		all, err := availabilityzones.ExtractAvailabilityZones(pages)
		for _, z := range all {
			if z.ZoneState.Available {
				zones = append(zones, z.ZoneName)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(zones)
	return slices.Compact(zones), nil
}

// Pools implements cinder.CapacityReader: GET
// /scheduler-stats/get_pools?detail=true, then GET
// /os-services?binary=cinder-volume for the pools' zones.
func (c *Client) Pools(ctx context.Context) ([]cinder.Pool, error) {
	var pools []schedulerstats.StoragePool
	var unknown []string // pools reporting capacity "unknown"
	err := c.call(ctx, "get_pools", "read scheduler pool stats", "", func(ctx context.Context) error {
		pages, err := schedulerstats.List(c.sc, schedulerstats.ListOpts{Detail: true}).AllPages(ctx)
		if err != nil {
			return err
		}
		if pools, err = schedulerstats.ExtractStoragePools(pages); err != nil {
			return err
		}
		// gophercloud reads "unknown" as 0; Cinder's CapacityFilter lets
		// an unknown pool pass like an infinite one
		var raw []struct {
			Name         string `json:"name"`
			Capabilities struct {
				Free  any `json:"free_capacity_gb"`
				Total any `json:"total_capacity_gb"`
			} `json:"capabilities"`
		}
		if err := pages.(schedulerstats.StoragePoolPage).ExtractIntoSlicePtr(&raw, "pools"); err != nil {
			return err
		}
		for _, r := range raw {
			if r.Capabilities.Free == "unknown" || r.Capabilities.Total == "unknown" {
				unknown = append(unknown, r.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	zones, err := c.volumeServiceZones(ctx)
	if err != nil && !errors.Is(err, cinder.ErrUnauthorized) {
		return nil, err
	}
	out := make([]cinder.Pool, 0, len(pools))
	for _, p := range pools {
		cp := p.Capabilities
		pool := cinder.Pool{
			Name: p.Name, Backend: cp.VolumeBackendName,
			TotalGiB: cp.TotalCapacityGB, FreeGiB: cp.FreeCapacityGB, ProvisionedGiB: cp.ProvisionedCapacityGB,
			ReservedPercentage: int(cp.ReservedPercentage), ThinProvisioning: cp.ThinProvisioningSupport,
		}
		pool.MaxOverSubscriptionRatio = parseRatio(cp.MaxOverSubscriptionRatio)
		pool.Zone = zones[pool.Host()]
		if slices.Contains(unknown, p.Name) {
			pool.TotalGiB, pool.FreeGiB = math.Inf(1), math.Inf(1)
		}
		out = append(out, pool)
	}
	slices.SortFunc(out, func(a, b cinder.Pool) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// volumeServiceZones maps each cinder-volume service host (host@backend)
// to its availability zone.
func (c *Client) volumeServiceZones(ctx context.Context) (map[string]string, error) {
	zones := map[string]string{}
	err := c.call(ctx, "list_services", "list volume services", "", func(ctx context.Context) error {
		pages, err := services.List(c.sc, services.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
		if err != nil {
			return err
		}
		all, err := services.ExtractServices(pages)
		for _, s := range all {
			zones[s.Host] = s.Zone
		}
		return err
	})
	return zones, err
}

// VolumeTypeBackends implements cinder.CapacityReader: GET /types. The
// volume types' extra specs are in the list for admins only (Cinder's
// default policy); others get every backend as "".
func (c *Client) VolumeTypeBackends(ctx context.Context) (map[string]string, error) {
	backends := map[string]string{}
	err := c.call(ctx, "list_volume_types", "list volume types", "", func(ctx context.Context) error {
		pages, err := volumetypes.List(c.sc, volumetypes.ListOpts{}).AllPages(ctx)
		if err != nil {
			return err
		}
		types, err := volumetypes.ExtractVolumeTypes(pages)
		for _, t := range types {
			backends[t.Name] = t.ExtraSpecs[backendNameSpec]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return backends, nil
}

// parseRatio reads max_over_subscription_ratio: a number, or "auto" (the
// backend computes it; not in the stats: 0, read as no over-subscription).
func parseRatio(s string) float64 {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return r
}
