package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

var (
	node  = cinder.Connector{Initiator: "iqn.2026-01.io.example:node", Host: "node1"}
	node2 = cinder.Connector{Initiator: "iqn.2026-01.io.example:node2", Host: "node2"}
	// errBoom is an injected failure, matched by identity.
	errBoom = cinder.NewError("injected", "", cinder.ErrUnavailable, "boom")
)

func mustVolume(t *testing.T, f *Fake, id string) cinder.Volume {
	t.Helper()
	v, ok := f.Volume(id)
	if !ok {
		t.Fatalf("volume %s is gone", id)
	}
	return v
}

func attachmentStatuses(f *Fake, id string) []string {
	var out []string
	for _, a := range f.Attachments(id) {
		out = append(out, a.Status)
	}
	return out
}

// checkErr asserts err matches want (nil: no error) and contains msg.
func checkErr(t *testing.T, what string, err, want error, msg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) || !strings.Contains(fmt.Sprint(err), msg) {
		t.Fatalf("%s: %v, want %v containing %q", what, err, want, msg)
	}
}

func TestVolumeLifecycleAndCallLog(t *testing.T) {
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
	if exp.Method != cinder.ExportAttachments || exp.Connection.DriverVolumeType != "iscsi" ||
		exp.Connection.Data["target_iqn"] != "iqn.2010-10.org.openstack:volume-"+v.ID ||
		exp.Connection.Data["target_lun"] != json.Number("1") || exp.Connection.Data["auth_password"] == "" {
		t.Fatalf("export %+v", exp)
	}
	if vol := mustVolume(t, f, v.ID); vol.Status != cinder.StatusInUse || !slices.Equal(vol.AttachmentIDs, []string{exp.ID}) {
		t.Fatalf("after export %+v", vol)
	}
	if err := f.DeleteVolume(ctx, v.ID); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("delete while exported: %v, want ErrInvalid", err)
	}
	ref := cinder.ExportRef{Method: exp.Method, ID: exp.ID}
	if err := f.Unexport(ctx, v.ID, ref, node); err != nil {
		t.Fatal(err)
	}
	if err := f.Unexport(ctx, v.ID, ref, node); err != nil {
		t.Fatalf("second unexport: %v", err)
	}
	if len(f.Exports(v.ID)) != 0 || mustVolume(t, f, v.ID).Status != cinder.StatusAvailable {
		t.Fatalf("after unexport %+v %+v", mustVolume(t, f, v.ID), f.Exports(v.ID))
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
	if calls[4].ExportID != exp.ID || calls[4].Method != cinder.ExportAttachments || calls[4].Connector.Host != "node1" || !errors.Is(calls[5].Err, cinder.ErrInvalid) {
		t.Errorf("call details %+v", calls[4:6])
	}
	if calls[6].ExportID != exp.ID || calls[6].Method != cinder.ExportAttachments {
		t.Errorf("unexport call %+v", calls[6])
	}
	wantSteps := []string{OpCreateVolume, OpGetVolume, OpWaitForVolumeStatus, OpFindVolumeByName,
		OpExport, OpAttachmentCreate, OpAttachmentComplete, OpDeleteVolume,
		OpUnexport, OpAttachmentDelete, OpUnexport, OpAttachmentDelete,
		OpDeleteVolume, OpWaitForVolumeDeleted, OpGetVolume, OpDeleteVolume}
	if !slices.Equal(f.StepOps(), wantSteps) {
		t.Errorf("steps %v\nwant %v", f.StepOps(), wantSteps)
	}
	if s := f.Steps(); s[5].ExportID != exp.ID || s[5].Err != nil || s[4].ExportID != exp.ID {
		t.Errorf("step details %+v", s[4:7])
	}
	f.ResetCalls()
	if len(f.Calls()) != 0 || len(f.Steps()) != 0 {
		t.Error("ResetCalls left calls")
	}
}

func TestCreatingPollsEndInTheFinalStatus(t *testing.T) {
	tests := []struct {
		name  string
		polls int
		final string
		want  []string // statuses of successive GetVolume polls
	}{
		{"available at the first poll", 0, cinder.StatusAvailable, []string{"available", "available"}},
		{"creating for two polls", 2, cinder.StatusAvailable, []string{"creating", "creating", "available"}},
		{"backend failure", 1, cinder.StatusError, []string{"creating", "error", "error"}},
		{"never finishes", 0, cinder.StatusCreating, []string{"creating", "creating", "creating"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			f.SetCreatingPolls(tc.polls)
			f.SetCreateFinalStatus(tc.final)
			v, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "v", SizeGiB: 1})
			if err != nil || v.Status != cinder.StatusCreating {
				t.Fatalf("create: %+v %v", v, err)
			}
			var got []string
			for range tc.want {
				g, err := f.GetVolume(ctx, v.ID)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, g.Status)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("polls %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExportStepsByMethod(t *testing.T) {
	tests := []struct {
		method        cinder.ExportMethod
		wantExport    []string
		wantUnexport  []string
		wantConnector bool // the attachment records the backend export's connector
	}{
		{cinder.ExportAttachments, []string{OpExport, OpAttachmentCreate, OpAttachmentComplete},
			[]string{OpUnexport, OpAttachmentDelete}, true},
		{cinder.ExportLegacy, []string{OpExport, OpReserve, OpInitializeConnection, OpAttach},
			[]string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach}, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.method), func(t *testing.T) {
			ctx := context.Background()
			f := New()
			f.SetExportMethod(tc.method)
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
			exp, err := f.Export(ctx, id, node)
			if err != nil {
				t.Fatal(err)
			}
			if exp.Method != tc.method || exp.Connection.Data["volume_id"] != id {
				t.Errorf("export %+v", exp)
			}
			if got := f.StepOps(); !slices.Equal(got, tc.wantExport) {
				t.Errorf("export steps %v, want %v", got, tc.wantExport)
			}
			vol := mustVolume(t, f, id)
			want := []cinder.Attachment{{ID: exp.ID, Status: cinder.AttachAttached, Host: "node1"}}
			if vol.Status != cinder.StatusInUse || !slices.Equal(vol.AttachmentIDs, []string{exp.ID}) || !reflect.DeepEqual(f.Attachments(id), want) {
				t.Errorf("after export %+v, attachments %+v", vol, f.Attachments(id))
			}
			if got := f.BackendExports(id); len(got) != 1 || got[0].Initiator != node.Initiator {
				t.Errorf("backend exports %+v, want the node's", got)
			}
			if exps := f.Exports(id); len(exps) != 1 || exps[0].ID != exp.ID || !reflect.DeepEqual(exps[0].Connection, exp.Connection) {
				t.Errorf("Exports %+v", exps)
			}
			f.ResetCalls()
			if err := f.Unexport(ctx, id, cinder.ExportRef{ID: exp.ID}, node); err != nil {
				t.Fatal(err)
			}
			if got := f.StepOps(); !slices.Equal(got, tc.wantUnexport) {
				t.Errorf("unexport steps %v, want %v", got, tc.wantUnexport)
			}
			vol = mustVolume(t, f, id)
			if vol.Status != cinder.StatusAvailable || len(vol.AttachmentIDs) != 0 || len(f.Attachments(id)) != 0 || len(f.BackendExports(id)) != 0 {
				t.Errorf("after unexport %+v, attachments %+v, backend %+v", vol, f.Attachments(id), f.BackendExports(id))
			}
		})
	}
}

