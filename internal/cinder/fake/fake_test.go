package fake

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

var node = cinder.Connector{Initiator: "iqn.2026-01.io.example:node", Host: "node1"}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetCreatingPolls(2)
	v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc-1", SizeGiB: 2, VolumeType: "tgtfile", Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != cinder.StatusCreating || v.VolumeType != "tgtfile" || v.SizeGiB != 2 {
		t.Fatalf("created %+v", v)
	}
	if got, _ := f.GetVolume(ctx, v.ID); got.Status != cinder.StatusCreating {
		t.Fatalf("first poll %s, want creating", got.Status)
	}
	got, err := f.WaitForVolumeStatus(ctx, v.ID, cinder.StatusAvailable)
	if err != nil || got.Status != cinder.StatusAvailable {
		t.Fatalf("wait: %+v %v", got, err)
	}
	found, err := f.FindVolumeByName(ctx, "pvc-1")
	if err != nil || found.ID != v.ID {
		t.Fatalf("find: %+v %v", found, err)
	}
	exp, err := f.Export(ctx, v.ID, node)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Connection.DriverVolumeType != "iscsi" || exp.Connection.Data["target_iqn"] != "iqn.2010-10.org.openstack:volume-"+v.ID ||
		exp.Connection.Data["target_lun"] != json.Number("1") || exp.Connection.Data["auth_password"] == "" {
		t.Fatalf("export %v", exp.Connection.Data)
	}
	if vol, _ := f.Volume(v.ID); vol.Status != cinder.StatusInUse {
		t.Fatalf("status after export %s", vol.Status)
	}
	if err := f.DeleteVolume(ctx, v.ID); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("delete while exported: %v, want ErrInvalid", err)
	}
	if err := f.Unexport(ctx, v.ID, exp.ID, node); err != nil {
		t.Fatal(err)
	}
	if err := f.Unexport(ctx, v.ID, exp.ID, node); err != nil {
		t.Fatalf("second unexport: %v", err)
	}
	if len(f.Exports(v.ID)) != 0 {
		t.Fatal("export left")
	}
	if err := f.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitForVolumeDeleted(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetVolume(ctx, v.ID); !errors.Is(err, cinder.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := f.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	want := []string{OpCreateVolume, OpGetVolume, OpWaitForVolumeStatus, OpFindVolumeByName, OpExport, OpDeleteVolume, OpUnexport, OpUnexport,
		OpDeleteVolume, OpWaitForVolumeDeleted, OpGetVolume, OpDeleteVolume}
	if !slices.Equal(f.Ops(), want) {
		t.Errorf("ops %v\nwant %v", f.Ops(), want)
	}
	calls := f.Calls()
	if calls[4].ExportID != exp.ID || calls[4].Connector.Host != "node1" || !errors.Is(calls[5].Err, cinder.ErrInvalid) {
		t.Errorf("call details %+v", calls[4:6])
	}
}

func TestFailureInjectionAndHooks(t *testing.T) {
	ctx := context.Background()
	f := New()
	boom := errors.New("boom")
	f.FailNext(OpCreateVolume, boom)
	f.FailNext(OpCreateVolume, cinder.NewError("create volume", "pvc", cinder.ErrUnavailable, ""))
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc", SizeGiB: 1}); !errors.Is(err, boom) {
		t.Fatalf("first: %v", err)
	}
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc", SizeGiB: 1}); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("second: %v", err)
	}
	if len(f.Volumes()) != 0 {
		t.Fatal("a failed create made a volume")
	}
	v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}

	f.Fail(OpExport, boom)
	for range 2 {
		if _, err := f.Export(ctx, v.ID, node); !errors.Is(err, boom) {
			t.Fatalf("export: %v", err)
		}
	}
	f.Fail(OpExport, nil)

	// A hook can change state mid-flight: the volume fails while awaited.
	f.Hook(OpWaitForVolumeStatus, func(ctx context.Context, c Call) error { return f.SetStatus(c.VolumeID, cinder.StatusError) })
	_, err = f.WaitForVolumeStatus(ctx, v.ID, cinder.StatusAvailable)
	var vse *cinder.VolumeStatusError
	if !errors.As(err, &vse) || vse.Status != cinder.StatusError {
		t.Fatalf("wait: %v", err)
	}
	f.Hook(OpWaitForVolumeStatus, nil)
}

func TestConfigurableConnectionsAndStatuses(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetExportMethod(cinder.ExportLegacy)
	f.SetConnection("ceph", cinder.Connection{DriverVolumeType: "rbd", Data: map[string]any{
		"name": "volumes/volume-" + VolumeIDPlaceholder, "hosts": []any{"10.0.0.1"}, "auth_username": "cinder",
	}})
	v, _ := f.CreateVolume(ctx, cinder.CreateRequest{Name: "r", SizeGiB: 1, VolumeType: "ceph"})
	if _, err := f.WaitForVolumeStatus(ctx, v.ID, cinder.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	exp, err := f.Export(ctx, v.ID, node)
	if err != nil {
		t.Fatal(err)
	}
	want := cinder.Connection{DriverVolumeType: "rbd", Data: map[string]any{"name": "volumes/volume-" + v.ID, "hosts": []any{"10.0.0.1"}, "auth_username": "cinder"}}
	if exp.Method != cinder.ExportLegacy || !reflect.DeepEqual(exp.Connection, want) {
		t.Errorf("export %+v", exp)
	}
	if _, err := f.Export(ctx, v.ID, node); !errors.Is(err, cinder.ErrConflict) {
		t.Errorf("second export of a non-multiattach volume: %v, want ErrConflict", err)
	}

	f.SetCreateFinalStatus(cinder.StatusError)
	bad, _ := f.CreateVolume(ctx, cinder.CreateRequest{Name: "bad", SizeGiB: 1})
	if _, err := f.WaitForVolumeStatus(ctx, bad.ID, cinder.StatusAvailable); !errors.Is(err, cinder.ErrVolumeError) {
		t.Errorf("error volume: %v", err)
	}

	f.SetQuota(2)
	_, err = f.CreateVolume(ctx, cinder.CreateRequest{Name: "over", SizeGiB: 1})
	var ce *cinder.Error
	if !errors.Is(err, cinder.ErrQuotaExceeded) || !errors.As(err, &ce) || ce.Message == "" {
		t.Errorf("over quota: %v", err)
	}
}

func TestSeedListAndDuplicates(t *testing.T) {
	ctx := context.Background()
	f := New()
	a := f.AddVolume(cinder.Volume{Name: "pvc-x", Metadata: map[string]string{"cluster": "c1"}})
	b := f.AddVolume(cinder.Volume{Name: "pvc-x", Metadata: map[string]string{"cluster": "c2"}})
	_, err := f.FindVolumeByName(ctx, "pvc-x")
	var dup *cinder.DuplicateNameError
	if !errors.As(err, &dup) || !slices.Equal(dup.IDs, []string{a, b}) {
		t.Fatalf("duplicates: %v", err)
	}
	vols, err := f.ListVolumes(ctx, map[string]string{"cluster": "c2"})
	if err != nil || len(vols) != 1 || vols[0].ID != b {
		t.Fatalf("list: %v %v", vols, err)
	}
	all, _ := f.ListVolumes(ctx, nil)
	if len(all) != 2 {
		t.Fatalf("list all: %d", len(all))
	}
	info, err := f.ServiceInfo(ctx)
	if err != nil || info.ExportMethod != cinder.ExportAttachments || len(info.VolumeTypes) != 1 {
		t.Fatalf("info %+v %v", info, err)
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.GetVolume(ctxDone, a); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
