package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// legacyMountpoint is recorded by os-attach: there is no guest device, the
// kubelet of whichever node mounts the PV opens the connection itself.
const legacyMountpoint = "/dev/cinder-provisioner"

// connectorBody is the os-brick connector as Cinder expects it.
func connectorBody(cn cinder.Connector) map[string]any {
	m := map[string]any{
		"host":      cn.Host,
		"multipath": cn.Multipath,
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("initiator", cn.Initiator)
	put("ip", cn.IP)
	put("platform", cn.Platform)
	put("os_type", cn.OSType)
	put("nqn", cn.NQN)
	if len(cn.WWPNs) > 0 {
		m["wwpns"] = cn.WWPNs
	}
	if len(cn.WWNNs) > 0 {
		m["wwnns"] = cn.WWNNs
	}
	return m
}

// normalise turns connection info into cinder.Connection, whether Cinder
// answered nested ({"driver_volume_type":..,"data":{..}}, legacy) or
// flattened (attachments API: the data keys at top level plus
// driver_volume_type and attachment_id). attachment_id is returned apart.
func normalise(info map[string]any) (cinder.Connection, string) {
	var conn cinder.Connection
	dvt, _ := info["driver_volume_type"].(string)
	conn.DriverVolumeType = dvt
	src := info
	if data, ok := info["data"].(map[string]any); ok && dvt != "" {
		src = data
	}
	conn.Data = make(map[string]any, len(src))
	var attachmentID string
	if s, ok := info["attachment_id"].(string); ok {
		attachmentID = s
	}
	for k, v := range src {
		switch k {
		case "driver_volume_type":
			continue
		case "attachment_id":
			if s, ok := v.(string); ok && attachmentID == "" {
				attachmentID = s
			}
			continue
		}
		conn.Data[k] = v
	}
	return conn, attachmentID
}

// undoStack runs cleanups in reverse order, on a context that survives the
// caller's (a cancelled provision must still not leak an export).
type undoStack struct {
	c     *Client
	steps []undoStep
}

type undoStep struct {
	name string
	fn   func(ctx context.Context) error
}

func (u *undoStack) push(name string, fn func(ctx context.Context) error) {
	u.steps = append(u.steps, undoStep{name, fn})
}

func (u *undoStack) run(ctx context.Context) error {
	// outlives the caller (a cancelled attempt must not leak an export),
	// not the leadership (cinder.WithFence)
	ctx, cancel := cinder.Detached(ctx, u.c.rollbackTimeout)
	defer cancel()
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(ctx); err != nil && !errors.Is(err, cinder.ErrNotFound) {
			errs = append(errs, fmt.Errorf("undo %s: %w", u.steps[i].name, err))
		}
	}
	return errors.Join(errs...)
}

// finish joins the export error with any rollback failure.
func (u *undoStack) finish(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if rbErr := u.run(ctx); rbErr != nil {
		return errors.Join(err, fmt.Errorf("rollback incomplete, the volume may keep an export: %w", rbErr))
	}
	return err
}

// Export implements cinder.Client.
func (c *Client) Export(ctx context.Context, volumeID string, cn cinder.Connector) (*cinder.Export, error) {
	if volumeID == "" {
		return nil, cinder.NewError("export volume", "", cinder.ErrInvalid, "empty volume id")
	}
	if cn.Host == "" {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrInvalid, "the connector needs a host name")
	}
	if c.method == cinder.ExportAttachments {
		return c.exportAttachment(ctx, volumeID, cn)
	}
	return c.exportLegacy(ctx, volumeID, cn)
}

// Unexport implements cinder.Client. It dispatches on the method the export
// was made with (ref.Method; "" means the client's own), not on the client's
// method: an export made before a change of the export-method setting is
// still removed the way it was made. DELETE /attachments needs microversion
// 3.27 (api/v3/attachments.py: delete is NEW_ATTACH); a client that sends
// less refuses an attachments export with ErrInvalid before any request.
func (c *Client) Unexport(ctx context.Context, volumeID string, ref cinder.ExportRef, cn cinder.Connector) error {
	if volumeID == "" || ref.ID == "" {
		return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid, "volume id and export id are required")
	}
	method := ref.Method
	if method == "" {
		method = c.method
	}
	switch method {
	case cinder.ExportAttachments:
		if !c.attachmentsAPI() {
			return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid,
				fmt.Sprintf("export %s was made with the attachments API: deleting it needs microversion %s, this client sends %s (cinder offers up to %s)",
					ref.ID, mvNewAttach, c.microversion, c.versions.Max))
		}
		return c.deleteAttachment(ctx, volumeID, ref.ID)
	case cinder.ExportLegacy:
		return c.unexportLegacy(ctx, volumeID, ref.ID, cn)
	}
	return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid, fmt.Sprintf("unknown export method %q: want %s or %s", method, cinder.ExportAttachments, cinder.ExportLegacy))
}

// attachmentsAPI reports whether this client's microversion reaches the
// attachments API's list, show and delete (3.27).
func (c *Client) attachmentsAPI() bool { return mvAtLeast(c.microversion, mvNewAttach) }