func TestUnexportUsesTheMethodOfTheRef(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetExportMethod(cinder.ExportLegacy)
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
	exp, err := f.Export(ctx, id, node)
	if err != nil {
		t.Fatal(err)
	}
	f.SetExportMethod(cinder.ExportAttachments) // the client was upgraded since
	f.ResetCalls()
	if err := f.Unexport(ctx, id, cinder.ExportRef{Method: cinder.ExportLegacy, ID: exp.ID}, node); err != nil {
		t.Fatal(err)
	}
	if want := []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach}; !slices.Equal(f.StepOps(), want) {
		t.Errorf("steps %v, want %v", f.StepOps(), want)
	}
	if c := f.Calls()[0]; c.Method != cinder.ExportLegacy || c.ExportID != exp.ID {
		t.Errorf("unexport call %+v", c)
	}
	if err := f.Unexport(ctx, id, cinder.ExportRef{Method: "nfs-magic", ID: exp.ID}, node); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("unknown method: %v", err)
	}
}

func TestExportRefusedInStatusesCinderRefuses(t *testing.T) {
	tests := []struct {
		name   string
		seed   cinder.Volume
		method cinder.ExportMethod
		want   error
		msg    string
	}{
		{"attachments: creating", cinder.Volume{Status: cinder.StatusCreating}, cinder.ExportAttachments, cinder.ErrInvalid,
			"status must be available or downloading to reserve, but the current status is creating"},
		{"attachments: error", cinder.Volume{Status: cinder.StatusError}, cinder.ExportAttachments, cinder.ErrInvalid,
			"can not be created if the volume is in an error state"},
		{"attachments: error_extending", cinder.Volume{Status: "error_extending"}, cinder.ExportAttachments, cinder.ErrInvalid, "error state"},
		{"attachments: in-use, not multiattach", cinder.Volume{Status: cinder.StatusInUse}, cinder.ExportAttachments, cinder.ErrInvalid,
			"but the current status is in-use"},
		{"attachments: reserved, multiattach", cinder.Volume{Status: cinder.StatusReserved, Multiattach: true}, cinder.ExportAttachments, cinder.ErrInvalid,
			"status must be available or in-use or downloading to reserve, but the current status is reserved"},
		{"attachments: attaching", cinder.Volume{Status: cinder.StatusAttaching}, cinder.ExportAttachments, cinder.ErrInvalid, "current status is attaching"},
		{"attachments: detaching", cinder.Volume{Status: cinder.StatusDetaching}, cinder.ExportAttachments, cinder.ErrInvalid, "current status is detaching"},
		{"attachments: deleting", cinder.Volume{Status: cinder.StatusDeleting}, cinder.ExportAttachments, cinder.ErrInvalid, "current status is deleting"},
		{"legacy: creating", cinder.Volume{Status: cinder.StatusCreating}, cinder.ExportLegacy, cinder.ErrInvalid,
			"Volume status must be available to reserve, but the status is creating."},
		{"legacy: in-use, not multiattach", cinder.Volume{Status: cinder.StatusInUse}, cinder.ExportLegacy, cinder.ErrInvalid, "but the status is in-use"},
		{"legacy: attaching, multiattach", cinder.Volume{Status: cinder.StatusAttaching, Multiattach: true}, cinder.ExportLegacy, cinder.ErrInvalid,
			"must be available or in-use to reserve"},
		{"legacy: error", cinder.Volume{Status: cinder.StatusError}, cinder.ExportLegacy, cinder.ErrInvalid, "but the status is error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			f.SetExportMethod(tc.method)
			tc.seed.Name, tc.seed.SizeGiB = "v", 1
			id := f.AddVolume(tc.seed)
			_, err := f.Export(context.Background(), id, node)
			var ce *cinder.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || !strings.Contains(ce.Message, tc.msg) {
				t.Fatalf("export: %v, want %v with %q", err, tc.want, tc.msg)
			}
			if v := mustVolume(t, f, id); v.Status != tc.seed.Status || len(f.Attachments(id)) != 0 || len(f.BackendExports(id)) != 0 {
				t.Errorf("a refused export changed the volume: %+v %+v", v, f.Attachments(id))
			}
		})
	}
}

func TestExportOfMissingVolumeOrBadConnector(t *testing.T) {
	for _, m := range []cinder.ExportMethod{cinder.ExportAttachments, cinder.ExportLegacy} {
		f := New()
		f.SetExportMethod(m)
		if _, err := f.Export(context.Background(), "nope", node); !errors.Is(err, cinder.ErrNotFound) {
			t.Errorf("%s: missing volume: %v", m, err)
		}
		id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
		if _, err := f.Export(context.Background(), id, cinder.Connector{Initiator: "x"}); !errors.Is(err, cinder.ErrInvalid) {
			t.Errorf("%s: connector without host: %v", m, err)
		}
		if _, err := f.Export(context.Background(), "", node); !errors.Is(err, cinder.ErrInvalid) {
			t.Errorf("%s: empty id: %v", m, err)
		}
	}
}

func TestMultiattachExportsAndTheStatusTheRemainingAttachmentsGive(t *testing.T) {
	ctx := context.Background()
	f := New()
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
	a, err := f.Export(ctx, id, node)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Export(ctx, id, node2)
	if err != nil {
		t.Fatal(err)
	}
	// a third export whose backend export fails stays reserved
	f.FailNext(OpInitializeConnection, errBoom)
	if _, err := f.Export(ctx, id, node); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatal(err)
	}
	want := []cinder.Attachment{{ID: a.ID, Status: "attached", Host: "node1"}, {ID: b.ID, Status: "attached", Host: "node2"}}
	got := f.Attachments(id)
	if len(got) != 3 || !reflect.DeepEqual(got[:2], want) || got[2].Status != cinder.AttachReserved || got[2].Host != "" {
		t.Fatalf("attachments %+v", got)
	}
	if v := mustVolume(t, f, id); v.Status != cinder.StatusReserved || !slices.Equal(v.AttachmentIDs, []string{a.ID, b.ID}) {
		t.Fatalf("volume %+v", v)
	}
	steps := []struct {
		unexport string
		want     string
	}{
		{got[2].ID, cinder.StatusInUse},        // the reserved one goes: attached ones remain
		{a.ID, cinder.StatusInUse},             // one attached remains
		{b.ID, cinder.StatusAvailable},         // none remain
		{b.ID, cinder.StatusAvailable},         // already gone: success
		{"no-such-id", cinder.StatusAvailable}, // never existed: success
	}
	for _, s := range steps {
		if err := f.Unexport(ctx, id, cinder.ExportRef{ID: s.unexport}, node); err != nil {
			t.Fatalf("unexport %s: %v", s.unexport, err)
		}
		if v := mustVolume(t, f, id); v.Status != s.want {
			t.Errorf("after unexport of %s: %s, want %s", s.unexport, v.Status, s.want)
		}
	}
	if err := f.Unexport(ctx, "gone", cinder.ExportRef{ID: a.ID}, node); err != nil {
		t.Errorf("unexport of a missing volume: %v", err)
	}
}

