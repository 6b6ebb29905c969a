package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// attachmentReply is Cinder's answer to POST /attachments (flattened
// connection_info, attach_mode "ro" although rw was asked: stock behaviour).
const attachmentReply = `{"attachment":{"id":"att-1","status":"reserved","instance":null,"volume_id":"v1","attach_mode":"ro",
 "connection_info":{"target_discovered":false,"target_portal":"127.0.0.1:3260","target_iqn":"iqn.2010-10.org.openstack:volume-v1",
 "target_lun":1,"volume_id":"v1","auth_method":"CHAP","auth_username":"user","auth_password":"pass","encrypted":false,
 "qos_specs":null,"access_mode":"rw","cacheable":false,"driver_volume_type":"iscsi","attachment_id":"att-1"}}}`

// legacyReply is Cinder's answer to os-initialize_connection (nested).
const legacyReply = `{"connection_info":{"driver_volume_type":"iscsi","data":{"target_discovered":false,"target_portal":"127.0.0.1:3260",
 "target_iqn":"iqn.2010-10.org.openstack:volume-v1","target_lun":1,"volume_id":"v1","auth_method":"CHAP","auth_username":"user",
 "auth_password":"pass","encrypted":false,"qos_specs":null,"access_mode":"rw","cacheable":false}}}`

var wantConnection = cinder.Connection{DriverVolumeType: "iscsi", Data: map[string]any{
	"target_discovered": false, "target_portal": "127.0.0.1:3260", "target_iqn": "iqn.2010-10.org.openstack:volume-v1",
	"target_lun": json.Number("1"), "volume_id": "v1", "auth_method": "CHAP", "auth_username": "user", "auth_password": "pass",
	"encrypted": false, "qos_specs": nil, "access_mode": "rw", "cacheable": false,
}}

func TestExportAttachments(t *testing.T) {
	for _, tc := range []struct{ max, mode string }{{"3.70", "rw"}, {"3.50", ""}} {
		t.Run(tc.max, func(t *testing.T) {
			s := newServer(t, tc.max)
			s.onJSON("POST /attachments", 200, attachmentReply)
			s.onJSON("POST /attachments/att-1/action os-complete", 204, "")
			c, reg := s.client(ExportAuto)
			exp, err := c.Export(context.Background(), "v1", testConnector)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"volume_uuid": "v1", "connector": connectorWant}
			if tc.mode != "" {
				want["mode"] = tc.mode
			}
			got := s.body("POST /attachments", 0)["attachment"].(map[string]any)
			if _, ok := got["instance_uuid"]; ok {
				t.Error("attachment create sends instance_uuid")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("attachment body %v\nwant %v", got, want)
			}
			if got := s.body("POST /attachments/att-1/action os-complete", 0); !reflect.DeepEqual(got, map[string]any{"os-complete": nil}) {
				t.Errorf("os-complete body %v", got)
			}
			if exp.Method != cinder.ExportAttachments || exp.ID != "att-1" || !reflect.DeepEqual(exp.Connection, wantConnection) {
				t.Errorf("export %#v\nconnection %v\nwant %v", exp, exp.Connection.Data, wantConnection.Data)
			}
			if want := []string{"POST /attachments", "POST /attachments/att-1/action os-complete"}; !slices.Equal(s.requests(), want) {
				t.Errorf("requests %v, want %v", s.requests(), want)
			}
			if counter(reg, "create_attachment", "success") != 1 || counter(reg, "complete_attachment", "success") != 1 {
				t.Error("attachment calls not counted")
			}
		})
	}
}

func TestExportAttachmentsRollsBackWhenCompleteFails(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /attachments", 200, attachmentReply)
	s.onJSON("POST /attachments/att-1/action os-complete", 500, `{"computeFault":{"code":500,"message":"boom"}}`)
	s.onJSON("DELETE /attachments/att-1", 200, `{"attachments":[]}`)
	c, _ := s.client(ExportAuto)
	_, err := c.Export(context.Background(), "v1", testConnector)
	if !errors.Is(err, cinder.ErrUnavailable) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
	want := []string{"POST /attachments", "POST /attachments/att-1/action os-complete", "DELETE /attachments/att-1"}
	if !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v, want %v", s.requests(), want)
	}
}

