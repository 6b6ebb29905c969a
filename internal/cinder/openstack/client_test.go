package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestNegotiation(t *testing.T) {
	for _, tc := range []struct {
		max, setting string
		wantMethod   cinder.ExportMethod
		wantMV       string
		wantErr      string
	}{
		{max: "3.70", setting: "", wantMethod: cinder.ExportAttachments, wantMV: "3.54"},
		{max: "3.70", setting: ExportAuto, wantMethod: cinder.ExportAttachments, wantMV: "3.54"},
		{max: "3.50", setting: ExportAuto, wantMethod: cinder.ExportAttachments, wantMV: "3.44"},
		{max: "3.27", setting: ExportAuto, wantMethod: cinder.ExportLegacy, wantMV: "3.0"},
		{max: "3.70", setting: ExportLegacy, wantMethod: cinder.ExportLegacy, wantMV: "3.54"},
		{max: "3.27", setting: ExportAttachments, wantErr: "export method attachments needs microversion 3.44, cinder offers up to 3.27"},
	} {
		t.Run(tc.max+"-"+tc.setting, func(t *testing.T) {
			s := newServer(t, tc.max)
			c, err := New(context.Background(), Options{Config: s.noauthConfig(), ExportMethod: tc.setting})
			if tc.wantErr != "" {
				if !errors.Is(err, cinder.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want ErrInvalid saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ExportMethod() != tc.wantMethod || c.Microversion() != tc.wantMV {
				t.Errorf("method %s microversion %s, want %s %s", c.ExportMethod(), c.Microversion(), tc.wantMethod, tc.wantMV)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(context.Background(), Options{Config: Config{CinderEndpoint: "http://x/v3/"}, ExportMethod: "magic"})
	if err == nil || !strings.Contains(err.Error(), `export method "magic"`) {
		t.Fatalf("got %v", err)
	}
}

func TestNoauthEndpointWithProjectAlreadyAppended(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /volumes/v1", 200, volumeJSON("v1", "pvc-1", "available"))
	cfg := s.noauthConfig()
	cfg.CinderEndpoint += testProject
	c, err := New(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetVolume(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}
}

func TestCreateVolume(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /volumes", 202, volumeJSON("v1", "pvc-1", "creating"))
	c, reg := s.client(ExportAuto)
	v, err := c.CreateVolume(context.Background(), cinder.CreateRequest{
		Name: "pvc-1", SizeGiB: 3, VolumeType: "tgtfile", AvailabilityZone: "nova", Description: "d",
		Metadata: map[string]string{"cinder.openstack.org/pv": "pvc-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"volume": map[string]any{
		"name": "pvc-1", "size": 3.0, "volume_type": "tgtfile", "availability_zone": "nova", "description": "d",
		"metadata": map[string]any{"cinder.openstack.org/pv": "pvc-1"},
	}}
	if got := s.body("POST /volumes", 0); !reflect.DeepEqual(got, want) {
		t.Errorf("body %v\nwant %v", got, want)
	}
	if v.ID != "v1" || v.Status != "creating" || v.SizeGiB != 1 || v.VolumeType != "tgtfile" || v.Metadata["k"] != "v" || v.CreatedAt.IsZero() {
		t.Errorf("volume %+v", v)
	}
	if n := counter(reg, "create_volume", "success"); n != 1 {
		t.Errorf("create_volume success = %v, want 1", n)
	}

	// Minimal request: optional fields are not sent.
	if _, err := c.CreateVolume(context.Background(), cinder.CreateRequest{Name: "pvc-2", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := s.body("POST /volumes", 1), map[string]any{"volume": map[string]any{"name": "pvc-2", "size": 1.0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("minimal body %v, want %v", got, want)
	}
	if _, err := c.CreateVolume(context.Background(), cinder.CreateRequest{Name: "pvc-3"}); !errors.Is(err, cinder.ErrInvalid) {
		t.Errorf("size 0: %v, want ErrInvalid without a request", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestFindVolumeByName(t *testing.T) {
	s := newServer(t, "3.70")
	lists := map[string]string{
		"pvc-1": `{"volumes":[` + inner(volumeJSON("v1", "pvc-1", "available")) + `,` + inner(volumeJSON("v9", "pvc-10", "available")) + `]}`,
		"pvc-2": `{"volumes":[]}`,
		"pvc-3": `{"volumes":[` + inner(strings.Replace(volumeJSON("vb", "pvc-3", "available"), "20:20:17", "20:20:18", 1)) + `,` + inner(volumeJSON("va", "pvc-3", "available")) + `]}`,
	}
	s.on("GET /volumes/detail", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, lists[r.URL.Query().Get("name")])
	})
	c, _ := s.client(ExportAuto)
	ctx := context.Background()
	v, err := c.FindVolumeByName(ctx, "pvc-1")
	if err != nil || v.ID != "v1" {
		t.Fatalf("pvc-1: %+v %v; want v1 (pvc-10 is a loose server match)", v, err)
	}
	if _, err := c.FindVolumeByName(ctx, "pvc-2"); !errors.Is(err, cinder.ErrNotFound) {
		t.Fatalf("pvc-2: %v, want ErrNotFound", err)
	}
	_, err = c.FindVolumeByName(ctx, "pvc-3")
	var dup *cinder.DuplicateNameError
	if !errors.As(err, &dup) || !slices.Equal(dup.IDs, []string{"va", "vb"}) {
		t.Fatalf("pvc-3: %v, want duplicates [va vb] oldest first", err)
	}
}

func inner(volumeDoc string) string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal([]byte(volumeDoc), &m)
	return string(m["volume"])
}

func TestListVolumesByMetadata(t *testing.T) {
	s := newServer(t, "3.70")
	var query string
	s.on("GET /volumes/detail", func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Query().Get("metadata")
		reply(w, 200, `{"volumes":[`+inner(volumeJSON("v1", "a", "available"))+`,`+inner(strings.Replace(volumeJSON("v2", "b", "available"), `"k":"v"`, `"k":"other"`, 1))+`]}`)
	})
	c, _ := s.client(ExportAuto)
	vols, err := c.ListVolumes(context.Background(), map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if query != "{'k':'v'}" {
		t.Errorf("metadata query %q", query)
	}
	if len(vols) != 1 || vols[0].ID != "v1" {
		t.Errorf("got %v, want only v1 (v2's metadata differs)", vols)
	}
}

func TestDeleteVolume(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("DELETE /volumes/v1", 202, "")
	s.onJSON("DELETE /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"Volume gone could not be found."}}`)
	s.onJSON("DELETE /volumes/busy", 400, `{"badRequest":{"code":400,"message":"Invalid volume: Volume status must be available or error"}}`)
	c, reg := s.client(ExportAuto)
	ctx := context.Background()
	if err := c.DeleteVolume(ctx, "v1"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := c.DeleteVolume(ctx, "gone"); err != nil {
		t.Errorf("delete of a missing volume: %v, want success", err)
	}
	err := c.DeleteVolume(ctx, "busy")
	var ce *cinder.Error
	if !errors.Is(err, cinder.ErrInvalid) || !errors.As(err, &ce) || ce.Message != "Invalid volume: Volume status must be available or error" {
		t.Errorf("delete of a busy volume: %v", err)
	}
	if counter(reg, "delete_volume", "not_found") != 1 || counter(reg, "delete_volume", "invalid") != 1 || counter(reg, "delete_volume", "success") != 1 {
		t.Error("delete_volume outcomes not counted")
	}
}

// TestDeleteVolumeAlreadyDeletingIsInvalid: Cinder 21 refuses DELETE of a
// deleting volume with 400 InvalidVolume (volume/api.py delete: the
// conditional update expects available, error, ...); the caller reads the
// status and waits, so the answer stays ErrInvalid with Cinder's message and
// the request is sent once.
func TestDeleteVolumeAlreadyDeletingIsInvalid(t *testing.T) {
	const msg = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing " +
		"and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer."
	s := newServer(t, "3.70")
	s.onJSON("DELETE /volumes/v1", 400, `{"badRequest":{"code":400,"message":"`+msg+`"}}`)
	c, _ := s.client(ExportAuto)
	err := c.DeleteVolume(context.Background(), "v1")
	var ce *cinder.Error
	if !errors.Is(err, cinder.ErrInvalid) || !errors.As(err, &ce) || ce.Message != msg || ce.Volume != "v1" {
		t.Fatalf("got %v, want ErrInvalid with Cinder's message", err)
	}
	if want := []string{"DELETE /volumes/v1"}; !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v, want %v", s.requests(), want)
	}
}

func TestWaitForVolume(t *testing.T) {
	s := newServer(t, "3.70")
	seq := []string{"creating", "creating", "available"}
	n := 0
	s.on("GET /volumes/v1", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, volumeJSON("v1", "pvc-1", seq[min(n, len(seq)-1)]))
		n++
	})
	s.on("GET /volumes/bad", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, volumeJSON("bad", "pvc-2", "error")) })
	s.onJSON("GET /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"gone"}}`)
	c, _ := s.client(ExportAuto)
	ctx := context.Background()
	v, err := c.WaitForVolumeStatus(ctx, "v1", cinder.StatusAvailable)
	if err != nil || v.Status != "available" || n != 3 {
		t.Fatalf("got %+v %v after %d polls", v, err, n)
	}
	_, err = c.WaitForVolumeStatus(ctx, "bad", cinder.StatusAvailable)
	var vse *cinder.VolumeStatusError
	if !errors.As(err, &vse) || vse.Status != "error" || !errors.Is(err, cinder.ErrVolumeError) {
		t.Fatalf("error volume: %v", err)
	}
	if err := c.WaitForVolumeDeleted(ctx, "gone"); err != nil {
		t.Fatalf("wait deleted: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		kind    error
		outcome string
		message string
	}{
		{400, `{"badRequest":{"code":400,"message":"Invalid input received: size must be > 0"}}`, cinder.ErrInvalid, "invalid", "Invalid input received: size must be > 0"},
		{401, `{"error":{"message":"The request you have made requires authentication.","code":401}}`, cinder.ErrUnauthorized, "error", "The request you have made requires authentication."},
		{403, `{"forbidden":{"code":403,"message":"Policy doesn't allow volume:create"}}`, cinder.ErrUnauthorized, "error", "Policy doesn't allow volume:create"},
		{404, `{"itemNotFound":{"code":404,"message":"Volume v1 could not be found."}}`, cinder.ErrNotFound, "not_found", "Volume v1 could not be found."},
		{409, `{"conflictingRequest":{"code":409,"message":"Volume is already attached"}}`, cinder.ErrConflict, "conflict", "Volume is already attached"},
		{413, `{"overLimit":{"message":"VolumeLimitExceeded: Maximum number of volumes allowed (0) exceeded for quota 'volumes'.","code":413,"retryAfter":"0"}}`, cinder.ErrQuotaExceeded, "quota", "VolumeLimitExceeded: Maximum number of volumes allowed (0) exceeded for quota 'volumes'."},
		{500, `{"computeFault":{"code":500,"message":"Unable to fetch connection information from backend."}}`, cinder.ErrUnavailable, "unavailable", "Unable to fetch connection information from backend."},
		{503, `<html><body>Service Unavailable</body></html>`, cinder.ErrUnavailable, "unavailable", ""},
		{429, `{"message":"slow down"}`, cinder.ErrUnavailable, "unavailable", "slow down"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s := newServer(t, "3.70")
			s.onJSON("GET /volumes/v1", tc.status, tc.body)
			c, reg := s.client(ExportAuto)
			c.sc.MaxBackoffRetries = 1
			_, err := c.GetVolume(context.Background(), "v1")
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want %v", err, tc.kind)
			}
			var ce *cinder.Error
			if !errors.As(err, &ce) || ce.Message != tc.message || ce.Op != "get volume" || ce.Volume != "v1" {
				t.Fatalf("error %+v, want message %q", ce, tc.message)
			}
			for _, leak := range []string{s.Server.URL, "http", "Expected HTTP response code", "X-Auth"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q leaks %q", err, leak)
				}
			}
			if n := counter(reg, "get_volume", tc.outcome); n != 1 {
				t.Errorf("get_volume %s = %v, want 1", tc.outcome, n)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	s := newServer(t, "3.70")
	c, reg := s.client(ExportAuto)
	s.Server.Close() // nothing listens any more
	_, err := c.GetVolume(context.Background(), "v1")
	if !errors.Is(err, cinder.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want ErrUnavailable saying connection refused", err)
	}
	if strings.Contains(err.Error(), "/v3/") {
		t.Errorf("error %q shows the URL", err)
	}
	if counter(reg, "get_volume", "unavailable") != 1 {
		t.Error("unavailable outcome not counted")
	}
}

func TestContextCancelledRequest(t *testing.T) {
	s := newServer(t, "3.70")
	c, _ := s.client(ExportAuto)
	ctx, cancel := context.WithCancel(context.Background())
	s.on("GET /volumes/v1", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	_, err := c.GetVolume(ctx, "v1")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("got %v, want context.Canceled and ErrUnavailable", err)
	}
}

func TestServiceInfo(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /types", 200, `{"volume_types":[{"id":"t1","name":"tgtfile","description":"iscsi","is_public":true,"os-volume-type-access:is_public":true},{"id":"t2","name":"nfs","is_public":false,"description":null}]}`)
	c, _ := s.client(ExportAuto)
	info, err := c.ServiceInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &cinder.ServiceInfo{
		Endpoint: s.Server.URL + volPath + "/", AuthMode: "noauth", APIVersion: "v3.0", MinMicroversion: "3.0", MaxMicroversion: "3.70",
		Microversion: "3.54", ExportMethod: cinder.ExportAttachments,
		VolumeTypes: []cinder.VolumeType{{ID: "t1", Name: "tgtfile", Description: "iscsi", IsPublic: true}, {ID: "t2", Name: "nfs", IsPublic: false}},
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("got %+v\nwant %+v", info, want)
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("GET /volumes/v1", 200, volumeJSON("v1", "a", "available"))
	c1, reg := s.client(ExportAuto)
	c2, err := New(context.Background(), Options{Config: s.noauthConfig(), Registerer: reg})
	if err != nil {
		t.Fatalf("second client on one registry: %v", err)
	}
	for _, c := range []*Client{c1, c2} {
		if _, err := c.GetVolume(context.Background(), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := counter(reg, "get_volume", "success"); n != 2 {
		t.Errorf("get_volume success = %v, want 2", n)
	}
	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !slices.Contains(names, metricDuration) || !slices.Contains(names, metricRequests) {
		t.Errorf("registered metrics %v", names)
	}
}

func TestEveryRequestIsCountedForTheCallersCounter(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /volumes", 202, volumeJSON("v1", "pvc-1", "creating"))
	s.onJSON("GET /volumes/v1", 200, volumeJSON("v1", "pvc-1", "available"))
	c, _ := s.client(ExportAuto)
	ctx, counter := cinder.WithCallCounter(context.Background())
	if _, err := c.CreateVolume(ctx, cinder.CreateRequest{Name: "pvc-1", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetVolume(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	// a request outside the counter's context is not its
	if _, err := c.GetVolume(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}
	if n := counter.Calls(); n != 2 {
		t.Errorf("counted %d requests, want 2 (create and one get)", n)
	}
}

// TestWaitsShareOneListInTheirScope: with a WaitScope, a wait polls with a
// list of the scope's volumes in the statuses it expects (a Python list
// literal, which Cinder turns into an SQL IN), never with GET; a volume the
// list misses is confirmed with one GET (404: deleted).
func TestWaitsShareOneListInTheirScope(t *testing.T) {
	s := newServer(t, "3.70")
	var queries []url.Values
	n := 0
	s.on("GET /volumes/detail", func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Query())
		status := []string{"creating", "available"}[min(n, 1)]
		n++
		reply(w, 200, `{"volumes":[`+inner(volumeJSON("v1", "pvc-1", status))+`]}`)
	})
	s.onJSON("GET /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"gone"}}`)
	reg := prometheus.NewRegistry()
	c, err := New(context.Background(), Options{Config: s.noauthConfig(), Registerer: reg, Backoff: fastBackoff, WaitScope: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	s.wantMV = c.Microversion()
	ctx := context.Background()
	v, err := c.WaitForVolumeStatus(ctx, "v1", cinder.StatusAvailable)
	if err != nil || v.Status != cinder.StatusAvailable || v.ReadAt.IsZero() {
		t.Fatalf("wait: %+v %v", v, err)
	}
	if err := c.WaitForVolumeDeleted(ctx, "gone"); err != nil {
		t.Fatalf("wait deleted: %v", err)
	}
	if len(queries) != 3 {
		t.Fatalf("%d lists, want 3 (creating, available, the deleted volume's round)", len(queries))
	}
	if got := queries[0].Get("status"); got != "['available','creating','downloading','error','error_extending','extending']" {
		t.Errorf("status filter %q", got)
	}
	if got := queries[0].Get("metadata"); got != "{'k':'v'}" {
		t.Errorf("metadata filter %q", got)
	}
	if got := queries[2].Get("status"); got != "['deleting','error_deleting']" {
		t.Errorf("deletion status filter %q", got)
	}
	for _, r := range s.requests() {
		if r == "GET /volumes/v1" {
			t.Errorf("a wait in the scope polled with GET: %v", s.requests())
		}
	}
	if counter(reg, "get_volume", "not_found") != 1 {
		t.Error("the volume missing from the list was not confirmed with one GET")
	}
}