func TestLegacyAttachToAHostWithAnAttachmentReturnsIt(t *testing.T) {
	// Cinder's attach_volume finds the volume's attachment by host_name.
	ctx := context.Background()
	f := New()
	f.SetExportMethod(cinder.ExportLegacy)
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
	a, err := f.Export(ctx, id, node)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Export(ctx, id, node)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Export(ctx, id, node2)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || c.ID == a.ID || len(f.Attachments(id)) != 2 {
		t.Errorf("exports %s %s %s, attachments %+v", a.ID, b.ID, c.ID, f.Attachments(id))
	}
}

// exportCase is an injected failure during Export and the state Cinder is
// left in.
type exportCase struct {
	name       string
	inject     func(f *Fake)
	wantErr    error
	wantMsg    string
	wantSteps  []string
	wantStatus string
	wantAtt    []string // attachment statuses
	wantShown  int      // len(AttachmentIDs)
	wantTarget int      // len(BackendExports)
	reserved   bool     // a legacy os-reserve without a record
	crashed    bool
	// after Restart and ClearExports
	wantClearSteps    []string
	wantTargetCleared int
}

func runExportCases(t *testing.T, method cinder.ExportMethod, tests []exportCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			f.SetExportMethod(method)
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
			tc.inject(f)
			exp, err := f.Export(ctx, id, node)
			if exp != nil {
				t.Errorf("failed export returned %+v", exp)
			}
			checkErr(t, "export", err, tc.wantErr, tc.wantMsg)
			if got := f.StepOps(); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %v, want %v", got, tc.wantSteps)
			}
			v := mustVolume(t, f, id)
			if v.Status != tc.wantStatus || !slices.Equal(attachmentStatuses(f, id), tc.wantAtt) || len(v.AttachmentIDs) != tc.wantShown {
				t.Errorf("left volume %s (shown %v), attachments %v; want %s (%d shown), %v",
					v.Status, v.AttachmentIDs, attachmentStatuses(f, id), tc.wantStatus, tc.wantShown, tc.wantAtt)
			}
			if got := len(f.BackendExports(id)); got != tc.wantTarget {
				t.Errorf("backend exports %d, want %d", got, tc.wantTarget)
			}
			if f.Reserved(id) != tc.reserved || f.Crashed() != tc.crashed {
				t.Errorf("reserved %v crashed %v, want %v %v", f.Reserved(id), f.Crashed(), tc.reserved, tc.crashed)
			}
			if tc.crashed {
				if _, err := f.GetVolume(ctx, id); !errors.Is(err, cinder.ErrUnavailable) {
					t.Errorf("call after the crash: %v", err)
				}
			}
			f.SetDown(false)
			exports, err := f.ListExports(ctx, id)
			if tc.crashed {
				checkErr(t, "list exports while crashed", err, cinder.ErrUnavailable, "connection refused")
				f.Restart()
				exports, err = f.ListExports(ctx, id)
			}
			if err != nil || !reflect.DeepEqual(exports, f.Attachments(id)) || len(exports) != len(tc.wantAtt) {
				t.Errorf("ListExports %+v %v", exports, err)
			}

			f.ResetCalls()
			cleared, err := f.ClearExports(ctx, id, node)
			if err != nil {
				t.Fatalf("ClearExports: %v", err)
			}
			if cleared.Status != cinder.StatusAvailable || len(cleared.AttachmentIDs) != 0 || len(f.Attachments(id)) != 0 || f.Reserved(id) {
				t.Errorf("after ClearExports %+v, attachments %+v", cleared, f.Attachments(id))
			}
			if got := f.StepOps(); !slices.Equal(got, tc.wantClearSteps) {
				t.Errorf("clear steps %v, want %v", got, tc.wantClearSteps)
			}
			if got := len(f.BackendExports(id)); got != tc.wantTargetCleared {
				t.Errorf("backend exports after ClearExports %d, want %d", got, tc.wantTargetCleared)
			}
			if err := f.DeleteVolume(ctx, id); err != nil {
				t.Errorf("delete after ClearExports: %v", err)
			}
		})
	}
}

func TestExportThroughAttachmentsLeavesCinderStateOnEveryFailure(t *testing.T) {
	export := []string{OpExport, OpAttachmentCreate}
	withComplete := []string{OpExport, OpAttachmentCreate, OpAttachmentComplete, OpAttachmentDelete}
	clear1 := []string{OpClearExports, OpAttachmentDelete}
	runExportCases(t, cinder.ExportAttachments, []exportCase{
		{name: "create fails: nothing changes", inject: func(f *Fake) { f.FailNext(OpAttachmentCreate, errBoom) },
			wantErr: errBoom, wantSteps: export, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "create answer lost: attaching for ever, id unknown, no undo", inject: func(f *Fake) { f.LoseAnswer(OpAttachmentCreate, errBoom) },
			wantErr: errBoom, wantSteps: export, wantStatus: "attaching", wantAtt: []string{"attaching"}, wantTarget: 1,
			wantClearSteps: clear1},
		{name: "crash after create: attaching", inject: func(f *Fake) { f.CrashAt(OpAttachmentCreate) },
			wantErr: cinder.ErrUnavailable, wantMsg: "connection refused", wantSteps: export,
			wantStatus: "attaching", wantAtt: []string{"attaching"}, wantTarget: 1, crashed: true, wantClearSteps: clear1},
		{name: "backend export fails: reserved, 500", inject: func(f *Fake) { f.FailNext(OpInitializeConnection, errBoom) },
			wantErr: cinder.ErrUnavailable, wantMsg: "Unable to create attachment for volume (Bad or unexpected response from the storage volume backend API",
			wantSteps: export, wantStatus: "reserved", wantAtt: []string{"reserved"}, wantClearSteps: clear1},
		{name: "backend export answer lost inside Cinder: attaching, 500", inject: func(f *Fake) { f.LoseAnswer(OpInitializeConnection, nil) },
			wantErr: cinder.ErrUnavailable, wantMsg: "Unable to create attachment for volume.",
			wantSteps: export, wantStatus: "attaching", wantAtt: []string{"attaching"}, wantTarget: 1, wantClearSteps: clear1},
		{name: "crash during the backend export: attaching", inject: func(f *Fake) { f.CrashAt(OpInitializeConnection) },
			wantErr: cinder.ErrUnavailable, wantMsg: "connection refused", wantSteps: export,
			wantStatus: "attaching", wantAtt: []string{"attaching"}, wantTarget: 1, crashed: true, wantClearSteps: clear1},
		{name: "complete fails: the attachment is deleted", inject: func(f *Fake) { f.FailNext(OpAttachmentComplete, errBoom) },
			wantErr: errBoom, wantSteps: withComplete, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "complete answer lost: applied, then undone", inject: func(f *Fake) { f.LoseAnswer(OpAttachmentComplete, errBoom) },
			wantErr: errBoom, wantSteps: withComplete, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "crash after complete: in-use, undo cannot reach Cinder", inject: func(f *Fake) { f.CrashAt(OpAttachmentComplete) },
			wantErr: cinder.ErrUnavailable, wantMsg: "rollback incomplete", wantSteps: withComplete,
			wantStatus: "in-use", wantAtt: []string{"attached"}, wantShown: 1, wantTarget: 1, crashed: true, wantClearSteps: clear1},
		{name: "complete fails and its undo too: attaching", inject: func(f *Fake) {
			f.FailNext(OpAttachmentComplete, errBoom)
			f.FailNext(OpAttachmentDelete, cinder.NewError("delete attachment", "", cinder.ErrUnavailable, "gateway timeout"))
		}, wantErr: errBoom, wantMsg: "rollback incomplete, the volume may keep an export: undo create attachment:", wantSteps: withComplete,
			wantStatus: "attaching", wantAtt: []string{"attaching"}, wantTarget: 1, wantClearSteps: clear1},
		{name: "Cinder down: nothing changes", inject: func(f *Fake) { f.SetDown(true) },
			wantErr: cinder.ErrUnavailable, wantMsg: "connection refused", wantSteps: []string{OpExport}, wantStatus: "available",
			wantClearSteps: []string{OpClearExports}},
	})
}

