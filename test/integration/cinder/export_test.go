package cinder_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// oneGiB is what a userspace iSCSI login must read from a 1 GiB volume.
const oneGiB = 1 << 30

// TestTgtfileExportReadsLUN creates a tgtfile volume, exports it with each
// method, logs into the target from userspace with the CHAP credentials Cinder
// handed out, reads the LUN's size, unexports and deletes it.
func TestTgtfileExportReadsLUN(t *testing.T) {
	for _, method := range []string{openstack.ExportAttachments, openstack.ExportLegacy} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t)
			c, reg := e.client(e.noauthConfig(), method)
			ctx := testContext(t)
			if got := c.ExportMethod(); string(got) != method {
				t.Fatalf("export method %q, want %q", got, method)
			}

			meta := map[string]string{"cinder.openstack.org/test": e.prefix}
			name := e.name("lun")
			start := time.Now()
			vol := createAvailable(t, c, name, "tgtfile", meta)
			t.Logf("create -> available in %s", time.Since(start).Round(time.Millisecond))
			if vol.Metadata["cinder.openstack.org/test"] != e.prefix {
				t.Errorf("metadata %v, want cinder.openstack.org/test=%s", vol.Metadata, e.prefix)
			}

			// A retry finds what the first attempt created.
			found, err := c.FindVolumeByName(ctx, name)
			if err != nil || found.ID != vol.ID {
				t.Fatalf("find volume by name %s: %+v, %v; want id %s", name, found, err, vol.ID)
			}
			listed, err := c.ListVolumes(ctx, meta)
			if err != nil {
				t.Fatalf("list volumes: %v", err)
			}
			if len(listed) != 1 || listed[0].ID != vol.ID {
				t.Fatalf("list volumes by metadata %v: %d volumes %v, want only %s", meta, len(listed), ids(listed), vol.ID)
			}

			cn := hostConnector(t)
			start = time.Now()
			exp, err := c.Export(ctx, vol.ID, cn)
			if err != nil {
				t.Fatalf("export: %v", err)
			}
			t.Logf("export (%s) in %s: %s", method, time.Since(start).Round(time.Millisecond), exp)
			if string(exp.Method) != method || exp.ID == "" {
				t.Fatalf("export method %q id %q, want %s and an id", exp.Method, exp.ID, method)
			}
			conn := exp.Connection
			if conn.DriverVolumeType != "iscsi" {
				t.Fatalf("driver_volume_type %q, want iscsi", conn.DriverVolumeType)
			}
			for _, k := range []string{"driver_volume_type", "attachment_id"} {
				if _, ok := conn.Data[k]; ok {
					t.Errorf("connection data still holds %s", k)
				}
			}
			wantStrings := map[string]string{
				"target_portal": "127.0.0.1:3260",
				"target_iqn":    "iqn.2010-10.org.openstack:volume-" + vol.ID,
				"auth_method":   "CHAP",
				"access_mode":   "rw",
				"volume_id":     vol.ID,
			}
			for k, want := range wantStrings {
				if got, _ := conn.Data[k].(string); got != want {
					t.Errorf("connection data %s = %v, want %q", k, conn.Data[k], want)
				}
			}
			user, _ := conn.Data["auth_username"].(string)
			pass, _ := conn.Data["auth_password"].(string)
			if user == "" || pass == "" {
				t.Fatalf("no CHAP credentials in the connection data: %s", conn)
			}
			if strings.Contains(exp.String(), pass) || strings.Contains(fmt.Sprintf("%v %+v %#v", exp, exp, conn), pass) {
				t.Fatal("the CHAP password shows in the printed export")
			}
			lun, ok := conn.Data["target_lun"].(json.Number)
			if !ok {
				t.Fatalf("target_lun %T %v, want a json.Number", conn.Data["target_lun"], conn.Data["target_lun"])
			}
			lunN, err := lun.Int64()
			if err != nil {
				t.Fatalf("target_lun %s: %v", lun, err)
			}

			// Cinder's own view: in-use with our attachment.
			v, err := volumes.Get(ctx, e.rawClient(), vol.ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != cinder.StatusInUse || len(v.Attachments) != 1 || v.Attachments[0].AttachmentID != exp.ID {
				t.Fatalf("after export: status %s attachments %+v, want in-use with attachment %s", v.Status, v.Attachments, exp.ID)
			}

			// Deleting an exported volume is refused (400) and kept as invalid.
			if err := c.DeleteVolume(ctx, vol.ID); !errors.Is(err, cinder.ErrInvalid) {
				t.Fatalf("delete of an exported volume: %v, want ErrInvalid", err)
			}

			login := framework.ISCSILogin{Initiator: cn.Initiator, Portal: wantStrings["target_portal"], IQN: wantStrings["target_iqn"], LUN: int32(lunN), Username: user, Password: pass}
			size, err := framework.ReadCapacity(ctx, login)
			if err != nil {
				t.Fatalf("userspace iSCSI login: %v", err)
			}
			if size != oneGiB {
				t.Fatalf("LUN size %d bytes, want %d", size, oneGiB)
			}
			bad := login
			bad.Password = pass + "x"
			if _, err := framework.ReadCapacity(ctx, bad); err == nil {
				t.Fatal("a login with a wrong CHAP password succeeded: the target does not check CHAP, the size check proves nothing")
			}

			if err := c.Unexport(ctx, vol.ID, cinder.ExportRef{Method: exp.Method, ID: exp.ID}, cn); err != nil {
				t.Fatalf("unexport: %v", err)
			}
			v, err = volumes.Get(ctx, e.rawClient(), vol.ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != cinder.StatusAvailable || len(v.Attachments) != 0 {
				t.Fatalf("after unexport: status %s attachments %+v, want available without attachments", v.Status, v.Attachments)
			}
			if err := c.Unexport(ctx, vol.ID, cinder.ExportRef{Method: exp.Method, ID: exp.ID}, cn); err != nil {
				t.Fatalf("second unexport: %v, want success", err)
			}
			if _, err := framework.ReadCapacity(ctx, login); err == nil {
				t.Fatal("the LUN is still readable after unexport")
			}

			deleteAndConfirm(t, c, vol.ID)

			if n := requestCount(t, reg, "create_volume", "success"); n != 1 {
				t.Errorf("create_volume success count %v, want 1", n)
			}
			if n := requestCount(t, reg, "delete_volume", "invalid"); n != 1 {
				t.Errorf("delete_volume invalid count %v, want 1", n)
			}
			if n := requestCount(t, reg, "get_volume", "not_found"); n < 2 {
				t.Errorf("get_volume not_found count %v, want >= 2", n)
			}
		})
	}
}

