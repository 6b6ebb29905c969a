package fake

import (
	"context"
	"errors"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// TestExtendStateMachine: every way an os-extend ends in Cinder 21, as the
// volume's status and size show it to GetVolume polls.
func TestExtendStateMachine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     string // available, or in-use (one attachment)
		setup      func(f *Fake)
		newSize    int
		wantErr    error
		wantOnline bool
		wantStatus string // after the extend, before any poll
		wantEnd    string // after the polls
		wantSize   int
		messages   int
	}{
		{name: "in-use grows", status: cinder.StatusInUse, newSize: 2, wantStatus: "extending", wantEnd: "in-use", wantSize: 2},
		{name: "available grows", status: cinder.StatusAvailable, newSize: 3, wantStatus: "extending", wantEnd: "available", wantSize: 3},
		{name: "in-use below 3.42", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetMaxMicroversion("3.40") }, newSize: 2,
			wantErr: cinder.ErrInvalid, wantOnline: true, wantStatus: "in-use", wantEnd: "in-use", wantSize: 1},
		{name: "available below 3.42", status: cinder.StatusAvailable, setup: func(f *Fake) { f.SetMaxMicroversion("3.0") }, newSize: 2,
			wantStatus: "extending", wantEnd: "available", wantSize: 2},
		{name: "no online extend", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetOnlineExtend(false) }, newSize: 2,
			wantStatus: "extending", wantEnd: "in-use", wantSize: 1, messages: 1},
		{name: "no online extend, available", status: cinder.StatusAvailable, setup: func(f *Fake) { f.SetOnlineExtend(false) }, newSize: 2,
			wantStatus: "extending", wantEnd: "available", wantSize: 2},
		{name: "driver fails", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetExtendResult(ExtendDriverFails) }, newSize: 2,
			wantStatus: "extending", wantEnd: "error_extending", wantSize: 1, messages: 1},
		{name: "no valid backend", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetExtendResult(ExtendNoValidBackend) }, newSize: 2,
			wantStatus: "extending", wantEnd: "in-use", wantSize: 1, messages: 1},
		{name: "not larger", status: cinder.StatusInUse, newSize: 1, wantErr: cinder.ErrInvalid, wantStatus: "in-use", wantEnd: "in-use", wantSize: 1},
		{name: "gigabytes quota", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetGigabytesQuota(1) }, newSize: 2,
			wantErr: cinder.ErrQuotaExceeded, wantStatus: "in-use", wantEnd: "in-use", wantSize: 1},
		{name: "per-volume limit", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetPerVolumeGigabytes(1) }, newSize: 2,
			wantErr: cinder.ErrQuotaExceeded, wantStatus: "in-use", wantEnd: "in-use", wantSize: 1},
		{name: "refused", status: cinder.StatusInUse, setup: func(f *Fake) { f.FailNext(OpExtendVolume, errBoom) }, newSize: 2,
			wantErr: cinder.ErrUnavailable, wantStatus: "in-use", wantEnd: "in-use", wantSize: 1},
		{name: "answer lost", status: cinder.StatusInUse, setup: func(f *Fake) { f.LoseAnswer(OpExtendVolume, nil) }, newSize: 2,
			wantErr: cinder.ErrUnavailable, wantStatus: "extending", wantEnd: "in-use", wantSize: 2},
		{name: "slow", status: cinder.StatusInUse, setup: func(f *Fake) { f.SetExtendingPolls(3) }, newSize: 2,
			wantStatus: "extending", wantEnd: "in-use", wantSize: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := New()
			v := cinder.Volume{Name: "pvc-1", SizeGiB: 1, Status: tc.status}
			if tc.status == cinder.StatusInUse {
				v.AttachmentIDs = []string{"att-1"}
			}
			id := f.AddVolume(v)
			if tc.setup != nil {
				tc.setup(f)
			}
			err := f.ExtendVolume(ctx, id, tc.newSize)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("extend: %v, want %v", err, tc.wantErr)
			}
			if got := errors.Is(err, cinder.ErrOnlineExtendUnsupported); got != tc.wantOnline {
				t.Errorf("ErrOnlineExtendUnsupported %v, want %v", got, tc.wantOnline)
			}
			if got := mustVolume(t, f, id); got.Status != tc.wantStatus {
				t.Errorf("status after the request %s, want %s", got.Status, tc.wantStatus)
			}
			got, err := f.WaitForVolumeStatus(ctx, id, cinder.StatusInUse, cinder.StatusAvailable)
			if tc.wantEnd == cinder.StatusErrorExtending {
				var vse *cinder.VolumeStatusError
				if !errors.As(err, &vse) || vse.Status != tc.wantEnd {
					t.Fatalf("wait: %v, want a VolumeStatusError %s", err, tc.wantEnd)
				}
				got = new(cinder.Volume)
				*got = mustVolume(t, f, id)
			} else if err != nil {
				t.Fatalf("wait: %v", err)
			}
			if got.Status != tc.wantEnd || got.SizeGiB != tc.wantSize {
				t.Errorf("ends %s at %d GiB, want %s at %d GiB", got.Status, got.SizeGiB, tc.wantEnd, tc.wantSize)
			}
			if n := len(f.UserMessages()); n != tc.messages {
				t.Errorf("%d user messages, want %d", n, tc.messages)
			}
		})
	}
}

// TestExtendWhileExtending: a second os-extend while one runs is refused
// (the conditional update expects available or in-use).
func TestExtendWhileExtending(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetExtendingPolls(1)
	id := f.AddVolume(cinder.Volume{Name: "pvc-1", SizeGiB: 1, Status: cinder.StatusInUse, AttachmentIDs: []string{"a"}})
	if err := f.ExtendVolume(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	err := f.ExtendVolume(ctx, id, 3)
	if !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("second extend: %v, want ErrInvalid", err)
	}
	if v := mustVolume(t, f, id); v.Status != cinder.StatusExtending {
		t.Fatalf("status %s", v.Status)
	}
	if info, _ := f.ServiceInfo(ctx); info.MaxMicroversion != "3.70" {
		t.Errorf("max microversion %s", info.MaxMicroversion)
	}
}
