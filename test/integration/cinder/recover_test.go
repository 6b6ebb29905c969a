package cinder_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// rawConnector is hostConnector as Cinder's API takes it.
func rawConnector(cn cinder.Connector) map[string]any {
	return map[string]any{"initiator": cn.Initiator, "ip": cn.IP, "host": cn.Host, "platform": cn.Platform, "os_type": cn.OSType, "multipath": false}
}

// rawAttachmentCreate posts POST /attachments behind the client's back (the
// framework's client sends microversion 3.44) and returns the attachment id
// and its flattened connection_info.
func rawAttachmentCreate(ctx context.Context, t *testing.T, sc *gophercloud.ServiceClient, volumeID string, connector map[string]any) (string, map[string]any) {
	t.Helper()
	att := map[string]any{"volume_uuid": volumeID}
	if connector != nil {
		att["connector"] = connector
	}
	var resp struct {
		Attachment struct {
			ID             string         `json:"id"`
			ConnectionInfo map[string]any `json:"connection_info"`
		} `json:"attachment"`
	}
	if _, err := sc.Post(ctx, sc.ServiceURL("attachments"), map[string]any{"attachment": att}, &resp, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("POST /attachments: %v", err)
	}
	return resp.Attachment.ID, resp.Attachment.ConnectionInfo
}

func rawAction(ctx context.Context, t *testing.T, sc *gophercloud.ServiceClient, volumeID string, body map[string]any, resp any) {
	t.Helper()
	if _, err := sc.Post(ctx, sc.ServiceURL("volumes", volumeID, "action"), body, resp, &gophercloud.RequestOpts{OkCodes: []int{200, 202}}); err != nil {
		t.Fatalf("volume action %v: %v", body, err)
	}
}