// exportAttachment: POST /attachments with the connector and mode rw and NO
// instance_uuid (Cinder asks Nova about attachments with one), then
// os-complete. gophercloud's attachments.CreateOpts always sends
// instance_uuid, so the body is our own.
//
// A failure after Cinder answered with the attachment's id is undone
// (DELETE /attachments/{id}). A create whose answer is lost (timeout, reset
// connection, a proxy's 5xx after Cinder applied it) leaves an attachment we
// have no id for, and so does Cinder's own 500 on a failed backend export:
// volume/api.py attachment_create commits the reserved record
// (_attachment_reserve) before the synchronous attachment_update RPC, and
// api/v3/attachments.py create turns that RPC's failure into a 500 without
// removing the record; the attachment and the volume stay reserved. This
// function does not hunt for that record: the attachments views
// (api/v3/views/attachments.py) show neither the connector, the host nor
// created_at, and a failed create never stored the connector
// (volume/manager.py _connection_create saves it only after the driver's
// initialize_connection succeeded), so nothing tells our record from another
// client's. ClearExports removes it.
func (c *Client) exportAttachment(ctx context.Context, volumeID string, cn cinder.Connector) (_ *cinder.Export, err error) {
	undo := &undoStack{c: c}
	defer func() { err = undo.finish(ctx, err) }()

	att := map[string]any{"volume_uuid": volumeID, "connector": connectorBody(cn)}
	if mvAtLeast(c.microversion, mvMode) {
		att["mode"] = "rw"
	}
	var resp struct {
		Attachment struct {
			ID             string          `json:"id"`
			Status         string          `json:"status"`
			ConnectionInfo json.RawMessage `json:"connection_info"`
		} `json:"attachment"`
	}
	err = c.call(ctx, "create_attachment", "export volume (create attachment)", volumeID, func(ctx context.Context) error {
		_, err := c.sc.Post(ctx, c.sc.ServiceURL("attachments"), map[string]any{"attachment": att}, &resp, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
		return err
	})
	if err != nil {
		return nil, err
	}
	id := resp.Attachment.ID
	if id == "" {
		return nil, cinder.NewError("export volume (create attachment)", volumeID, cinder.ErrUnavailable, "cinder returned an attachment without id")
	}
	undo.push("create attachment", func(ctx context.Context) error { return c.deleteAttachment(ctx, volumeID, id) })

	info, derr := decodeConnectionInfo(resp.Attachment.ConnectionInfo)
	if derr != nil {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrUnavailable, "malformed connection_info: "+derr.Error())
	}
	conn, _ := normalise(info)
	if conn.DriverVolumeType == "" {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrUnavailable, "cinder returned connection_info without driver_volume_type")
	}
	err = c.call(ctx, "complete_attachment", "export volume (complete attachment)", volumeID, func(ctx context.Context) error {
		_, err := c.sc.Post(ctx, c.sc.ServiceURL("attachments", id, "action"), map[string]any{"os-complete": nil}, nil, &gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cinder.Export{Method: cinder.ExportAttachments, ID: id, Connection: conn}, nil
}

func (c *Client) deleteAttachment(ctx context.Context, volumeID, id string) error {
	err := c.call(ctx, "delete_attachment", "unexport volume (delete attachment "+id+")", volumeID, func(ctx context.Context) error {
		_, err := c.sc.Delete(ctx, c.sc.ServiceURL("attachments", id), &gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}})
		return err
	})
	if errors.Is(err, cinder.ErrNotFound) {
		return nil
	}
	return err
}

// volumeAction posts one legacy action to /volumes/{id}/action.
func (c *Client) volumeAction(ctx context.Context, op, what, volumeID string, body map[string]any, resp any) error {
	okCodes := []int{200, 202, 204}
	return c.call(ctx, op, what, volumeID, func(ctx context.Context) error {
		_, err := c.sc.Post(ctx, c.sc.ServiceURL("volumes", volumeID, "action"), body, resp, &gophercloud.RequestOpts{OkCodes: okCodes})
		return err
	})
}

func (c *Client) reserve(ctx context.Context, id string) error {
	return c.volumeAction(ctx, "reserve", "export volume (os-reserve)", id, map[string]any{"os-reserve": nil}, nil)
}

func (c *Client) unreserve(ctx context.Context, id string) error {
	return c.volumeAction(ctx, "unreserve", "os-unreserve", id, map[string]any{"os-unreserve": nil}, nil)
}

func (c *Client) terminateConnection(ctx context.Context, id string, cn cinder.Connector) error {
	return c.volumeAction(ctx, "terminate_connection", "os-terminate_connection", id,
		map[string]any{"os-terminate_connection": map[string]any{"connector": connectorBody(cn)}}, nil)
}

func (c *Client) detach(ctx context.Context, id, attachmentID string) error {
	body := map[string]any{}
	if attachmentID != "" {
		body["attachment_id"] = attachmentID
	}
	return c.volumeAction(ctx, "detach", "os-detach", id, map[string]any{"os-detach": body}, nil)
}

