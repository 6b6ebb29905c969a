package operator

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

var testConnector = cinder.Connector{
	Initiator: "iqn.2026-11.org.openstack.cinder-provisioner:test",
	Host:      "cinder-provisioner-test",
	OSType:    "linux2",
}

func checkConfig(f *fake.Fake, out *bytes.Buffer) CheckConfig {
	return CheckConfig{
		Cinder:    f,
		Out:       out,
		Source:    "--cloud-config test.conf (noauth)",
		Probe:     true,
		Connector: testConnector,
		ClusterID: "c1",
		Suffix:    func() string { return "abc" },
	}
}

func TestCheckWithoutProbePrintsServiceInfoOnly(t *testing.T) {
	f := fake.New()
	var out bytes.Buffer
	cfg := checkConfig(f, &out)
	cfg.Probe = false
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, want := range []string{
		"Configuration:   --cloud-config test.conf (noauth)",
		"Cinder endpoint: fake://cinder/v3/fake",
		"Auth mode:       fake",
		"API version:     v3.0",
		"Microversions:   min 3.0, max 3.70, using 3.54",
		"Export method:   attachments",
		"Volume types:    default",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if got := f.Ops(); !slices.Equal(got, []string{fake.OpServiceInfo}) {
		t.Errorf("calls = %v, want ServiceInfo only", got)
	}
}

func TestCheckProbeRunsTheLifeCycleWithoutPrintingCredentials(t *testing.T) {
	f := fake.New()
	var out bytes.Buffer
	if err := Check(context.Background(), checkConfig(f, &out)); err != nil {
		t.Fatalf("Check: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"Probe volume cinder-provisioner-check-abc:",
		"create 1 GiB volume (type default)",
		"wait until available",
		"export", "attachments export",
		"transport iscsi: portal 127.0.0.1:3260, IQN iqn.2010-10.org.openstack:volume-",
		"LUN 1, CHAP: yes",
		"unexport", "wait until deleted",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "chap-secret") || strings.Contains(got, "FAILED") {
		t.Errorf("output shows a credential or a failure:\n%s", got)
	}
	if vols := f.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
	// the create carried the probe's metadata
	for _, c := range f.Calls() {
		if c.Op == fake.OpCreateVolume {
			if c.Request == nil || c.Request.Metadata[MetaProbe] != "true" || c.Request.Metadata[contract.MetaClusterID] != "c1" || c.Request.SizeGiB != 1 {
				t.Errorf("create request = %+v", c.Request)
			}
		}
	}
}

func TestCheckProbeCleansUpOnFailure(t *testing.T) {
	errBoom := cinder.NewError("export volume", "x", cinder.ErrUnavailable, "backend down")
	tests := []struct {
		name     string
		failOp   string
		wantStep string
		wantOps  []string // from the failed call on
	}{
		{"export fails", fake.OpExport, "export: ", []string{fake.OpExport, fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}},
		{"unexport fails", fake.OpUnexport, "unexport: ", []string{fake.OpUnexport, fake.OpClearExports, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}},
		// the volume is still creating: the cleanup waits for it first
		{"wait available fails", fake.OpWaitForVolumeStatus, "wait until available: ", []string{fake.OpWaitForVolumeStatus, fake.OpWaitForVolumeStatus, fake.OpDeleteVolume, fake.OpWaitForVolumeDeleted}},
		{"create fails", fake.OpCreateVolume, "create 1 GiB volume", []string{fake.OpCreateVolume, fake.OpFindVolumeByName}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fake.New()
			f.FailNext(tc.failOp, errBoom)
			var out bytes.Buffer
			err := Check(context.Background(), checkConfig(f, &out))
			if !errors.Is(err, cinder.ErrUnavailable) || !strings.Contains(err.Error(), tc.wantStep) {
				t.Fatalf("err = %v, want the %q step's ErrUnavailable", err, tc.wantStep)
			}
			if vols := f.Volumes(); len(vols) != 0 {
				t.Errorf("probe volume left behind: %v\n%s", vols, out.String())
			}
			ops := f.Ops()
			i := slices.Index(ops, tc.failOp)
			if i < 0 || !slices.Equal(ops[i:], tc.wantOps) {
				t.Errorf("calls = %v, want ... %v", ops, tc.wantOps)
			}
			if !strings.Contains(out.String(), "FAILED after") {
				t.Errorf("output does not show the failure:\n%s", out.String())
			}
			if strings.Contains(out.String(), "chap-secret") {
				t.Errorf("output shows a credential:\n%s", out.String())
			}
		})
	}
}

func TestCheckProbeCleansUpExportsItDoesNotKnowOf(t *testing.T) {
	// The attachment is made, its answer lost: Export cannot undo what it
	// never learnt, and the volume stays reserved.
	tests := []struct {
		name   string
		method cinder.ExportMethod
		lose   string
	}{
		{"attachment", cinder.ExportAttachments, fake.OpAttachmentCreate},
		{"legacy reservation", cinder.ExportLegacy, fake.OpReserve},
		{"legacy attach", cinder.ExportLegacy, fake.OpAttach},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fake.New()
			f.SetExportMethod(tc.method)
			f.LoseAnswer(tc.lose, nil)
			var out bytes.Buffer
			err := Check(context.Background(), checkConfig(f, &out))
			if err == nil || !strings.Contains(err.Error(), "export: ") {
				t.Fatalf("err = %v, want the export step's", err)
			}
			if vols := f.Volumes(); len(vols) != 0 {
				t.Errorf("probe volume left behind: %v\n%s", vols, out.String())
			}
			if !strings.Contains(out.String(), "cleanup: remove exports") {
				t.Errorf("output does not show the export cleanup:\n%s", out.String())
			}
		})
	}
}

func TestCheckProbeCleansUpWhenTheContextEnds(t *testing.T) {
	f := fake.New()
	ctx, cancel := context.WithCancel(context.Background())
	f.Hook(fake.OpExport, func(context.Context, fake.Call) error {
		cancel() // a signal during the export
		return context.Canceled
	})
	var out bytes.Buffer
	if err := Check(ctx, checkConfig(f, &out)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if vols := f.Volumes(); len(vols) != 0 {
		t.Errorf("probe volume left behind: %v", vols)
	}
}

func TestCheckProbeReportsAVolumeItCouldNotRemove(t *testing.T) {
	f := fake.New()
	f.FailNext(fake.OpExport, cinder.ErrUnavailable)
	f.FailNext(fake.OpDeleteVolume, cinder.ErrUnavailable)
	var out bytes.Buffer
	err := Check(context.Background(), checkConfig(f, &out))
	vols := f.Volumes()
	if len(vols) != 1 {
		t.Fatalf("volumes = %v, want the one whose delete failed", vols)
	}
	if err == nil || !strings.Contains(err.Error(), "left behind") || !strings.Contains(err.Error(), vols[0].ID) {
		t.Errorf("err = %v, want it to name the volume left behind", err)
	}
}
