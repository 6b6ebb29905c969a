package cinder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	data := map[string]any{
		"target_iqn":              "iqn.2010-10.org.openstack:volume-1",
		"target_portal":           "127.0.0.1:3260",
		"auth_method":             "CHAP",
		"auth_username":           "chapuser",
		"auth_password":           "chap-secret-1",
		"discovery_auth_username": "discuser",
		"discovery_auth_password": "disc-secret-2",
		"keyring":                 "[client.cinder]\n\tkey = AQD-ceph-key-3",
		"secret_uuid":             "libvirt-secret-4",
		"cephx_key":               "AQD-ceph-key-5",
		"Auth_Password":           "mixed-case-secret-6",
		"empty_password":          "",
		"target_lun":              1,
		"nested":                  map[string]any{"userKey": "nested-key-7", "host": "h"},
		"list":                    []any{map[string]any{"password": "listed-secret-8"}, "plain"},
		"strmap":                  map[string]string{"token": "tok-secret-9"},
	}
	got := Redact(data)
	printed := fmt.Sprintf("%v", got)
	for i, secret := range []string{"chap-secret-1", "disc-secret-2", "AQD-ceph-key-3", "libvirt-secret-4", "AQD-ceph-key-5", "mixed-case-secret-6", "nested-key-7", "listed-secret-8", "tok-secret-9"} {
		if strings.Contains(printed, secret) {
			t.Errorf("secret %d (%s) survives redaction: %s", i+1, secret, printed)
		}
	}
	for _, k := range []string{"target_iqn", "target_portal", "auth_method", "auth_username", "discovery_auth_username"} {
		if got[k] != data[k] {
			t.Errorf("%s = %v, want %v kept", k, got[k], data[k])
		}
	}
	if got["auth_password"] != Redacted || got["empty_password"] != "" || got["target_lun"] != 1 {
		t.Errorf("auth_password %v empty_password %q target_lun %v", got["auth_password"], got["empty_password"], got["target_lun"])
	}
	if data["auth_password"] != "chap-secret-1" || data["nested"].(map[string]any)["userKey"] != "nested-key-7" {
		t.Error("Redact modified its input")
	}
	if Redact(nil) != nil {
		t.Error("Redact(nil) != nil")
	}
}

func TestConnectionAndExportPrintRedacted(t *testing.T) {
	conn := Connection{DriverVolumeType: "iscsi", Data: map[string]any{"auth_password": "s3cret", "target_lun": 1}}
	exp := Export{Method: ExportAttachments, ID: "a1", Connection: conn}
	holder := struct{ E Export }{exp}
	for _, s := range []string{
		fmt.Sprint(conn), fmt.Sprintf("%v %+v %#v %s", conn, conn, conn, conn),
		fmt.Sprint(exp), fmt.Sprintf("%v %+v %#v", exp, exp, exp), fmt.Sprintf("%v %+v", holder, holder),
		fmt.Sprint(conn.MarshalLog()), fmt.Sprint(exp.MarshalLog()), fmt.Sprint(conn.Redacted()),
	} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("printed form leaks the password: %s", s)
		}
	}
	if got, want := conn.String(), "iscsi{auth_password:<redacted> target_lun:1}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestErrorsMatchAndPrint(t *testing.T) {
	err := fmt.Errorf("provision: %w", &Error{Op: "create volume", Volume: "pvc-1", Kind: ErrQuotaExceeded, Message: "VolumeLimitExceeded: max 0"})
	if !errors.Is(err, ErrQuotaExceeded) || errors.Is(err, ErrNotFound) {
		t.Errorf("errors.Is wrong for %v", err)
	}
	if got, want := err.Error(), "provision: create volume pvc-1: quota exceeded: VolumeLimitExceeded: max 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	ctxErr := &Error{Op: "get volume", Volume: "v", Kind: ErrUnavailable, Message: "request interrupted", Err: context.DeadlineExceeded}
	if !errors.Is(ctxErr, ErrUnavailable) || !errors.Is(ctxErr, context.DeadlineExceeded) {
		t.Errorf("cause not visible: %v", ctxErr)
	}
	vs := fmt.Errorf("wait: %w", &VolumeStatusError{VolumeID: "v1", Status: "error", Wanted: []string{"available"}})
	var vse *VolumeStatusError
	if !errors.Is(vs, ErrVolumeError) || !errors.As(vs, &vse) || vse.Status != "error" {
		t.Errorf("VolumeStatusError not matched: %v", vs)
	}
	if got, want := vse.Error(), "volume v1 went to status error while waiting for available"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	dup := &DuplicateNameError{Name: "pvc-1", IDs: []string{"a", "b"}}
	if !errors.Is(dup, ErrConflict) || dup.Error() != "find volume pvc-1: 2 volumes carry this name (a, b)" {
		t.Errorf("DuplicateNameError: %v", dup)
	}
}

