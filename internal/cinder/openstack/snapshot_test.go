package openstack

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// A clone sends source_volid, a restore snapshot_id; the volume view's
// source_volid and snapshot_id come back on the volume.
func TestCreateVolumeFromSource(t *testing.T) {
	s := newServer(t, "3.70")
	clone := strings.Replace(volumeJSON("v2", "pvc-2", "creating"), `"size":1,`, `"size":1,"source_volid":"v1","snapshot_id":null,`, 1)
	s.onJSON("POST /volumes", 202, clone)
	c, _ := s.client(ExportAuto)
	v, err := c.CreateVolume(context.Background(), cinder.CreateRequest{Name: "pvc-2", SizeGiB: 1, SourceVolumeID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"volume": map[string]any{"name": "pvc-2", "size": 1.0, "source_volid": "v1"}}; !reflect.DeepEqual(s.body("POST /volumes", 0), want) {
		t.Errorf("clone body %v, want %v", s.body("POST /volumes", 0), want)
	}
	if v.SourceVolumeID != "v1" || v.SnapshotID != "" {
		t.Errorf("clone %+v, want source v1", v)
	}
	if _, err := c.CreateVolume(context.Background(), cinder.CreateRequest{Name: "pvc-3", SizeGiB: 2, SnapshotID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"volume": map[string]any{"name": "pvc-3", "size": 2.0, "snapshot_id": "s1"}}; !reflect.DeepEqual(s.body("POST /volumes", 1), want) {
		t.Errorf("restore body %v, want %v", s.body("POST /volumes", 1), want)
	}
}

func TestGetSnapshot(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /snapshots/s1", 200, `{"snapshot":{"id":"s1","name":"snap","status":"available","size":3,"volume_id":"v1","created_at":"2026-11-24T20:20:17.000000","metadata":{}}}`)
	s.onJSON("GET /snapshots/s2", 404, `{"itemNotFound":{"code":404,"message":"Snapshot s2 could not be found."}}`)
	c, reg := s.client(ExportAuto)
	got, err := c.GetSnapshot(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 24, 20, 20, 17, 0, time.UTC)
	if want := (cinder.Snapshot{ID: "s1", Name: "snap", Status: "available", SizeGiB: 3, VolumeID: "v1", Metadata: map[string]string{}, CreatedAt: created}); !reflect.DeepEqual(*got, want) {
		t.Errorf("snapshot %+v, want %+v", *got, want)
	}
	_, err = c.GetSnapshot(context.Background(), "s2")
	if !errors.Is(err, cinder.ErrNotFound) || !strings.Contains(err.Error(), "Snapshot s2 could not be found.") {
		t.Errorf("missing snapshot: %v, want ErrNotFound with Cinder's message", err)
	}
	if n := counter(reg, "get_snapshot", "not_found"); n != 1 {
		t.Errorf("get_snapshot not_found = %v, want 1", n)
	}
	if _, err := c.GetSnapshot(context.Background(), ""); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("empty id: %v, want ErrInvalid", err)
	}
}

// CreateSnapshot sends the volume, name, force and metadata; Cinder's
// refusals come back as sentinels with its message.
func TestCreateSnapshot(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /snapshots", 202, `{"snapshot":{"id":"s1","name":"snapcontent-1","status":"creating","size":2,"volume_id":"v1","created_at":"2026-11-24T20:20:17.000000","metadata":{"k":"v"}}}`)
	c, reg := s.client(ExportAuto)
	got, err := c.CreateSnapshot(context.Background(), cinder.SnapshotRequest{VolumeID: "v1", Name: "snapcontent-1", Force: true, Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "s1" || got.Status != cinder.SnapshotCreating || got.SizeGiB != 2 || got.VolumeID != "v1" {
		t.Errorf("snapshot %+v", *got)
	}
	want := map[string]any{"snapshot": map[string]any{"volume_id": "v1", "name": "snapcontent-1", "force": true, "metadata": map[string]any{"k": "v"}}}
	if b := s.body("POST /snapshots", 0); !reflect.DeepEqual(b, want) {
		t.Errorf("body %v, want %v", b, want)
	}
	for _, tc := range []struct {
		status int
		body   string
		kind   error
		msg    string
	}{
		{413, `{"overLimit":{"code":413,"message":"SnapshotLimitExceeded: Maximum number of snapshots allowed (10) exceeded"}}`, cinder.ErrQuotaExceeded, "Maximum number of snapshots"},
		{400, `{"badRequest":{"code":400,"message":"Invalid volume: Volume v1 status must be available or in-use, but current status is: error."}}`, cinder.ErrInvalid, "current status is: error"},
		{404, `{"itemNotFound":{"code":404,"message":"Volume v9 could not be found."}}`, cinder.ErrNotFound, "could not be found"},
	} {
		s.onJSON("POST /snapshots", tc.status, tc.body)
		_, err := c.CreateSnapshot(context.Background(), cinder.SnapshotRequest{VolumeID: "v1", Name: "n"})
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%d: %v, want %v with %q", tc.status, err, tc.kind, tc.msg)
		}
	}
	if n := counter(reg, "create_snapshot", "quota"); n != 1 {
		t.Errorf("create_snapshot quota = %v, want 1", n)
	}
	if _, err := c.CreateSnapshot(context.Background(), cinder.SnapshotRequest{Name: "n"}); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("no volume: %v, want ErrInvalid", err)
	}
}

// ListSnapshots filters by name and volume on the server and again here,
// and answers oldest first.
func TestListSnapshots(t *testing.T) {
	s := newServer(t, "3.70")
	var query string
	s.on("GET /snapshots", func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		reply(w, 200, `{"snapshots":[
			{"id":"s2","name":"a","status":"available","size":1,"volume_id":"v1","created_at":"2026-11-24T20:20:18.000000"},
			{"id":"s1","name":"a","status":"error","size":1,"volume_id":"v1","created_at":"2026-11-24T20:20:17.000000"},
			{"id":"s3","name":"b","status":"available","size":1,"volume_id":"v1","created_at":"2026-11-24T20:20:16.000000"}]}`)
	})
	c, _ := s.client(ExportAuto)
	got, err := c.ListSnapshots(context.Background(), cinder.SnapshotFilter{Name: "a", VolumeID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if query != "name=a&volume_id=v1" {
		t.Errorf("query %q", query)
	}
	if len(got) != 2 || got[0].ID != "s1" || got[1].ID != "s2" {
		t.Errorf("snapshots %+v, want s1 then s2", got)
	}
}

// A missing snapshot is deleted; one Cinder will not delete is ErrInvalid.
func TestDeleteSnapshot(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("DELETE /snapshots/s1", 202, "")
	s.onJSON("DELETE /snapshots/s2", 404, `{"itemNotFound":{"code":404,"message":"Snapshot s2 could not be found."}}`)
	s.onJSON("DELETE /snapshots/s3", 400, `{"badRequest":{"code":400,"message":"Invalid snapshot: Snapshot status must be available or error and must not be part of a group."}}`)
	c, _ := s.client(ExportAuto)
	ctx := context.Background()
	if err := c.DeleteSnapshot(ctx, "s1"); err != nil {
		t.Errorf("s1: %v", err)
	}
	if err := c.DeleteSnapshot(ctx, "s2"); err != nil {
		t.Errorf("missing s2: %v, want success", err)
	}
	if err := c.DeleteSnapshot(ctx, "s3"); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("s3: %v, want ErrInvalid", err)
	}
}
