package openstack

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// ExtendVolume implements cinder.Client: GET the volume, then POST
// /volumes/{id}/action {"os-extend":{"new_size":N}} (202). An in-use volume
// is sent with microversion 3.42 when the client's own is lower and Cinder
// offers it (for this one request only); when Cinder offers less,
// nothing is sent and the error wraps cinder.ErrOnlineExtendUnsupported.
// Cinder's own refusals come back classified: 400 (a size not above the
// current one, a status it does not extend from) ErrInvalid, 413
// ErrQuotaExceeded, 404 ErrNotFound.
func (c *Client) ExtendVolume(ctx context.Context, id string, newSizeGiB int) error {
	if id == "" || newSizeGiB <= 0 {
		return cinder.NewError("extend volume", id, cinder.ErrInvalid, "a volume id and a positive size are required")
	}
	v, err := c.getVolume(ctx, id)
	if err != nil {
		return err
	}
	sc := c.sc
	if v.Status == cinder.StatusInUse && !mvAtLeast(c.microversion, cinder.MicroversionExtendInUse) {
		if !mvAtLeast(c.versions.Max, cinder.MicroversionExtendInUse) {
			return &cinder.Error{Op: "extend volume", Volume: id, Kind: cinder.ErrInvalid, Err: cinder.ErrOnlineExtendUnsupported,
				Message: fmt.Sprintf("the volume is in-use and this Cinder offers microversions up to %s", c.versions.Max)}
		}
		// A copy of the service client for this one request: gophercloud
		// writes the client's microversion over any header of the request.
		one := *c.sc
		one.Microversion = cinder.MicroversionExtendInUse
		sc = &one
	}
	body := map[string]any{"os-extend": map[string]any{"new_size": newSizeGiB}}
	return c.call(ctx, "extend_volume", "extend volume", id, func(ctx context.Context) error {
		_, err := sc.Post(ctx, sc.ServiceURL("volumes", id, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		return err
	})
}