// exportLegacy: os-reserve, os-initialize_connection, os-attach (host_name,
// mode rw); the export id is the attachment Cinder records for os-attach.
// On failure each step is undone in reverse (os-detach,
// os-terminate_connection, os-unreserve).
func (c *Client) exportLegacy(ctx context.Context, volumeID string, cn cinder.Connector) (_ *cinder.Export, err error) {
	undo := &undoStack{c: c}
	defer func() { err = undo.finish(ctx, err) }()

	before, err := c.getVolume(ctx, volumeID)
	if err != nil {
		return nil, err
	}
	known := attachmentIDs(before)

	if err = c.reserve(ctx, volumeID); err != nil {
		return nil, err
	}
	undo.push("os-reserve", func(ctx context.Context) error { return c.unreserve(ctx, volumeID) })

	var resp struct {
		ConnectionInfo json.RawMessage `json:"connection_info"`
	}
	err = c.volumeAction(ctx, "initialize_connection", "export volume (os-initialize_connection)", volumeID,
		map[string]any{"os-initialize_connection": map[string]any{"connector": connectorBody(cn)}}, &resp)
	if err != nil {
		return nil, err
	}
	undo.push("os-initialize_connection", func(ctx context.Context) error { return c.terminateConnection(ctx, volumeID, cn) })
	info, derr := decodeConnectionInfo(resp.ConnectionInfo)
	if derr != nil {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrUnavailable, "malformed connection_info: "+derr.Error())
	}
	conn, _ := normalise(info)
	if conn.DriverVolumeType == "" {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrUnavailable, "cinder returned connection_info without driver_volume_type")
	}

	err = c.volumeAction(ctx, "attach", "export volume (os-attach)", volumeID,
		map[string]any{"os-attach": map[string]any{"host_name": cn.Host, "mountpoint": legacyMountpoint, "mode": "rw"}}, nil)
	if err != nil {
		return nil, err
	}
	var attachmentID string
	undo.push("os-attach", func(ctx context.Context) error { return c.detach(ctx, volumeID, attachmentID) })

	after, err := c.getVolume(ctx, volumeID)
	if err != nil {
		return nil, err
	}
	for _, a := range after.Attachments {
		if !slices.Contains(known, a.AttachmentID) && (a.HostName == "" || a.HostName == sanitizeHostname(cn.Host)) {
			attachmentID = a.AttachmentID
			break
		}
	}
	if attachmentID == "" {
		return nil, cinder.NewError("export volume (os-attach)", volumeID, cinder.ErrUnavailable, "cinder recorded no attachment for host "+cn.Host)
	}
	return &cinder.Export{Method: cinder.ExportLegacy, ID: attachmentID, Connection: conn}, nil
}

// sanitizeHostname is Cinder's volume_utils.sanitize_hostname, which the
// volume manager's attach_volume applies to os-attach's host_name before
// recording it: runes beyond Latin-1 dropped, space and _ to -, anything but
// letters, digits, . and - removed, lower case, . and - trimmed.
func sanitizeHostname(h string) string {
	var b strings.Builder
	for _, r := range h {
		switch {
		case r > 0xFF:
		case r == ' ' || r == '_':
			b.WriteRune('-')
		case unicode.IsLetter(r) || unicode.IsNumber(r) || r == '.' || r == '-':
			b.WriteRune(r)
		}
	}
	return strings.Trim(strings.ToLower(b.String()), ".-")
}

func attachmentIDs(v *volumes.Volume) []string {
	var ids []string
	for _, a := range v.Attachments {
		ids = append(ids, a.AttachmentID)
	}
	return ids
}

// unexportLegacy: os-begin_detaching, os-terminate_connection (same
// connector), os-detach (the attachment). A volume left reserved or
// attaching by an interrupted export gets os-terminate_connection and
// os-unreserve. A volume or attachment already gone is success.
func (c *Client) unexportLegacy(ctx context.Context, volumeID, exportID string, cn cinder.Connector) error {
	v, err := c.getVolume(ctx, volumeID)
	if errors.Is(err, cinder.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !slices.Contains(attachmentIDs(v), exportID) {
		if v.Status == cinder.StatusAttaching || v.Status == cinder.StatusReserved {
			if err := c.terminateConnection(ctx, volumeID, cn); err != nil {
				return err
			}
			return c.unreserve(ctx, volumeID)
		}
		return nil
	}
	if v.Status == cinder.StatusInUse {
		err := c.volumeAction(ctx, "begin_detaching", "unexport volume (os-begin_detaching)", volumeID, map[string]any{"os-begin_detaching": nil}, nil)
		if err != nil {
			return err
		}
	}
	if err := c.terminateConnection(ctx, volumeID, cn); err != nil {
		// Back to in-use so a retry starts from the same state.
		rb, cancel := cinder.Detached(ctx, c.rollbackTimeout)
		defer cancel()
		if rbErr := c.rollDetaching(rb, volumeID); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	err = c.detach(ctx, volumeID, exportID)
	if errors.Is(err, cinder.ErrNotFound) {
		return nil
	}
	return err
}
