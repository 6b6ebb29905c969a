package openstack

import (
	"context"

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
	return &cinder.Snapshot{ID: s.ID, Name: s.Name, Status: s.Status, SizeGiB: s.Size, VolumeID: s.VolumeID}, nil
}