func TestExportAttachmentsWithoutDriverTypeIsRolledBack(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("POST /attachments", 200, `{"attachment":{"id":"att-1","connection_info":{}}}`)
	s.onJSON("DELETE /attachments/att-1", 200, `{"attachments":[]}`)
	c, _ := s.client(ExportAuto)
	if _, err := c.Export(context.Background(), "v1", testConnector); err == nil || !strings.Contains(err.Error(), "without driver_volume_type") {
		t.Fatalf("got %v", err)
	}
	if want := []string{"POST /attachments", "DELETE /attachments/att-1"}; !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v, want %v", s.requests(), want)
	}
}

func TestUnexportAttachments(t *testing.T) {
	s := newServer(t, "3.70")
	s.onJSON("DELETE /attachments/att-1", 200, `{"attachments":[]}`)
	s.onJSON("DELETE /attachments/att-gone", 404, `{"itemNotFound":{"code":404,"message":"gone"}}`)
	c, _ := s.client(ExportAuto)
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{ID: "att-1"}, testConnector); err != nil {
		t.Fatal(err)
	}
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{ID: "att-gone"}, testConnector); err != nil {
		t.Fatalf("unexport of a missing attachment: %v, want success", err)
	}
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{}, testConnector); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("empty export id: %v", err)
	}
}

func TestExportRequiresHost(t *testing.T) {
	s := newServer(t, "3.70")
	c, _ := s.client(ExportAuto)
	if _, err := c.Export(context.Background(), "v1", cinder.Connector{Initiator: "iqn.x"}); !errors.Is(err, cinder.ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// legacyServer serves a volume whose attachments appear after os-attach.
func legacyServer(t *testing.T) *server {
	s := newServer(t, "3.70")
	attached := false
	s.on("GET /volumes/v1", func(w http.ResponseWriter, r *http.Request) {
		if attached {
			reply(w, 200, volumeJSON("v1", "pvc-1", "in-use", "other-host=att-old", "node1=att-new"))
			return
		}
		reply(w, 200, volumeJSON("v1", "pvc-1", "available", "other-host=att-old"))
	})
	s.onJSON("POST /volumes/v1/action os-reserve", 202, "")
	s.onJSON("POST /volumes/v1/action os-initialize_connection", 200, legacyReply)
	s.on("POST /volumes/v1/action os-attach", func(w http.ResponseWriter, r *http.Request) {
		attached = true
		reply(w, 202, "")
	})
	s.onJSON("POST /volumes/v1/action os-unreserve", 202, "")
	s.onJSON("POST /volumes/v1/action os-terminate_connection", 202, "")
	s.onJSON("POST /volumes/v1/action os-detach", 202, "")
	s.onJSON("POST /volumes/v1/action os-begin_detaching", 202, "")
	s.onJSON("POST /volumes/v1/action os-roll_detaching", 202, "")
	return s
}

func TestExportLegacy(t *testing.T) {
	s := legacyServer(t)
	c, _ := s.client(ExportLegacy)
	exp, err := c.Export(context.Background(), "v1", testConnector)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /volumes/v1",
		"POST /volumes/v1/action os-reserve",
		"POST /volumes/v1/action os-initialize_connection",
		"POST /volumes/v1/action os-attach",
		"GET /volumes/v1",
	}
	if !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v\nwant %v", s.requests(), want)
	}
	if got := s.body("POST /volumes/v1/action os-initialize_connection", 0); !reflect.DeepEqual(got, map[string]any{"os-initialize_connection": map[string]any{"connector": connectorWant}}) {
		t.Errorf("os-initialize_connection body %v", got)
	}
	wantAttach := map[string]any{"os-attach": map[string]any{"host_name": "node1", "mountpoint": legacyMountpoint, "mode": "rw"}}
	if got := s.body("POST /volumes/v1/action os-attach", 0); !reflect.DeepEqual(got, wantAttach) {
		t.Errorf("os-attach body %v, want %v (no instance_uuid)", got, wantAttach)
	}
	if exp.Method != cinder.ExportLegacy || exp.ID != "att-new" || !reflect.DeepEqual(exp.Connection, wantConnection) {
		t.Errorf("export %#v, want legacy att-new with the normalised connection", exp)
	}
}

