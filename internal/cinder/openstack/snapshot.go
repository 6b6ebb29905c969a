package openstack

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// GetSnapshot implements cinder.Client.
func (c *Client) GetSnapshot(ctx context.Context, id string) (*cinder.Snapshot, error) {
	if id == "" {
		return nil, cinder.NewError("get snapshot", "", cinder.ErrInvalid, "empty snapshot id")
	}
	var s *snapshots.Snapshot
	err := c.call(ctx, "get_snapshot", "get snapshot", id, func(ctx context.Context) error {
		var err error
		s, err = snapshots.Get(ctx, c.sc, id).Extract()
		return err
	})
	if err != nil {
		return nil, err
	}
	return toSnapshot(s), nil
}

// CreateSnapshot implements cinder.Client: POST /snapshots
// {"snapshot":{"volume_id":..,"name":..,"force":..,"metadata":..}} (202).
func (c *Client) CreateSnapshot(ctx context.Context, req cinder.SnapshotRequest) (*cinder.Snapshot, error) {
	if req.VolumeID == "" || req.Name == "" {
		return nil, cinder.NewError("create snapshot", req.Name, cinder.ErrInvalid, "a volume id and a name are required")
	}
	var s *snapshots.Snapshot
	err := c.call(ctx, "create_snapshot", "create snapshot", req.Name, func(ctx context.Context) error {
		var err error
		s, err = snapshots.Create(ctx, c.sc, snapshots.CreateOpts{
			VolumeID: req.VolumeID, Name: req.Name, Description: req.Description,
			Metadata: req.Metadata, Force: req.Force,
		}).Extract()
		return err
	})
	if err != nil {
		return nil, err
	}
	return toSnapshot(s), nil
}

// ListSnapshots implements cinder.Client: GET /snapshots with the
// name and volume_id filters, every page; the filter is applied again here
// whatever the server did with it.
func (c *Client) ListSnapshots(ctx context.Context, filter cinder.SnapshotFilter) ([]cinder.Snapshot, error) {
	var all []snapshots.Snapshot
	err := c.call(ctx, "list_snapshots", "list snapshots", cmp.Or(filter.Name, filter.VolumeID), func(ctx context.Context) error {
		pages, err := snapshots.List(c.sc, snapshots.ListOpts{Name: filter.Name, VolumeID: filter.VolumeID}).AllPages(ctx)
		if err != nil {
			return err
		}
		all, err = snapshots.ExtractSnapshots(pages)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []cinder.Snapshot{}
	for i := range all {
		if filter.Name != "" && all[i].Name != filter.Name || filter.VolumeID != "" && all[i].VolumeID != filter.VolumeID {
			continue
		}
		out = append(out, *toSnapshot(&all[i]))
	}
	slices.SortStableFunc(out, func(a, b cinder.Snapshot) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteSnapshot implements cinder.Client: DELETE /snapshots/{id} (202).
func (c *Client) DeleteSnapshot(ctx context.Context, id string) error {
	if id == "" {
		return cinder.NewError("delete snapshot", "", cinder.ErrInvalid, "empty snapshot id")
	}
	err := c.call(ctx, "delete_snapshot", "delete snapshot", id, func(ctx context.Context) error {
		return snapshots.Delete(ctx, c.sc, id).ExtractErr()
	})
	if errors.Is(err, cinder.ErrNotFound) {
		return nil
	}
	return err
}

func toSnapshot(s *snapshots.Snapshot) *cinder.Snapshot {
	return &cinder.Snapshot{
		ID: s.ID, Name: s.Name, Description: s.Description, Status: s.Status, SizeGiB: s.Size,
		VolumeID: s.VolumeID, Metadata: s.Metadata, CreatedAt: s.CreatedAt,
	}
}