func TestExportLegacyLeavesCinderStateOnEveryFailure(t *testing.T) {
	reserve := []string{OpExport, OpReserve}
	initialize := []string{OpExport, OpReserve, OpInitializeConnection, OpUnreserve}
	attach := []string{OpExport, OpReserve, OpInitializeConnection, OpAttach, OpTerminateConnection, OpUnreserve}
	clearReserve := []string{OpClearExports, OpTerminateConnection, OpUnreserve}
	clearAttached := []string{OpClearExports, OpDetach}
	runExportCases(t, cinder.ExportLegacy, []exportCase{
		{name: "reserve fails: nothing changes", inject: func(f *Fake) { f.FailNext(OpReserve, errBoom) },
			wantErr: errBoom, wantSteps: reserve, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "reserve answer lost: attaching without a record", inject: func(f *Fake) { f.LoseAnswer(OpReserve, errBoom) },
			wantErr: errBoom, wantSteps: reserve, wantStatus: "attaching", reserved: true, wantClearSteps: clearReserve},
		{name: "crash after reserve", inject: func(f *Fake) { f.CrashAt(OpReserve) },
			wantErr: cinder.ErrUnavailable, wantMsg: "connection refused", wantSteps: reserve, wantStatus: "attaching",
			reserved: true, crashed: true, wantClearSteps: clearReserve},
		{name: "initialize fails: unreserved", inject: func(f *Fake) { f.FailNext(OpInitializeConnection, errBoom) },
			wantErr: errBoom, wantSteps: initialize, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "initialize answer lost: unreserved, the backend target leaks", inject: func(f *Fake) { f.LoseAnswer(OpInitializeConnection, errBoom) },
			wantErr: errBoom, wantSteps: initialize, wantStatus: "available", wantTarget: 1,
			wantClearSteps: []string{OpClearExports}, wantTargetCleared: 1},
		{name: "crash after initialize", inject: func(f *Fake) { f.CrashAt(OpInitializeConnection) },
			wantErr: cinder.ErrUnavailable, wantMsg: "rollback incomplete", wantSteps: initialize, wantStatus: "attaching",
			wantTarget: 1, reserved: true, crashed: true, wantClearSteps: clearReserve},
		{name: "attach fails: terminated and unreserved", inject: func(f *Fake) { f.FailNext(OpAttach, errBoom) },
			wantErr: errBoom, wantSteps: attach, wantStatus: "available", wantClearSteps: []string{OpClearExports}},
		{name: "attach answer lost: attached, connection terminated", inject: func(f *Fake) { f.LoseAnswer(OpAttach, errBoom) },
			wantErr: errBoom, wantSteps: attach, wantStatus: "in-use", wantAtt: []string{"attached"}, wantShown: 1,
			wantClearSteps: clearAttached},
		{name: "crash after attach", inject: func(f *Fake) { f.CrashAt(OpAttach) },
			wantErr: cinder.ErrUnavailable, wantMsg: "rollback incomplete", wantSteps: attach, wantStatus: "in-use",
			wantAtt: []string{"attached"}, wantShown: 1, wantTarget: 1, crashed: true, wantClearSteps: clearAttached},
		{name: "attach fails, terminate undo fails: unreserved, the target leaks", inject: func(f *Fake) {
			f.FailNext(OpAttach, errBoom)
			f.FailNext(OpTerminateConnection, cinder.NewError("os-terminate_connection", "", cinder.ErrUnavailable, "Unable to terminate volume connection from backend."))
		}, wantErr: errBoom, wantMsg: "undo os-initialize_connection", wantSteps: attach, wantStatus: "available", wantTarget: 1,
			wantClearSteps: []string{OpClearExports}, wantTargetCleared: 1},
		{name: "attach fails, every undo fails: attaching", inject: func(f *Fake) {
			f.FailNext(OpAttach, errBoom)
			f.Fail(OpTerminateConnection, errBoom)
			f.FailNext(OpUnreserve, errBoom)
			f.Hook(OpClearExports, func(context.Context, Call) error { f.Fail(OpTerminateConnection, nil); return nil })
		}, wantErr: errBoom, wantMsg: "undo os-reserve", wantSteps: attach, wantStatus: "attaching", wantTarget: 1, reserved: true,
			wantClearSteps: clearReserve},
	})
}

func TestHooksSeeTheStatesBetweenTwoRequests(t *testing.T) {
	ctx := context.Background()
	f := New()
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
	var seen []string
	look := func(_ context.Context, c Call) error {
		seen = append(seen, fmt.Sprintf("%s: %s %v", c.Op, mustVolume(t, f, id).Status, attachmentStatuses(f, id)))
		return nil
	}
	for _, op := range []string{OpAttachmentCreate, OpInitializeConnection, OpAttachmentComplete} {
		f.Hook(op, look)
	}
	if _, err := f.Export(ctx, id, node); err != nil {
		t.Fatal(err)
	}
	want := []string{"AttachmentCreate: available []", "InitializeConnection: reserved [reserved]", "AttachmentComplete: attaching [attaching]"}
	if !slices.Equal(seen, want) {
		t.Errorf("seen %q\nwant %q", seen, want)
	}
}

