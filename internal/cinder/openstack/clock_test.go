package openstack

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// A volume's age is measured on Cinder's clock: the Date header of the
// answer against its created_at, whatever the local clock says.
func TestReadsCarryCinderClock(t *testing.T) {
	s := newServer(t, "3.70")
	date := "Tue, 24 Nov 2026 21:20:17 GMT" // an hour after created_at
	dated := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", date)
			reply(w, 200, body)
		}
	}
	s.on("GET /volumes/v1", dated(volumeJSON("v1", "pvc-1", "available")))
	s.on("GET /volumes/detail", dated(`{"volumes":[`+inner(volumeJSON("v1", "pvc-1", "available"))+`]}`))
	c, _ := s.client(ExportAuto)
	ctx := context.Background()
	want := time.Date(2026, 11, 24, 21, 20, 17, 0, time.UTC)

	got, err := c.GetVolume(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.FindVolumeByName(ctx, "pvc-1")
	if err != nil {
		t.Fatal(err)
	}
	listed, err := c.ListVolumes(ctx, nil)
	if err != nil || len(listed) != 1 {
		t.Fatalf("list: %v %v", listed, err)
	}
	for what, v := range map[string]time.Time{"get": got.ReadAt, "find": found.ReadAt, "list": listed[0].ReadAt} {
		if !v.Equal(want) {
			t.Errorf("%s: ReadAt %v, want the Date header %v", what, v, want)
		}
	}
	if age, ok := got.Age(); !ok || age != time.Hour {
		t.Errorf("Age() = %v, %v; want 1h by Cinder's clock", age, ok)
	}
}

func TestNoDateHeaderMeansNoAge(t *testing.T) {
	s := newServer(t, "3.70")
	s.on("GET /volumes/v1", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // net/http adds one unless suppressed
		reply(w, 200, volumeJSON("v1", "pvc-1", "available"))
	})
	c, _ := s.client(ExportAuto)
	v, err := c.GetVolume(context.Background(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if age, ok := v.Age(); ok {
		t.Errorf("Age() = %v, true without a Date header; want unknown (treated as young)", age)
	}
}

func TestUpdateVolumeMetadataMergesKeys(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /volumes/v1/metadata", 200, `{"metadata":{"k":"v","cinder.openstack.org/reclaim-policy":"Retain"}}`)
	s.onJSON("POST /volumes/gone/metadata", 404, `{"itemNotFound":{"code":404,"message":"Volume gone could not be found."}}`)
	c, _ := s.client(ExportAuto)
	ctx := context.Background()
	if err := c.UpdateVolumeMetadata(ctx, "v1", map[string]string{"cinder.openstack.org/reclaim-policy": "Retain"}); err != nil {
		t.Fatal(err)
	}
	md, _ := s.body("POST /volumes/v1/metadata", 0)["metadata"].(map[string]any)
	if len(md) != 1 || md["cinder.openstack.org/reclaim-policy"] != "Retain" {
		t.Errorf("body metadata %v, want only the key being set (POST merges; PUT would replace all)", md)
	}
	if err := c.UpdateVolumeMetadata(ctx, "gone", map[string]string{"a": "b"}); !isNotFound(err) {
		t.Errorf("missing volume: %v, want ErrNotFound", err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, cinder.ErrNotFound) }