func TestExportLegacyRollback(t *testing.T) {
	for _, tc := range []struct {
		failAt string
		undo   []string
	}{
		{"os-reserve", nil},
		{"os-initialize_connection", []string{"os-unreserve"}},
		{"os-attach", []string{"os-terminate_connection", "os-unreserve"}},
	} {
		t.Run(tc.failAt, func(t *testing.T) {
			s := legacyServer(t)
			s.onJSON("POST /volumes/v1/action "+tc.failAt, 500, `{"computeFault":{"code":500,"message":"Unable to fetch connection information from backend."}}`)
			c, _ := s.client(ExportLegacy)
			_, err := c.Export(context.Background(), "v1", testConnector)
			var ce *cinder.Error
			if !errors.Is(err, cinder.ErrUnavailable) || !errors.As(err, &ce) || ce.Message != "Unable to fetch connection information from backend." {
				t.Fatalf("got %v", err)
			}
			var undone []string
			reqs := s.requests()
			i := slices.Index(reqs, "POST /volumes/v1/action "+tc.failAt)
			for _, r := range reqs[i+1:] {
				undone = append(undone, strings.TrimPrefix(r, "POST /volumes/v1/action "))
			}
			if !slices.Equal(undone, tc.undo) {
				t.Errorf("undo %v, want %v (all requests %v)", undone, tc.undo, reqs)
			}
			if tc.failAt == "os-attach" {
				if got := s.body("POST /volumes/v1/action os-terminate_connection", 0); !reflect.DeepEqual(got, map[string]any{"os-terminate_connection": map[string]any{"connector": connectorWant}}) {
					t.Errorf("terminate body %v", got)
				}
			}
		})
	}
}

func TestExportLegacyRollbackSurvivesCancelledContext(t *testing.T) {
	s := legacyServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	s.on("POST /volumes/v1/action os-attach", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		reply(w, 500, `{"computeFault":{"code":500,"message":"x"}}`)
	})
	c, _ := s.client(ExportLegacy)
	if _, err := c.Export(ctx, "v1", testConnector); err == nil {
		t.Fatal("export succeeded")
	}
	reqs := s.requests()
	if want := []string{"POST /volumes/v1/action os-terminate_connection", "POST /volumes/v1/action os-unreserve"}; !slices.Equal(reqs[len(reqs)-2:], want) {
		t.Errorf("requests %v, want the rollback %v at the end", reqs, want)
	}
}

func TestUnexportLegacy(t *testing.T) {
	s := legacyServer(t)
	c, _ := s.client(ExportLegacy)
	if _, err := c.Export(context.Background(), "v1", testConnector); err != nil {
		t.Fatal(err)
	}
	n := len(s.requests())
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{Method: cinder.ExportLegacy, ID: "att-new"}, testConnector); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /volumes/v1",
		"POST /volumes/v1/action os-begin_detaching",
		"POST /volumes/v1/action os-terminate_connection",
		"POST /volumes/v1/action os-detach",
	}
	if got := s.requests()[n:]; !slices.Equal(got, want) {
		t.Errorf("requests %v\nwant %v", got, want)
	}
	if got := s.body("POST /volumes/v1/action os-detach", 0); !reflect.DeepEqual(got, map[string]any{"os-detach": map[string]any{"attachment_id": "att-new"}}) {
		t.Errorf("os-detach body %v", got)
	}
	if got := s.body("POST /volumes/v1/action os-terminate_connection", 0); !reflect.DeepEqual(got, map[string]any{"os-terminate_connection": map[string]any{"connector": connectorWant}}) {
		t.Errorf("terminate body %v", got)
	}
}