func TestUnexportLegacyOnEveryFailure(t *testing.T) {
	tests := []struct {
		name       string
		inject     func(f *Fake)
		wantErr    error
		wantSteps  []string
		wantStatus string
		wantAtt    []string
		crashed    bool
		// then: Restart, and the retry of Unexport ends available
		wantRetrySteps []string
	}{
		{name: "begin_detaching fails: in-use", inject: func(f *Fake) { f.FailNext(OpBeginDetaching, errBoom) },
			wantErr: errBoom, wantSteps: []string{OpUnexport, OpBeginDetaching}, wantStatus: "in-use", wantAtt: []string{"attached"},
			wantRetrySteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach}},
		{name: "crash after begin_detaching: detaching", inject: func(f *Fake) { f.CrashAt(OpBeginDetaching) },
			wantErr: cinder.ErrUnavailable, wantSteps: []string{OpUnexport, OpBeginDetaching}, wantStatus: "detaching",
			wantAtt: []string{"attached"}, crashed: true,
			wantRetrySteps: []string{OpUnexport, OpTerminateConnection, OpDetach}},
		{name: "terminate fails: rolled back to in-use", inject: func(f *Fake) { f.FailNext(OpTerminateConnection, errBoom) },
			wantErr: errBoom, wantSteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpRollDetaching},
			wantStatus: "in-use", wantAtt: []string{"attached"},
			wantRetrySteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach}},
		{name: "terminate and roll back fail: detaching", inject: func(f *Fake) {
			f.FailNext(OpTerminateConnection, errBoom)
			f.FailNext(OpRollDetaching, errBoom)
		}, wantErr: errBoom, wantSteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpRollDetaching},
			wantStatus: "detaching", wantAtt: []string{"attached"},
			wantRetrySteps: []string{OpUnexport, OpTerminateConnection, OpDetach}},
		{name: "detach fails: detaching", inject: func(f *Fake) { f.FailNext(OpDetach, errBoom) },
			wantErr: errBoom, wantSteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach},
			wantStatus: "detaching", wantAtt: []string{"attached"},
			wantRetrySteps: []string{OpUnexport, OpTerminateConnection, OpDetach}},
		{name: "detach answer lost: available", inject: func(f *Fake) { f.LoseAnswer(OpDetach, errBoom) },
			wantErr: errBoom, wantSteps: []string{OpUnexport, OpBeginDetaching, OpTerminateConnection, OpDetach},
			wantStatus: "available", wantRetrySteps: []string{OpUnexport}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			f.SetExportMethod(cinder.ExportLegacy)
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
			exp, err := f.Export(ctx, id, node)
			if err != nil {
				t.Fatal(err)
			}
			f.ResetCalls()
			tc.inject(f)
			ref := cinder.ExportRef{Method: cinder.ExportLegacy, ID: exp.ID}
			checkErr(t, "unexport", f.Unexport(ctx, id, ref, node), tc.wantErr, "")
			if !slices.Equal(f.StepOps(), tc.wantSteps) {
				t.Errorf("steps %v, want %v", f.StepOps(), tc.wantSteps)
			}
			if v := mustVolume(t, f, id); v.Status != tc.wantStatus || !slices.Equal(attachmentStatuses(f, id), tc.wantAtt) {
				t.Errorf("left %s %v, want %s %v", v.Status, attachmentStatuses(f, id), tc.wantStatus, tc.wantAtt)
			}
			if f.Crashed() != tc.crashed {
				t.Errorf("crashed %v", f.Crashed())
			}
			f.Restart()
			f.ResetCalls()
			if err := f.Unexport(ctx, id, ref, node); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !slices.Equal(f.StepOps(), tc.wantRetrySteps) {
				t.Errorf("retry steps %v, want %v", f.StepOps(), tc.wantRetrySteps)
			}
			if v := mustVolume(t, f, id); v.Status != cinder.StatusAvailable || len(f.Attachments(id)) != 0 || len(f.BackendExports(id)) != 0 {
				t.Errorf("after retry %s %+v %+v", v.Status, f.Attachments(id), f.BackendExports(id))
			}
		})
	}
}

func TestUnexportThroughAttachmentsInjection(t *testing.T) {
	tests := []struct {
		name       string
		inject     func(f *Fake)
		wantErr    error
		wantStatus string
		wantAtt    []string
	}{
		{"delete fails: nothing changes", func(f *Fake) { f.FailNext(OpAttachmentDelete, errBoom) }, errBoom, "in-use", []string{"attached"}},
		{"unexport fails: nothing changes", func(f *Fake) { f.FailNext(OpUnexport, errBoom) }, errBoom, "in-use", []string{"attached"}},
		{"delete answer lost: deleted", func(f *Fake) { f.LoseAnswer(OpAttachmentDelete, errBoom) }, errBoom, "available", nil},
		{"crash after delete: deleted", func(f *Fake) { f.CrashAt(OpAttachmentDelete) }, cinder.ErrUnavailable, "available", nil},
		{"unexport answer lost: deleted", func(f *Fake) { f.LoseAnswer(OpUnexport, errBoom) }, errBoom, "available", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
			exp, err := f.Export(ctx, id, node)
			if err != nil {
				t.Fatal(err)
			}
			tc.inject(f)
			checkErr(t, "unexport", f.Unexport(ctx, id, cinder.ExportRef{ID: exp.ID}, node), tc.wantErr, "")
			if v := mustVolume(t, f, id); v.Status != tc.wantStatus || !slices.Equal(attachmentStatuses(f, id), tc.wantAtt) {
				t.Errorf("left %s %v, want %s %v", v.Status, attachmentStatuses(f, id), tc.wantStatus, tc.wantAtt)
			}
		})
	}
}

func TestListExportsShowsEveryAttachmentOldestFirst(t *testing.T) {
	ctx := context.Background()
	f := New()
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
	a, err := f.Export(ctx, id, node)
	if err != nil {
		t.Fatal(err)
	}
	f.LoseAnswer(OpAttachmentCreate, errBoom)
	if _, err := f.Export(ctx, id, node2); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	got, err := f.ListExports(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (cinder.Attachment{ID: a.ID, Status: "attached", Host: "node1"}) ||
		got[1].Status != "attaching" || got[1].Host != "node2" || got[1].ID == "" {
		t.Errorf("ListExports %+v", got)
	}
	if v := mustVolume(t, f, id); v.Status != cinder.StatusAttaching || !slices.Equal(v.AttachmentIDs, []string{a.ID}) {
		t.Errorf("volume view %+v: lists only attached", v)
	}
	if _, err := f.ListExports(ctx, "missing"); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("missing volume: %v", err)
	}
	f.FailNext(OpListExports, errBoom)
	if _, err := f.ListExports(ctx, id); !errors.Is(err, errBoom) {
		t.Errorf("injected: %v", err)
	}
}