// TestExportDriverTypes checks the other backends: nfs exports as nfs (a
// file on a share), fake exports iscsi without any target data.
func TestExportDriverTypes(t *testing.T) {
	for _, method := range []string{openstack.ExportAttachments, openstack.ExportLegacy} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.client(e.noauthConfig(), method)
			ctx := testContext(t)
			cn := hostConnector(t)

			nfs := createAvailable(t, c, e.name("nfs"), "nfs", nil)
			exp, err := c.Export(ctx, nfs.ID, cn)
			if err != nil {
				t.Fatalf("export nfs volume: %v", err)
			}
			if exp.Connection.DriverVolumeType != "nfs" {
				t.Errorf("nfs volume: driver_volume_type %q, want nfs", exp.Connection.DriverVolumeType)
			}
			if got := exp.Connection.Data["name"]; got != "volume-"+nfs.ID {
				t.Errorf("nfs volume: name %v, want volume-%s", got, nfs.ID)
			}
			if export, _ := exp.Connection.Data["export"].(string); !strings.Contains(export, ":/") {
				t.Errorf("nfs volume: export %q, want host:/path", export)
			}
			if err := c.Unexport(ctx, nfs.ID, cinder.ExportRef{Method: exp.Method, ID: exp.ID}, cn); err != nil {
				t.Fatalf("unexport nfs volume: %v", err)
			}
			deleteAndConfirm(t, c, nfs.ID)

			fake := createAvailable(t, c, e.name("fake"), "fake", nil)
			exp, err = c.Export(ctx, fake.ID, cn)
			if err != nil {
				t.Fatalf("export fake volume: %v", err)
			}
			if exp.Connection.DriverVolumeType != "iscsi" {
				t.Errorf("fake volume: driver_volume_type %q, want iscsi", exp.Connection.DriverVolumeType)
			}
			for _, k := range []string{"target_portal", "target_iqn", "target_lun", "target_portals"} {
				if v, ok := exp.Connection.Data[k]; ok {
					t.Errorf("fake volume: connection data has %s=%v, want no target data", k, v)
				}
			}
			if err := c.Unexport(ctx, fake.ID, cinder.ExportRef{Method: exp.Method, ID: exp.ID}, cn); err != nil {
				t.Fatalf("unexport fake volume: %v", err)
			}
			deleteAndConfirm(t, c, fake.ID)
		})
	}
}

func ids(vs []cinder.Volume) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	slices.Sort(out)
	return out
}
