package openstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// What Cinder 21 (Zed) does, as this file relies on it:
//
//   - GET /attachments and /attachments/detail (3.27) filter on volume_id
//     for the caller's project (api/v3/attachments.py _items; all_tenants
//     only widens an admin's listing to other projects). A volume id Cinder
//     does not know gives an empty list, not 404: the volume is read first.
//   - Both views show every record that is not deleted, reserved to
//     detaching and error_* (db volume_attachment_get_all_by_project).
//     /attachments gives id, status, instance, volume_id; /attachments/detail
//     adds attached_at, detached_at, attach_mode and connection_info
//     (api/v3/views/attachments.py). Neither shows the connector, the host
//     or created_at. The volume view lists only attached records, with
//     host_name for an admin (api/v2/views/volumes.py _get_attachments).
//   - The list is sorted by the sort parameter (default created_at desc)
//     and paged by limit (default and cap osapi_max_limit) and marker, with
//     no links in the answer (api/common.py get_pagination_params).
//   - DELETE /attachments/{id} works on any record (volume/api.py
//     attachment_delete): a reserved one is dropped in the API, others go
//     through the volume service, which terminates the connection with the
//     connector stored in the record (volume/manager.py attachment_delete,
//     _connection_terminate). A legacy os-attach stores no connector and no
//     connection_info (objects/volume.py begin_attach, db volume_attached),
//     so deleting its record would leave the backend's export in place: such
//     records get the legacy teardown instead.
//   - os-terminate_connection ends with unreserve_volume; os-unreserve and
//     os-roll_detaching are conditional updates from attaching and detaching
//     (volume/api.py).

// attachmentRecord is one entry of GET /attachments/detail.
type attachmentRecord struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	VolumeID string `json:"volume_id"`
	// ConnectionInfo records only whether Cinder holds connection info for
	// the record (an attachments-API export made with a connector); the
	// content, which can hold credentials, is not kept.
	ConnectionInfo present `json:"connection_info"`
}

// present is true for a JSON value other than null, {}, [] or "".
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "", "null", "{}", "[]", `""`:
		*p = false
	default:
		*p = true
	}
	return nil
}

// exportRecord is an export as ClearExports needs to see it.
type exportRecord struct {
	cinder.Attachment
	// legacy: made by os-attach, so removed with the legacy teardown. Every
	// record is legacy for a client below microversion 3.27.
	legacy bool
}

// ListExports implements cinder.Client. With microversion 3.27 or later it
// reads GET /attachments/detail?volume_id=ID, every page, oldest first
// (Cinder sorts by created_at then id), whatever the status (reserved,
// attaching, attached, detaching, error_*). Host is the volume view's
// host_name: Cinder shows it for attached records and to an admin only (the
// attachments API shows no connector), so it is "" for reserved and
// attaching ones. Below 3.27 there is no attachments API: the list falls
// back to the volume view, which shows only attached records (oldest first
// by attached_at, then id), and misses reserved and attaching ones.
// ErrNotFound for a missing volume.
func (c *Client) ListExports(ctx context.Context, volumeID string) ([]cinder.Attachment, error) {
	if volumeID == "" {
		return nil, cinder.NewError("list exports", "", cinder.ErrInvalid, "empty volume id")
	}
	v, err := c.getVolume(ctx, volumeID)
	if err != nil {
		return nil, err
	}
	recs, err := c.exports(ctx, v)
	if err != nil {
		return nil, err
	}
	out := make([]cinder.Attachment, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Attachment)
	}
	return out, nil
}

// exports lists the volume's export records (see ListExports); v is the
// volume as just read, for the hosts and the fallback.
func (c *Client) exports(ctx context.Context, v *volumes.Volume) ([]exportRecord, error) {
	if !c.attachmentsAPI() {
		atts := slices.Clone(v.Attachments)
		slices.SortStableFunc(atts, func(a, b volumes.Attachment) int {
			if d := a.AttachedAt.Compare(b.AttachedAt); d != 0 {
				return d
			}
			return strings.Compare(a.AttachmentID, b.AttachmentID)
		})
		out := make([]exportRecord, 0, len(atts))
		for _, a := range atts {
			out = append(out, exportRecord{Attachment: cinder.Attachment{ID: a.AttachmentID, Status: cinder.AttachAttached, Host: a.HostName}, legacy: true})
		}
		return out, nil
	}
	recs, err := c.listAttachments(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	hosts := make(map[string]string, len(v.Attachments))
	for _, a := range v.Attachments {
		hosts[a.AttachmentID] = a.HostName
	}
	out := make([]exportRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, exportRecord{
			Attachment: cinder.Attachment{ID: r.ID, Status: r.Status, Host: hosts[r.ID]},
			legacy:     r.Status == cinder.AttachAttached && !bool(r.ConnectionInfo),
		})
	}
	return out, nil
}