func TestClearExportsBringsBackAvailable(t *testing.T) {
	tests := []struct {
		name       string
		method     cinder.ExportMethod
		setup      func(t *testing.T, f *Fake, id string)
		wantBefore string
		wantSteps  []string
	}{
		{"nothing to do", cinder.ExportAttachments, func(*testing.T, *Fake, string) {}, "available", []string{OpClearExports}},
		{"in-use with two attachments", cinder.ExportAttachments, func(t *testing.T, f *Fake, id string) {
			for _, cn := range []cinder.Connector{node, node2} {
				if _, err := f.Export(context.Background(), id, cn); err != nil {
					t.Fatal(err)
				}
			}
		}, "in-use", []string{OpClearExports, OpAttachmentDelete, OpAttachmentDelete}},
		{"reserved by a failed backend export", cinder.ExportAttachments, func(t *testing.T, f *Fake, id string) {
			f.FailNext(OpInitializeConnection, errBoom)
			_, _ = f.Export(context.Background(), id, node)
		}, "reserved", []string{OpClearExports, OpAttachmentDelete}},
		{"legacy detaching", cinder.ExportLegacy, func(t *testing.T, f *Fake, id string) {
			exp, err := f.Export(context.Background(), id, node)
			if err != nil {
				t.Fatal(err)
			}
			f.CrashAt(OpBeginDetaching)
			_ = f.Unexport(context.Background(), id, cinder.ExportRef{ID: exp.ID}, node)
			f.Restart()
		}, "detaching", []string{OpClearExports, OpRollDetaching, OpDetach}},
		{"legacy reserve on an in-use multiattach volume", cinder.ExportLegacy, func(t *testing.T, f *Fake, id string) {
			if _, err := f.Export(context.Background(), id, node); err != nil {
				t.Fatal(err)
			}
			f.LoseAnswer(OpInitializeConnection, errBoom)
			f.FailNext(OpUnreserve, errBoom)
			_, _ = f.Export(context.Background(), id, node2)
		}, "attaching", []string{OpClearExports, OpDetach, OpTerminateConnection, OpUnreserve}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			f.SetExportMethod(tc.method)
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
			tc.setup(t, f, id)
			if v := mustVolume(t, f, id); v.Status != tc.wantBefore {
				t.Fatalf("before: %s, want %s", v.Status, tc.wantBefore)
			}
			f.ResetCalls()
			v, err := f.ClearExports(context.Background(), id, node2)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != cinder.StatusAvailable || len(v.AttachmentIDs) != 0 || len(f.Attachments(id)) != 0 || len(f.BackendExports(id)) != 0 {
				t.Errorf("after: %+v %+v %+v", v, f.Attachments(id), f.BackendExports(id))
			}
			if !slices.Equal(f.StepOps(), tc.wantSteps) {
				t.Errorf("steps %v, want %v", f.StepOps(), tc.wantSteps)
			}
		})
	}
}

func TestClearExportsFailures(t *testing.T) {
	ctx := context.Background()
	f := New()
	if _, err := f.ClearExports(ctx, "missing", node); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("missing volume: %v", err)
	}
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
	for _, cn := range []cinder.Connector{node, node2} {
		if _, err := f.Export(ctx, id, cn); err != nil {
			t.Fatal(err)
		}
	}
	// the first delete goes through, then Cinder vanishes
	f.CrashAt(OpAttachmentDelete)
	if _, err := f.ClearExports(ctx, id, node); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("crash: %v", err)
	}
	if got := attachmentStatuses(f, id); !slices.Equal(got, []string{"attached"}) {
		t.Errorf("after the crash %v, want one attachment left", got)
	}
	f.Restart()
	f.FailNext(OpClearExports, errBoom)
	if _, err := f.ClearExports(ctx, id, node); !errors.Is(err, errBoom) {
		t.Errorf("injected: %v", err)
	}
	if v, err := f.ClearExports(ctx, id, node); err != nil || v.Status != cinder.StatusAvailable {
		t.Errorf("retry: %+v %v", v, err)
	}
}

func TestDeleteRefusedWhereCinderRefuses(t *testing.T) {
	ctx := context.Background()
	crash := func(op string) func(*testing.T, *Fake, string) {
		return func(t *testing.T, f *Fake, id string) {
			f.CrashAt(op)
			_, _ = f.Export(ctx, id, node)
			f.Restart()
		}
	}
	status := func(s string) func(*testing.T, *Fake, string) {
		return func(t *testing.T, f *Fake, id string) {
			if err := f.SetStatus(id, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *Fake, id string)
		status string
	}{
		{"creating", status(cinder.StatusCreating), "creating"},
		{"reserved (backend export failed)", func(t *testing.T, f *Fake, id string) {
			f.FailNext(OpInitializeConnection, errBoom)
			_, _ = f.Export(ctx, id, node)
		}, "reserved"},
		{"attaching (crash after attachment create)", crash(OpAttachmentCreate), "attaching"},
		{"attaching (legacy reserve)", func(t *testing.T, f *Fake, id string) {
			f.SetExportMethod(cinder.ExportLegacy)
			crash(OpReserve)(t, f, id)
		}, "attaching"},
		{"in-use", func(t *testing.T, f *Fake, id string) {
			if _, err := f.Export(ctx, id, node); err != nil {
				t.Fatal(err)
			}
		}, "in-use"},
		{"detaching", func(t *testing.T, f *Fake, id string) {
			f.SetExportMethod(cinder.ExportLegacy)
			exp, err := f.Export(ctx, id, node)
			if err != nil {
				t.Fatal(err)
			}
			f.FailNext(OpDetach, errBoom)
			_ = f.Unexport(ctx, id, cinder.ExportRef{ID: exp.ID}, node)
		}, "detaching"},
		{"available with a reserved attachment (reset-state)", func(t *testing.T, f *Fake, id string) {
			f.FailNext(OpInitializeConnection, errBoom)
			_, _ = f.Export(ctx, id, node)
			status(cinder.StatusAvailable)(t, f, id)
		}, "available"},
		{"deleting", func(t *testing.T, f *Fake, id string) {
			f.SetDeletingPolls(5)
			if err := f.DeleteVolume(ctx, id); err != nil {
				t.Fatal(err)
			}
		}, "deleting"},
		{"error_deleting", status(cinder.StatusErrorDeleting), "error_deleting"},
		{"extending", status("extending"), "extending"},
		{"maintenance", status("maintenance"), "maintenance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
			tc.setup(t, f, id)
			before := mustVolume(t, f, id)
			if before.Status != tc.status {
				t.Fatalf("setup left %s, want %s", before.Status, tc.status)
			}
			atts := f.Attachments(id)
			err := f.DeleteVolume(ctx, id)
			var ce *cinder.Error
			if !errors.Is(err, cinder.ErrInvalid) || !errors.As(err, &ce) || ce.Message != msgNotDeletable {
				t.Fatalf("delete: %v, want ErrInvalid with Cinder's message", err)
			}
			if after := mustVolume(t, f, id); !reflect.DeepEqual(after, before) || !reflect.DeepEqual(f.Attachments(id), atts) {
				t.Errorf("a refused delete changed %+v into %+v", before, after)
			}
		})
	}
}