// loginOf builds an iSCSI login from connection data (flattened or the
// nested data of os-initialize_connection).
func loginOf(t *testing.T, initiator string, data map[string]any) framework.ISCSILogin {
	t.Helper()
	str := func(k string) string { s, _ := data[k].(string); return s }
	var lun float64
	ok := true
	switch v := data["target_lun"].(type) {
	case float64:
		lun = v
	case json.Number:
		f, err := v.Float64()
		lun, ok = f, err == nil
	default:
		ok = false
	}
	if !ok || str("target_portal") == "" || str("target_iqn") == "" {
		t.Fatalf("connection data without an iSCSI target (keys %v)", keys(data))
	}
	return framework.ISCSILogin{Initiator: initiator, Portal: str("target_portal"), IQN: str("target_iqn"), LUN: int32(lun), Username: str("auth_username"), Password: str("auth_password")}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestClearExportsFromInterruptedStates drives a tgtfile volume, behind the
// client's back, into each state an interrupted export or unexport leaves.
// ListExports must see what Cinder records, ClearExports must bring the
// volume back to available with no export, its iSCSI target closed, and the
// volume must then delete.
func TestClearExportsFromInterruptedStates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string // of the client that clears
		// setup returns the status it left, the export statuses ListExports
		// must report and, when a target was opened, a login to it.
		setup func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin)
		// targetStays: ClearExports cannot close the target. Only os-detach
		// of a record and the delete of an attachment holding the connector
		// call the driver's remove_export (volume/manager.py detach_volume,
		// attachment_delete); os-terminate_connection does not, and for tgt
		// it does nothing at all. A legacy os-initialize_connection without
		// os-attach leaves neither.
		targetStays bool
	}{
		{
			name: "reserved by an attachment create without connector", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				rawAttachmentCreate(ctx, t, e.rawClient(), id, nil)
				return cinder.StatusReserved, []string{cinder.AttachReserved}, nil
			},
		},
		{
			name: "attaching by an attachment create never completed", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				_, info := rawAttachmentCreate(ctx, t, e.rawClient(), id, rawConnector(cn))
				l := loginOf(t, cn.Initiator, info)
				return cinder.StatusAttaching, []string{cinder.AttachAttaching}, &l
			},
		},
		{
			name: "attaching by a legacy os-reserve and os-initialize_connection", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				sc := e.rawClient()
				rawAction(ctx, t, sc, id, map[string]any{"os-reserve": nil}, nil)
				var resp struct {
					ConnectionInfo struct {
						Data map[string]any `json:"data"`
					} `json:"connection_info"`
				}
				rawAction(ctx, t, sc, id, map[string]any{"os-initialize_connection": map[string]any{"connector": rawConnector(cn)}}, &resp)
				l := loginOf(t, cn.Initiator, resp.ConnectionInfo.Data)
				return cinder.StatusAttaching, nil, &l
			},
			targetStays: true,
		},
		{
			name: "attaching by a legacy os-reserve, cleared by a legacy client", method: openstack.ExportLegacy,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				rawAction(ctx, t, e.rawClient(), id, map[string]any{"os-reserve": nil}, nil)
				return cinder.StatusAttaching, nil, nil
			},
		},
		{
			name: "detaching by a legacy os-begin_detaching", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				l := exportWith(ctx, t, e, openstack.ExportLegacy, id, cn)
				rawAction(ctx, t, e.rawClient(), id, map[string]any{"os-begin_detaching": nil}, nil)
				return cinder.StatusDetaching, []string{cinder.AttachAttached}, &l
			},
		},
		{
			name: "in-use by an attachments export", method: openstack.ExportLegacy,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				l := exportWith(ctx, t, e, openstack.ExportAttachments, id, cn)
				return cinder.StatusInUse, []string{cinder.AttachAttached}, &l
			},
		},
		{
			name: "in-use by a legacy export, cleared by an attachments client", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				l := exportWith(ctx, t, e, openstack.ExportLegacy, id, cn)
				return cinder.StatusInUse, []string{cinder.AttachAttached}, &l
			},
		},
		{
			name: "available", method: openstack.ExportAttachments,
			setup: func(ctx context.Context, t *testing.T, e *env, id string, cn cinder.Connector) (string, []string, *framework.ISCSILogin) {
				return cinder.StatusAvailable, nil, nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := testContext(t)
			c, reg := e.client(e.noauthConfig(), tc.method)
			cn := hostConnector(t)
			vol := createAvailable(t, c, e.name("clear"), "tgtfile", nil)

			wantStatus, wantExports, login := tc.setup(ctx, t, e, vol.ID, cn)
			if login != nil {
				if _, err := framework.ReadCapacity(ctx, *login); err != nil {
					t.Fatalf("the target of the interrupted export is not readable, the test proves nothing: %v", err)
				}
			}
			v, err := c.GetVolume(ctx, vol.ID)
			if err != nil || v.Status != wantStatus {
				t.Fatalf("after setup: %+v, %v; want status %s", v, err, wantStatus)
			}
			exps, err := c.ListExports(ctx, vol.ID)
			if err != nil {
				t.Fatalf("list exports: %v", err)
			}
			var statuses []string
			for _, x := range exps {
				statuses = append(statuses, x.Status)
				// os-attach records the host lower-cased (sanitize_hostname).
				if x.Status == cinder.AttachAttached && !strings.EqualFold(x.Host, cn.Host) {
					t.Errorf("attached export %s: host %q, want %q", x.ID, x.Host, cn.Host)
				}
			}
			if len(statuses) != len(wantExports) || len(statuses) > 0 && statuses[0] != wantExports[0] {
				t.Fatalf("exports %+v, want statuses %v", exps, wantExports)
			}

			got, err := c.ClearExports(ctx, vol.ID, cn)
			if err != nil {
				t.Fatalf("clear exports from %s: %v", wantStatus, err)
			}
			if got.Status != cinder.StatusAvailable || len(got.AttachmentIDs) != 0 {
				t.Fatalf("after clear: status %s attachments %v, want available without any", got.Status, got.AttachmentIDs)
			}
			raw, err := volumes.Get(ctx, e.rawClient(), vol.ID).Extract()
			if err != nil || raw.Status != cinder.StatusAvailable || len(raw.Attachments) != 0 {
				t.Fatalf("cinder after clear: %+v, %v", raw, err)
			}
			if left, err := c.ListExports(ctx, vol.ID); err != nil || len(left) != 0 {
				t.Fatalf("exports after clear: %+v, %v; want none", left, err)
			}
			if login != nil {
				_, err := framework.ReadCapacity(ctx, *login)
				switch {
				case err == nil && !tc.targetStays:
					t.Error("the target is still readable after ClearExports")
				case err == nil:
					t.Log("the target stays readable after ClearExports (known: no remove_export without an attachment record)")
				}
			}
			if wantStatus == cinder.StatusAvailable {
				for _, op := range []string{"delete_attachment", "terminate_connection", "unreserve", "detach", "roll_detaching"} {
					if n := requestCount(t, reg, op, "success"); n != 0 {
						t.Errorf("clear of an available volume sent %s %v times", op, n)
					}
				}
			}
			// A second clear finds nothing to do.
			if _, err := c.ClearExports(ctx, vol.ID, cn); err != nil {
				t.Fatalf("second clear: %v", err)
			}
			deleteAndConfirm(t, c, vol.ID)
		})
	}
}

