package openstack

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// TestExtendVolume: os-extend with new_size; an in-use volume goes with
// microversion 3.42 even when the client's own is lower, and is refused
// before any request when Cinder offers less; Cinder's refusals are
// classified (400 ErrInvalid with its message, 413 ErrQuotaExceeded).
func TestExtendVolume(t *testing.T) {
	const tooSmall = "Invalid input received: New size for extend must be greater than current size. (current: 1, extended: 1)."
	const overQuota = "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1G, quota is 1G and 1G has been consumed."
	for _, tc := range []struct {
		name, max, status string
		size              int
		code              int
		body              string
		wantMV            string // microversion of the os-extend request; "": none sent
		want              error
		wantOnline        bool // errors.Is ErrOnlineExtendUnsupported
		wantMsg           string
	}{
		{name: "in-use at 3.70", max: "3.70", status: "in-use", size: 2, code: 202, wantMV: "3.54"},
		{name: "available at 3.0", max: "3.0", status: "available", size: 2, code: 202, wantMV: "3.0"},
		{name: "in-use at 3.43 sends 3.42", max: "3.43", status: "in-use", size: 2, code: 202, wantMV: "3.42"},
		{name: "in-use below 3.42", max: "3.41", status: "in-use", size: 2, want: cinder.ErrInvalid, wantOnline: true},
		{name: "not larger", max: "3.70", status: "in-use", size: 1, code: 400, wantMV: "3.54",
			body: `{"badRequest":{"code":400,"message":"` + tooSmall + `"}}`, want: cinder.ErrInvalid, wantMsg: tooSmall},
		{name: "over quota", max: "3.70", status: "in-use", size: 2, code: 413, wantMV: "3.54",
			body: `{"overLimit":{"code":413,"message":"` + overQuota + `","retryAfter":"0"}}`, want: cinder.ErrQuotaExceeded, wantMsg: overQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.max)
			s.onJSON("GET /volumes/v1", 200, volumeJSON("v1", "pvc-1", tc.status))
			var gotMV string
			s.on("POST /volumes/v1/action os-extend", func(w http.ResponseWriter, r *http.Request) {
				gotMV = r.Header.Get("OpenStack-API-Version")
				reply(w, tc.code, tc.body)
			})
			c, reg := s.client(ExportAuto)
			s.wantMV = "" // checked here, per request
			err := c.ExtendVolume(context.Background(), "v1", tc.size)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("extend: %v, want %v", err, tc.want)
			}
			if got := errors.Is(err, cinder.ErrOnlineExtendUnsupported); got != tc.wantOnline {
				t.Errorf("ErrOnlineExtendUnsupported: %v, want %v (%v)", got, tc.wantOnline, err)
			}
			var ce *cinder.Error
			if tc.wantMsg != "" && (!errors.As(err, &ce) || ce.Message != tc.wantMsg) {
				t.Errorf("message of %v, want %q", err, tc.wantMsg)
			}
			want := []string{"GET /volumes/v1"}
			if tc.wantMV != "" {
				want = append(want, "POST /volumes/v1/action os-extend")
				if gotMV != "volume "+tc.wantMV {
					t.Errorf("os-extend sent OpenStack-API-Version %q, want volume %s", gotMV, tc.wantMV)
				}
				if got := s.body("POST /volumes/v1/action os-extend", 0); !reflect.DeepEqual(got, map[string]any{"os-extend": map[string]any{"new_size": float64(tc.size)}}) {
					t.Errorf("os-extend body %v", got)
				}
				if counter(reg, "extend_volume", outcomeOf(tc.want)) != 1 {
					t.Error("extend_volume not counted")
				}
			}
			if !slices.Equal(s.requests(), want) {
				t.Errorf("requests %v, want %v", s.requests(), want)
			}
			// The client's own microversion is unchanged for later requests.
			if c.sc.Microversion != c.Microversion() {
				t.Errorf("service client microversion %s, want %s", c.sc.Microversion, c.Microversion())
			}
		})
	}
}

func TestExtendVolumeMissing(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"Volume gone could not be found."}}`)
	c, _ := s.client(ExportAuto)
	if err := c.ExtendVolume(context.Background(), "gone", 2); !errors.Is(err, cinder.ErrNotFound) {
		t.Fatalf("extend of a missing volume: %v, want ErrNotFound", err)
	}
	if err := c.ExtendVolume(context.Background(), "", 2); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("extend without id: %v, want ErrInvalid", err)
	}
}