func TestDeleteFromDeletableStatuses(t *testing.T) {
	for _, s := range []string{"available", "error", "error_restoring", "error_extending", "error_managing"} {
		t.Run(s, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Status: s})
			if err := f.DeleteVolume(ctx, id); err != nil {
				t.Fatal(err)
			}
			if v := mustVolume(t, f, id); !isDeleting(v.Status) {
				t.Errorf("status %s, want deleting", v.Status)
			}
			if err := f.WaitForVolumeDeleted(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, ok := f.Volume(id); ok {
				t.Error("volume left")
			}
		})
	}
}

func TestDeletingTakesPollsAndCanEndInErrorDeleting(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetDeletingPolls(2)
	f.SetQuota(1)
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
	if err := f.DeleteVolume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if found, err := f.FindVolumeByName(ctx, "v"); err != nil || found.Status != cinder.StatusDeleting {
		t.Errorf("find while deleting: %+v %v", found, err)
	}
	if l, _ := f.ListVolumes(ctx, nil); len(l) != 1 {
		t.Errorf("list while deleting: %+v", l)
	}
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "w", SizeGiB: 1}); !errors.Is(err, cinder.ErrQuotaExceeded) {
		t.Errorf("a deleting volume still counts: %v", err)
	}
	if err := f.DeleteVolume(ctx, id); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("delete while deleting: %v, want ErrInvalid", err)
	}
	for i := range 2 {
		if v, err := f.GetVolume(ctx, id); err != nil || v.Status != cinder.StatusDeleting {
			t.Fatalf("poll %d: %+v %v", i, v, err)
		}
	}
	if _, err := f.GetVolume(ctx, id); !errors.Is(err, cinder.ErrNotFound) {
		t.Fatalf("third poll: %v, want gone", err)
	}
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "w", SizeGiB: 1}); err != nil {
		t.Errorf("quota after the delete: %v", err)
	}

	g := New()
	g.SetDeleteFinalStatus(cinder.StatusErrorDeleting)
	id = g.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
	if err := g.DeleteVolume(ctx, id); err != nil {
		t.Fatal(err)
	}
	var vse *cinder.VolumeStatusError
	if err := g.WaitForVolumeDeleted(ctx, id); !errors.As(err, &vse) || vse.Status != cinder.StatusErrorDeleting {
		t.Fatalf("wait: %v, want error_deleting", err)
	}
	if err := g.DeleteVolume(ctx, id); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("delete of error_deleting: %v, want ErrInvalid", err)
	}
}

func TestDeleteOfAnUnscheduledVolumeIsImmediate(t *testing.T) {
	// Cinder 21 volume/api.py delete: a volume without host is destroyed
	// by the API, whatever its status.
	f := New()
	f.SetDeletingPolls(5)
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Status: cinder.StatusCreating})
	if err := f.DeleteVolume(context.Background(), id); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("scheduled creating volume: %v, want ErrInvalid", err)
	}
	if err := f.SetHost(id, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteVolume(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Volume(id); ok {
		t.Error("unscheduled volume not destroyed at once")
	}
}

func TestInjectionKindsOnVolumeCalls(t *testing.T) {
	ctx := context.Background()
	req := cinder.CreateRequest{Name: "pvc", SizeGiB: 1}

	t.Run("FailNext queues and changes nothing", func(t *testing.T) {
		f := New()
		boom := errors.New("boom")
		f.FailNext(OpCreateVolume, boom)
		f.FailNext(OpCreateVolume, cinder.NewError("create volume", "pvc", cinder.ErrUnavailable, ""))
		if _, err := f.CreateVolume(ctx, req); !errors.Is(err, boom) {
			t.Fatalf("first: %v", err)
		}
		if _, err := f.CreateVolume(ctx, req); !errors.Is(err, cinder.ErrUnavailable) {
			t.Fatalf("second: %v", err)
		}
		if len(f.Volumes()) != 0 {
			t.Fatal("a failed create made a volume")
		}
		if _, err := f.CreateVolume(ctx, req); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LoseAnswer on create leaves the volume", func(t *testing.T) {
		f := New()
		f.LoseAnswer(OpCreateVolume, errBoom)
		v, err := f.CreateVolume(ctx, req)
		if !errors.Is(err, errBoom) || v != nil {
			t.Fatalf("create: %+v %v", v, err)
		}
		vols := f.Volumes()
		if len(vols) != 1 || vols[0].Name != "pvc" {
			t.Fatalf("volumes %+v", vols)
		}
		if c := f.Calls()[0]; c.VolumeID != vols[0].ID || !errors.Is(c.Err, errBoom) {
			t.Errorf("call %+v", c)
		}
		if found, err := f.FindVolumeByName(ctx, "pvc"); err != nil || found.ID != vols[0].ID {
			t.Errorf("a retry finds it: %+v %v", found, err)
		}
	})

	t.Run("LoseAnswer without an error is a timeout", func(t *testing.T) {
		f := New()
		id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
		f.LoseAnswer(OpDeleteVolume, nil)
		var ce *cinder.Error
		if err := f.DeleteVolume(ctx, id); !errors.Is(err, cinder.ErrUnavailable) || !errors.As(err, &ce) || ce.Volume != id {
			t.Fatalf("delete: %v", err)
		}
		if v := mustVolume(t, f, id); v.Status != cinder.StatusDeleting {
			t.Errorf("status %s, want deleting: the delete was applied", v.Status)
		}
	})

	t.Run("LoseAnswer on export leaves the export", func(t *testing.T) {
		f := New()
		id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
		f.LoseAnswer(OpExport, errBoom)
		if _, err := f.Export(ctx, id, node); !errors.Is(err, errBoom) {
			t.Fatal(err)
		}
		exps := f.Exports(id)
		if len(exps) != 1 || f.Calls()[0].ExportID != exps[0].ID || mustVolume(t, f, id).Status != cinder.StatusInUse {
			t.Errorf("exports %+v, calls %+v", exps, f.Calls())
		}
	})

	t.Run("CrashAt applies, then every call fails until Restart", func(t *testing.T) {
		f := New()
		f.CrashAt(OpCreateVolume)
		_, err := f.CreateVolume(ctx, req)
		var ce *cinder.Error
		if !errors.Is(err, cinder.ErrUnavailable) || !errors.As(err, &ce) || ce.Message != "connection refused" {
			t.Fatalf("create: %v", err)
		}
		vols := f.Volumes()
		if len(vols) != 1 {
			t.Fatalf("volumes %+v", vols)
		}
		id := vols[0].ID
		f.FailNext(OpDeleteVolume, errBoom) // not consumed while crashed
		calls := []func() error{
			func() error { _, err := f.GetVolume(ctx, id); return err },
			func() error { _, err := f.ListVolumes(ctx, nil); return err },
			func() error { return f.DeleteVolume(ctx, id) },
			func() error {
				_, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "other", SizeGiB: 1})
				return err
			},
			func() error { _, err := f.WaitForVolumeStatus(ctx, id, cinder.StatusAvailable); return err },
			func() error { _, err := f.ServiceInfo(ctx); return err },
		}
		for i, call := range calls {
			if err := call(); !errors.Is(err, cinder.ErrUnavailable) {
				t.Errorf("call %d while crashed: %v", i, err)
			}
		}
		if v := mustVolume(t, f, id); v.Status != cinder.StatusCreating || len(f.Volumes()) != 1 {
			t.Errorf("calls while crashed changed the state: %+v", f.Volumes())
		}
		f.Restart()
		if err := f.DeleteVolume(ctx, id); !errors.Is(err, errBoom) {
			t.Errorf("the queued failure after Restart: %v", err)
		}
		if v, err := f.GetVolume(ctx, id); err != nil || v.Status != cinder.StatusAvailable {
			t.Errorf("after Restart: %+v %v", v, err)
		}
	})

	t.Run("SetDown fails every call and changes nothing", func(t *testing.T) {
		f := New()
		id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
		f.LoseAnswer(OpDeleteVolume, errBoom)
		f.SetDown(true)
		if err := f.DeleteVolume(ctx, id); !errors.Is(err, cinder.ErrUnavailable) || errors.Is(err, errBoom) {
			t.Errorf("delete while down: %v", err)
		}
		if _, err := f.ClearExports(ctx, id, node); !errors.Is(err, cinder.ErrUnavailable) {
			t.Errorf("clear while down: %v", err)
		}
		if err := f.WaitForVolumeDeleted(ctx, id); !errors.Is(err, cinder.ErrUnavailable) {
			t.Errorf("wait while down: %v", err)
		}
		if v := mustVolume(t, f, id); v.Status != cinder.StatusAvailable {
			t.Errorf("status %s", v.Status)
		}
		f.SetDown(false)
		if err := f.DeleteVolume(ctx, id); !errors.Is(err, errBoom) {
			t.Errorf("the lost answer is still queued: %v", err)
		}
		if v := mustVolume(t, f, id); v.Status != cinder.StatusDeleting {
			t.Errorf("status %s", v.Status)
		}
	})

	t.Run("Fail until cleared, hooks change state mid-flight", func(t *testing.T) {
		f := New()
		v, err := f.CreateVolume(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		f.Fail(OpExport, errBoom)
		for range 2 {
			if _, err := f.Export(ctx, v.ID, node); !errors.Is(err, errBoom) {
				t.Fatalf("export: %v", err)
			}
		}
		f.Fail(OpExport, nil)
		f.Hook(OpWaitForVolumeStatus, func(ctx context.Context, c Call) error { return f.SetStatus(c.VolumeID, cinder.StatusError) })
		_, err = f.WaitForVolumeStatus(ctx, v.ID, cinder.StatusAvailable)
		var vse *cinder.VolumeStatusError
		if !errors.As(err, &vse) || vse.Status != cinder.StatusError {
			t.Fatalf("wait: %v", err)
		}
		f.Hook(OpWaitForVolumeStatus, nil)
		f.Hook(OpReserve, func(context.Context, Call) error { return errBoom })
		f.SetExportMethod(cinder.ExportLegacy)
		if err := f.SetStatus(v.ID, cinder.StatusAvailable); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Export(ctx, v.ID, node); !errors.Is(err, errBoom) || mustVolume(t, f, v.ID).Status != cinder.StatusAvailable {
			t.Errorf("hook on a step: %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		f := New()
		id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1})
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := f.GetVolume(done, id); !errors.Is(err, context.Canceled) {
			t.Errorf("get: %v", err)
		}
		// a cancellation during the export still undoes it
		mid, cancelMid := context.WithCancel(ctx)
		f.Hook(OpAttachmentComplete, func(context.Context, Call) error { cancelMid(); return nil })
		if _, err := f.Export(mid, id, node); !errors.Is(err, context.Canceled) {
			t.Errorf("export: %v", err)
		}
		if v := mustVolume(t, f, id); v.Status != cinder.StatusAvailable || len(f.Attachments(id)) != 0 {
			t.Errorf("after a cancelled export %+v %+v", v, f.Attachments(id))
		}
	})
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
	// Cinder answers 400 InvalidVolume (os-reserve), not 409
	if _, err := f.Export(ctx, v.ID, node2); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("second export of a non-multiattach volume: %v, want ErrInvalid", err)
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
	if _, err := f.CreateVolume(ctx, cinder.CreateRequest{Name: "", SizeGiB: 1}); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("no name: %v", err)
	}
}