func TestUnexportLegacyRollsDetachingBack(t *testing.T) {
	s := legacyServer(t)
	c, _ := s.client(ExportLegacy)
	if _, err := c.Export(context.Background(), "v1", testConnector); err != nil {
		t.Fatal(err)
	}
	s.onJSON("POST /volumes/v1/action os-terminate_connection", 500, `{"computeFault":{"code":500,"message":"target busy"}}`)
	n := len(s.requests())
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{Method: cinder.ExportLegacy, ID: "att-new"}, testConnector); !errors.Is(err, cinder.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	want := []string{"GET /volumes/v1", "POST /volumes/v1/action os-begin_detaching", "POST /volumes/v1/action os-terminate_connection", "POST /volumes/v1/action os-roll_detaching"}
	if got := s.requests()[n:]; !slices.Equal(got, want) {
		t.Errorf("requests %v\nwant %v", got, want)
	}
}

func TestUnexportLegacyAlreadyGone(t *testing.T) {
	s := legacyServer(t)
	s.onJSON("GET /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"gone"}}`)
	c, _ := s.client(ExportLegacy)
	if err := c.Unexport(context.Background(), "gone", cinder.ExportRef{ID: "att-1"}, testConnector); err != nil {
		t.Fatalf("missing volume: %v", err)
	}
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{ID: "att-unknown"}, testConnector); err != nil {
		t.Fatalf("missing attachment: %v", err)
	}
	if want := []string{"GET /volumes/gone", "GET /volumes/v1"}; !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v, want only the lookups", s.requests())
	}
}

func TestUnexportLegacyInterruptedExport(t *testing.T) {
	s := legacyServer(t)
	s.onJSON("GET /volumes/v1", 200, volumeJSON("v1", "pvc-1", "attaching"))
	c, _ := s.client(ExportLegacy)
	if err := c.Unexport(context.Background(), "v1", cinder.ExportRef{ID: "att-never-recorded"}, testConnector); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /volumes/v1", "POST /volumes/v1/action os-terminate_connection", "POST /volumes/v1/action os-unreserve"}
	if !slices.Equal(s.requests(), want) {
		t.Errorf("requests %v\nwant %v", s.requests(), want)
	}
}

func TestNormalise(t *testing.T) {
	nested := map[string]any{"driver_volume_type": "rbd", "data": map[string]any{"name": "volumes/volume-1", "keyring": "k"}}
	flat := map[string]any{"driver_volume_type": "rbd", "attachment_id": "a1", "name": "volumes/volume-1", "keyring": "k"}
	cn, id := normalise(nested)
	cf, idf := normalise(flat)
	if !reflect.DeepEqual(cn, cf) || id != "" || idf != "a1" || cn.DriverVolumeType != "rbd" || len(cn.Data) != 2 {
		t.Errorf("nested %v %q, flat %v %q", cn.Data, id, cf.Data, idf)
	}
}

func TestExportLegacyFindsItsAttachmentUnderCindersHostName(t *testing.T) {
	s := legacyServer(t)
	attached := false
	s.on("GET /volumes/v1", func(w http.ResponseWriter, r *http.Request) {
		if attached {
			// attach_volume records sanitize_hostname(host_name).
			reply(w, 200, volumeJSON("v1", "pvc-1", "in-use", "other-host=att-old", "worker-1.example=att-new"))
			return
		}
		reply(w, 200, volumeJSON("v1", "pvc-1", "available", "other-host=att-old"))
	})
	s.on("POST /volumes/v1/action os-attach", func(w http.ResponseWriter, r *http.Request) {
		attached = true
		reply(w, 202, "")
	})
	c, _ := s.client(ExportLegacy)
	cn := testConnector
	cn.Host = "Worker_1.Example."
	exp, err := c.Export(context.Background(), "v1", cn)
	if err != nil || exp.ID != "att-new" {
		t.Fatalf("export %+v, %v; want att-new", exp, err)
	}
}

func TestSanitizeHostname(t *testing.T) {
	for in, want := range map[string]string{
		"node1":             "node1",
		"Worker_1.Example.": "worker-1.example",
		"-a b!c-":           "a-bc",
		"caf\u00e9\u4e16":   "caf\u00e9",
	} {
		if got := sanitizeHostname(in); got != want {
			t.Errorf("sanitizeHostname(%q) = %q, want %q", in, got, want)
		}
	}
}