// attachmentSort asks Cinder for the oldest first; the views carry no
// created_at to sort by here.
const attachmentSort = "created_at:asc,id:asc"

// listAttachments reads every page of GET /attachments/detail for the
// volume. Cinder sends no links: the next page starts after the last id
// (marker) until a page brings nothing new, whatever the server's page cap
// (osapi_max_limit). Records of other volumes are dropped, whatever the
// server's filter did.
func (c *Client) listAttachments(ctx context.Context, volumeID string) ([]attachmentRecord, error) {
	var out []attachmentRecord
	seen := map[string]bool{}
	marker := ""
	for {
		q := url.Values{"volume_id": {volumeID}, "sort": {attachmentSort}}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page struct {
			Attachments []attachmentRecord `json:"attachments"`
		}
		err := c.call(ctx, "list_attachments", "list exports", volumeID, func(ctx context.Context) error {
			_, err := c.sc.Get(ctx, c.sc.ServiceURL("attachments", "detail")+"?"+q.Encode(), &page, &gophercloud.RequestOpts{OkCodes: []int{200}})
			return err
		})
		if err != nil {
			if marker != "" && errors.Is(err, cinder.ErrNotFound) {
				// The marker record went away between two pages.
				return nil, cinder.NewError("list exports", volumeID, cinder.ErrConflict, "the volume's attachments changed while they were listed: retry")
			}
			return nil, err
		}
		fresh := false
		for _, a := range page.Attachments {
			if a.ID == "" || seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			fresh = true
			marker = a.ID
			if a.VolumeID == volumeID {
				out = append(out, a)
			}
		}
		if !fresh {
			return out, nil
		}
	}
}

// ClearExports implements cinder.Client: GET the volume (ErrNotFound when
// missing); os-roll_detaching when it is detaching; then every export
// ListExports finds, oldest first: DELETE /attachments/{id} (3.27+), except
// for records made by a legacy os-attach and for every record below 3.27,
// which get the legacy teardown (os-begin_detaching when in-use,
// os-terminate_connection with the connector, os-detach of the id). A volume
// still attaching with no record left was reserved by a legacy os-reserve:
// os-terminate_connection with the connector, then os-unreserve. (A volume
// reserved with no record cannot arise: only an attachment create sets
// reserved, and removing the last record recomputes the status; os-unreserve
// acts on attaching only.) It stops at the first failure: a retry starts from
// what is left. The volume is re-read after any change; an available volume
// with no record costs only the reads.
func (c *Client) ClearExports(ctx context.Context, volumeID string, cn cinder.Connector) (*cinder.Volume, error) {
	if volumeID == "" {
		return nil, cinder.NewError("clear exports", "", cinder.ErrInvalid, "empty volume id")
	}
	v, err := c.getVolume(ctx, volumeID)
	if err != nil {
		return nil, err
	}
	changed := false
	if v.Status == cinder.StatusDetaching {
		if err := c.rollDetaching(ctx, volumeID); err != nil {
			return nil, err
		}
		changed = true
	}
	recs, err := c.exports(ctx, v)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.legacy {
			err = c.unexportLegacy(ctx, volumeID, r.ID, cn)
		} else {
			err = c.deleteAttachment(ctx, volumeID, r.ID)
		}
		if err != nil {
			return nil, err
		}
		changed = true
	}
	if changed {
		if v, err = c.getVolume(ctx, volumeID); err != nil {
			return nil, err
		}
	}
	if v.Status == cinder.StatusAttaching {
		if changed {
			// Every record found is gone; one that is there now is someone
			// else's export in progress, not a legacy os-reserve.
			left, err := c.exports(ctx, v)
			if err != nil {
				return nil, err
			}
			if len(left) > 0 {
				return nil, cinder.NewError("clear exports", volumeID, cinder.ErrConflict,
					fmt.Sprintf("a new export (%s, %s) appeared while the volume's exports were removed", left[0].ID, left[0].Status))
			}
		}
		if err := c.terminateConnection(ctx, volumeID, cn); err != nil {
			return nil, err
		}
		if err := c.unreserve(ctx, volumeID); err != nil {
			return nil, err
		}
		if v, err = c.getVolume(ctx, volumeID); err != nil {
			return nil, err
		}
	}
	return toVolume(v), nil
}

func (c *Client) rollDetaching(ctx context.Context, id string) error {
	return c.volumeAction(ctx, "roll_detaching", "os-roll_detaching", id, map[string]any{"os-roll_detaching": nil}, nil)
}
