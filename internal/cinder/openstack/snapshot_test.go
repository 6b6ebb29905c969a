package openstack

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

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
	if want := (cinder.Snapshot{ID: "s1", Name: "snap", Status: "available", SizeGiB: 3, VolumeID: "v1"}); *got != want {
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