func TestIsErrorStatus(t *testing.T) {
	for status, want := range map[string]bool{
		"error": true, "error_deleting": true, "error_extending": true, "error_restoring": true,
		"available": false, "creating": false, "in-use": false, "errorless": false, "": false,
	} {
		if got := IsErrorStatus(status); got != want {
			t.Errorf("IsErrorStatus(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestBackoffDelays(t *testing.T) {
	b := DefaultBackoff()
	want := []time.Duration{100 * time.Millisecond, 160 * time.Millisecond, 256 * time.Millisecond}
	for i, w := range want {
		if got := b.Delay(i); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i, got, w)
		}
	}
	if got := b.Delay(50); got != 3*time.Second {
		t.Errorf("Delay(50) = %s, want the 3s cap", got)
	}
	if got := (Backoff{Initial: time.Millisecond}).Delay(10); got != time.Millisecond {
		t.Errorf("no factor: Delay = %s, want constant 1ms", got)
	}
}

func TestBackoffJitterStaysWithinItsShare(t *testing.T) {
	b := DefaultBackoff() // ±20%
	for _, c := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{0, 0, 80 * time.Millisecond},
		{0, 0.5, 100 * time.Millisecond},
		{0, 0.999999, 120 * time.Millisecond},
		{50, 0, 2400 * time.Millisecond},
	} {
		if got := b.jittered(c.n, c.r); got.Round(time.Millisecond) != c.want {
			t.Errorf("jittered(%d, %v) = %s, want %s", c.n, c.r, got, c.want)
		}
	}
	if got := (Backoff{Initial: time.Second}).jittered(0, 0); got != time.Second {
		t.Errorf("no jitter: %s, want 1s", got)
	}
}

// fastBackoff keeps tests quick without asserting any timing.
var fastBackoff = Backoff{Initial: time.Microsecond, Max: time.Microsecond, Factor: 1}

func statuses(seq ...string) VolumeGetter {
	i := 0
	return func(_ context.Context, id string) (*Volume, error) {
		s := seq[min(i, len(seq)-1)]
		i++
		if s == "404" {
			return nil, &Error{Op: "get volume", Volume: id, Kind: ErrNotFound}
		}
		if s == "503" {
			return nil, &Error{Op: "get volume", Volume: id, Kind: ErrUnavailable}
		}
		return &Volume{ID: id, Status: s}, nil
	}
}

func TestWaitForStatus(t *testing.T) {
	ctx := context.Background()
	v, err := WaitForStatus(ctx, fastBackoff, statuses("creating", "503", "creating", "available"), "v1", StatusAvailable)
	if err != nil || v.Status != StatusAvailable {
		t.Fatalf("got %+v, %v; want available (a transient 503 is retried)", v, err)
	}
	_, err = WaitForStatus(ctx, fastBackoff, statuses("creating", "error"), "v1", StatusAvailable)
	var vse *VolumeStatusError
	if !errors.As(err, &vse) || vse.Status != "error" || vse.VolumeID != "v1" {
		t.Fatalf("error status: %v, want *VolumeStatusError{error}", err)
	}
	if _, err = WaitForStatus(ctx, fastBackoff, statuses("creating", "404"), "v1", StatusAvailable); !errors.Is(err, ErrNotFound) {
		t.Fatalf("vanished volume: %v, want ErrNotFound", err)
	}
	if _, err = WaitForStatus(ctx, fastBackoff, statuses("available"), "v1"); err == nil {
		t.Fatal("no wanted status accepted")
	}
}

func TestWaitGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	get := func(_ context.Context, id string) (*Volume, error) {
		polls++
		if polls == 3 {
			cancel() // the caller gives up while the volume is still creating
		}
		return &Volume{ID: id, Status: "creating"}, nil
	}
	_, err := WaitForStatus(ctx, DefaultBackoff(), get, "v1", StatusAvailable)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a *WaitError wrapping context.Canceled", err)
	}
	if we.Last != "creating" || !strings.Contains(err.Error(), "volume v1 to become available") || !strings.Contains(err.Error(), "last status creating") {
		t.Errorf("error %q does not say what was awaited and the last status", err)
	}
	if polls != 3 {
		t.Errorf("polled %d times after cancel, want 3", polls)
	}

	// A transient error as the last thing seen is reported too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	err = Poll(ctx2, fastBackoff, "something", func(context.Context) (bool, string, error) {
		cancel2()
		return false, "", &Error{Op: "get volume", Kind: ErrUnavailable, Message: "connection refused"}
	})
	if !errors.As(err, &we) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "last poll failed") {
		t.Errorf("got %v, want the last transient error reported", err)
	}
}

func TestWaitForDeleted(t *testing.T) {
	ctx := context.Background()
	if err := WaitForDeleted(ctx, fastBackoff, statuses("deleting", "deleting", "404"), "v1"); err != nil {
		t.Fatalf("got %v, want success once gone", err)
	}
	err := WaitForDeleted(ctx, fastBackoff, statuses("deleting", "error_deleting"), "v1")
	var vse *VolumeStatusError
	if !errors.As(err, &vse) || vse.Status != StatusErrorDeleting {
		t.Fatalf("got %v, want *VolumeStatusError{error_deleting}", err)
	}
}

// A wait starts with a pause, never with a read: the volume was just
// created or deleted (or just read), and Cinder is never done in that
// instant. A context that ends within the first pause sees no read at all.
func TestPollPausesBeforeItsFirstRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	reads := 0
	err := Poll(ctx, Backoff{Initial: time.Hour}, "something", func(context.Context) (bool, string, error) {
		reads++
		return true, "done", nil
	})
	var we *WaitError
	if !errors.As(err, &we) || reads != 0 {
		t.Errorf("Poll = %v after %d reads; want a *WaitError and no read within the first pause", err, reads)
	}
}