func TestSeedListAndDuplicates(t *testing.T) {
	ctx := context.Background()
	f := New()
	a := f.AddVolume(cinder.Volume{Name: "pvc-x", Metadata: map[string]string{"cluster": "c1"}})
	b := f.AddVolume(cinder.Volume{Name: "pvc-x", Metadata: map[string]string{"cluster": "c2"}, Status: cinder.StatusInUse, AttachmentIDs: []string{"att-1"}})
	_, err := f.FindVolumeByName(ctx, "pvc-x")
	var dup *cinder.DuplicateNameError
	if !errors.As(err, &dup) || !slices.Equal(dup.IDs, []string{a, b}) {
		t.Fatalf("duplicates: %v", err)
	}
	vols, err := f.ListVolumes(ctx, map[string]string{"cluster": "c2"})
	if err != nil || len(vols) != 1 || vols[0].ID != b || !slices.Equal(vols[0].AttachmentIDs, []string{"att-1"}) {
		t.Fatalf("list: %v %v", vols, err)
	}
	if err := f.Unexport(ctx, b, cinder.ExportRef{ID: "att-1"}, node); err != nil || mustVolume(t, f, b).Status != cinder.StatusAvailable {
		t.Errorf("unexport of a seeded attachment: %v", err)
	}
	all, _ := f.ListVolumes(ctx, nil)
	if len(all) != 2 {
		t.Fatalf("list all: %d", len(all))
	}
	info, err := f.ServiceInfo(ctx)
	if err != nil || info.ExportMethod != cinder.ExportAttachments || len(info.VolumeTypes) != 1 {
		t.Fatalf("info %+v %v", info, err)
	}
	if err := f.SetStatus("missing", "error"); err == nil {
		t.Error("SetStatus of a missing volume")
	}
}

func TestConcurrentExportsAndUnexports(t *testing.T) {
	ctx := context.Background()
	f := New()
	id := f.AddVolume(cinder.Volume{Name: "v", SizeGiB: 1, Multiattach: true})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn := cinder.Connector{Initiator: fmt.Sprintf("iqn.node%d", i), Host: fmt.Sprintf("node%d", i)}
			for {
				exp, err := f.Export(ctx, id, cn)
				if errors.Is(err, cinder.ErrInvalid) { // another export is between two steps
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				_, _ = f.ListExports(ctx, id)
				if err := f.Unexport(ctx, id, cinder.ExportRef{ID: exp.ID}, cn); err != nil {
					errs <- err
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := mustVolume(t, f, id); v.Status != cinder.StatusAvailable || len(f.Attachments(id)) != 0 {
		t.Errorf("after concurrent use %+v %+v", v, f.Attachments(id))
	}
	if n := len(f.Calls()); n < 32 {
		t.Errorf("%d calls logged", n)
	}
}