// exportWith exports the volume with a client of the method and returns a
// login to its target.
func exportWith(ctx context.Context, t *testing.T, e *env, method, id string, cn cinder.Connector) framework.ISCSILogin {
	t.Helper()
	c, _ := e.client(e.noauthConfig(), method)
	exp, err := c.Export(ctx, id, cn)
	if err != nil {
		t.Fatalf("export (%s): %v", method, err)
	}
	data := map[string]any{}
	for k, v := range exp.Connection.Data {
		if n, ok := v.(json.Number); ok {
			f, _ := n.Float64()
			v = f
		}
		data[k] = v
	}
	return loginOf(t, cn.Initiator, data)
}

// TestFailedAttachmentCreateLeavesReserved: a backend that refuses the
// export (tgtfile's iSCSI target needs the connector's initiator) makes
// POST /attachments answer 500 after Cinder committed the reserved record.
// Export cannot undo what it has no id for; ListExports shows the reserved
// record, ClearExports removes it.
func TestFailedAttachmentCreateLeavesReserved(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	c, _ := e.client(e.noauthConfig(), openstack.ExportAttachments)
	vol := createAvailable(t, c, e.name("failed-create"), "tgtfile", nil)
	cn := hostConnector(t)
	cn.Initiator = ""

	if _, err := c.Export(ctx, vol.ID, cn); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("export without initiator: %v, want ErrUnavailable (Cinder's 500)", err)
	}
	v, err := c.GetVolume(ctx, vol.ID)
	if err != nil || v.Status != cinder.StatusReserved {
		t.Fatalf("after the failed create: %+v, %v; want reserved", v, err)
	}
	exps, err := c.ListExports(ctx, vol.ID)
	if err != nil || len(exps) != 1 || exps[0].Status != cinder.AttachReserved {
		t.Fatalf("exports %+v, %v; want one reserved", exps, err)
	}
	got, err := c.ClearExports(ctx, vol.ID, cn)
	if err != nil || got.Status != cinder.StatusAvailable {
		t.Fatalf("clear: %+v, %v; want available", got, err)
	}
	deleteAndConfirm(t, c, vol.ID)
}

// TestRecoveryOfMissingVolume: ListExports and ClearExports of a volume
// Cinder does not know are ErrNotFound (the attachment list alone would
// answer an empty list).
func TestRecoveryOfMissingVolume(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	const missing = "00000000-0000-4000-8000-000000000000"
	for _, method := range []string{openstack.ExportAttachments, openstack.ExportLegacy} {
		c, _ := e.client(e.noauthConfig(), method)
		if _, err := c.ListExports(ctx, missing); !errors.Is(err, cinder.ErrNotFound) {
			t.Errorf("%s: list exports of a missing volume: %v, want ErrNotFound", method, err)
		}
		if _, err := c.ClearExports(ctx, missing, hostConnector(t)); !errors.Is(err, cinder.ErrNotFound) {
			t.Errorf("%s: clear exports of a missing volume: %v, want ErrNotFound", method, err)
		}
	}
}
