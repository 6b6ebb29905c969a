package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// fakeRecord is one attachment record of the fake Cinder.
type fakeRecord struct {
	id, status, host string
	volume           string // "" means v1
	conn             bool   // holds connection_info: made by the attachments API with a connector
	at               string // attach_time; "" for reserved
}

// fakeCinder is volume v1 and its attachment records on top of server,
// changed by the calls the way Cinder 21 changes them (volume/api.py,
// db/sqlalchemy/api.py _get_statuses_from_attachments).
type fakeCinder struct {
	*server
	mu       sync.Mutex
	status   string
	recs     []fakeRecord // creation order, which Cinder's sort returns
	pageSize int          // Cinder's osapi_max_limit
	queries  []url.Values // of GET /attachments/detail
	// ignoreFilter answers the attachment list with every record, like a
	// server that dropped the volume_id filter.
	ignoreFilter bool
	afterDelete  func(f *fakeCinder) // runs, locked, after DELETE /attachments/{id}
}

func newFakeCinder(t *testing.T, max, status string, recs ...fakeRecord) *fakeCinder {
	t.Helper()
	f := &fakeCinder{server: newServer(t, max), status: status, recs: recs, pageSize: 1000}
	f.on("GET /volumes/v1", f.getVolume)
	f.onJSON("GET /volumes/gone", 404, `{"itemNotFound":{"code":404,"message":"Volume gone could not be found."}}`)
	f.on("GET /attachments/detail", f.listDetail)
	for _, r := range recs {
		f.on("DELETE /attachments/"+r.id, f.deleteAttachment(r.id))
	}
	f.on("POST /volumes/v1/action os-roll_detaching", f.action(func() int {
		if f.status == cinder.StatusDetaching {
			f.status = cinder.StatusInUse
		}
		return 202
	}))
	f.on("POST /volumes/v1/action os-begin_detaching", f.action(func() int {
		if f.status != cinder.StatusInUse {
			return 400
		}
		f.status = cinder.StatusDetaching
		return 202
	}))
	f.on("POST /volumes/v1/action os-terminate_connection", f.action(func() int { f.unreserve(); return 202 }))
	f.on("POST /volumes/v1/action os-unreserve", f.action(func() int { f.unreserve(); return 202 }))
	f.on("POST /volumes/v1/action os-detach", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		id, _ := f.lastBody("POST /volumes/v1/action os-detach")["os-detach"].(map[string]any)["attachment_id"].(string)
		f.remove(id)
		reply(w, 202, "")
	})
	return f
}

func (f *fakeCinder) action(fn func() int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if code := fn(); code != 202 {
			reply(w, code, `{"badRequest":{"code":400,"message":"Invalid volume: wrong status"}}`)
			return
		}
		reply(w, 202, "")
	}
}

func (f *fakeCinder) lastBody(key string) map[string]any {
	b := f.bodiesOf(key)
	return b[len(b)-1]
}

func (f *fakeCinder) bodiesOf(key string) []map[string]any {
	f.server.mu.Lock()
	defer f.server.mu.Unlock()
	return slices.Clone(f.bodies[key])
}

func (f *fakeCinder) own() []fakeRecord {
	var out []fakeRecord
	for _, r := range f.recs {
		if r.volume == "" {
			out = append(out, r)
		}
	}
	return out
}

// unreserve is volume/api.py unreserve_volume: attaching -> in-use or
// available.
func (f *fakeCinder) unreserve() {
	if f.status != cinder.StatusAttaching {
		return
	}
	f.status = cinder.StatusAvailable
	if len(f.own()) > 0 {
		f.status = cinder.StatusInUse
	}
}

// remove is volume_detached: drop the record, status from the others.
func (f *fakeCinder) remove(id string) bool {
	i := slices.IndexFunc(f.recs, func(r fakeRecord) bool { return r.id == id })
	if i < 0 {
		return false
	}
	f.recs = slices.Delete(f.recs, i, i+1)
	best := ""
	for _, r := range f.own() {
		if !strings.HasPrefix(r.status, "error_") && (best == "" || r.status < best) {
			best = r.status
		}
	}
	switch best {
	case "":
		f.status = cinder.StatusAvailable
	case cinder.AttachAttached:
		f.status = cinder.StatusInUse
	default:
		f.status = best
	}
	return true
}

func (f *fakeCinder) getVolume(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var atts []string
	for _, a := range f.own() {
		if a.status == cinder.AttachAttached {
			atts = append(atts, fmt.Sprintf(`{"id":"v1","attachment_id":%q,"volume_id":"v1","server_id":null,"host_name":%q,"device":"/dev/cinder-provisioner","attached_at":%q}`, a.id, a.host, a.at))
		}
	}
	reply(w, 200, fmt.Sprintf(`{"volume":{"id":"v1","name":"pvc-1","status":%q,"size":1,"multiattach":true,"metadata":{},"created_at":"2026-11-24T20:20:17.000000","attachments":[%s]}}`,
		f.status, strings.Join(atts, ",")))
}

func (f *fakeCinder) listDetail(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	f.queries = append(f.queries, q)
	var recs []fakeRecord
	for _, a := range f.recs {
		if f.ignoreFilter || a.volume == "" && q.Get("volume_id") == "v1" {
			recs = append(recs, a)
		}
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(recs, func(r fakeRecord) bool { return r.id == m })
		if i < 0 {
			reply(w, 404, `{"itemNotFound":{"code":404,"message":"VolumeAttachment `+m+` could not be found."}}`)
			return
		}
		recs = recs[i+1:]
	}
	recs = recs[:min(len(recs), f.pageSize)]
	var items []string
	for _, a := range recs {
		conn := "null"
		if a.conn {
			conn = fmt.Sprintf(`{"driver_volume_type":"iscsi","target_portal":"127.0.0.1:3260","auth_password":"secret","attachment_id":%q}`, a.id)
		}
		vol := a.volume
		if vol == "" {
			vol = "v1"
		}
		items = append(items, fmt.Sprintf(`{"id":%q,"status":%q,"instance":null,"volume_id":%q,"attached_at":%q,"detached_at":"","attach_mode":"rw","connection_info":%s}`,
			a.id, a.status, vol, a.at, conn))
	}
	reply(w, 200, `{"attachments":[`+strings.Join(items, ",")+`]}`)
}

func (f *fakeCinder) deleteAttachment(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.remove(id) {
			reply(w, 404, `{"itemNotFound":{"code":404,"message":"VolumeAttachment could not be found."}}`)
			return
		}
		if f.afterDelete != nil {
			f.afterDelete(f)
		}
		reply(w, 200, `{"attachments":[]}`)
	}
}

func (f *fakeCinder) volumeStatus() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

const (
	listPage   = "GET /attachments/detail"
	getV1      = "GET /volumes/v1"
	rollDetach = "POST /volumes/v1/action os-roll_detaching"
	beginDet   = "POST /volumes/v1/action os-begin_detaching"
	terminate  = "POST /volumes/v1/action os-terminate_connection"
	detachV1   = "POST /volumes/v1/action os-detach"
	unreserve  = "POST /volumes/v1/action os-unreserve"
)

func TestListExports(t *testing.T) {
	reserved := fakeRecord{id: "att-r", status: cinder.AttachReserved}
	attached := fakeRecord{id: "att-a", status: cinder.AttachAttached, host: "node1", conn: true, at: "2026-11-24T20:21:00.000000"}
	attaching := fakeRecord{id: "att-i", status: cinder.AttachAttaching, conn: true, at: "2026-11-24T20:22:00.000000"}
	for _, tc := range []struct {
		name         string
		max          string
		recs         []fakeRecord
		pageSize     int
		ignoreFilter bool
		want         []cinder.Attachment
		wantReqs     []string
		wantMarkers  []string // of the attachment list pages
	}{
		{
			name: "attachments API lists every status oldest first with the hosts of attached ones",
			max:  "3.70", recs: []fakeRecord{reserved, attached, attaching},
			want: []cinder.Attachment{
				{ID: "att-r", Status: cinder.AttachReserved},
				{ID: "att-a", Status: cinder.AttachAttached, Host: "node1"},
				{ID: "att-i", Status: cinder.AttachAttaching},
			},
			wantReqs:    []string{getV1, listPage, listPage},
			wantMarkers: []string{"", "att-i"},
		},
		{
			name: "pages are followed by marker until one brings nothing",
			max:  "3.70", recs: []fakeRecord{reserved, attached, attaching}, pageSize: 2,
			want: []cinder.Attachment{
				{ID: "att-r", Status: cinder.AttachReserved},
				{ID: "att-a", Status: cinder.AttachAttached, Host: "node1"},
				{ID: "att-i", Status: cinder.AttachAttaching},
			},
			wantReqs:    []string{getV1, listPage, listPage, listPage},
			wantMarkers: []string{"", "att-a", "att-i"},
		},
		{
			name: "records of other volumes are dropped whatever the server filtered",
			max:  "3.70", recs: []fakeRecord{{id: "att-other", status: cinder.AttachAttached, volume: "v2", conn: true}, reserved},
			ignoreFilter: true,
			want:         []cinder.Attachment{{ID: "att-r", Status: cinder.AttachReserved}},
			wantReqs:     []string{getV1, listPage, listPage},
			wantMarkers:  []string{"", "att-r"},
		},
		{
			name: "no export is one empty page",
			max:  "3.70",
			want: []cinder.Attachment{}, wantReqs: []string{getV1, listPage}, wantMarkers: []string{""},
		},
		{
			name: "below 3.27 the volume view lists attached ones only, by attach time then id",
			max:  "3.20",
			recs: []fakeRecord{
				reserved,
				{id: "att-b", status: cinder.AttachAttached, host: "node2", at: "2026-11-24T20:21:00.000000"},
				{id: "att-a", status: cinder.AttachAttached, host: "node1", at: "2026-11-24T20:21:00.000000"},
				{id: "att-c", status: cinder.AttachAttached, host: "node3", at: "2026-11-24T20:20:00.000000"},
			},
			want: []cinder.Attachment{
				{ID: "att-c", Status: cinder.AttachAttached, Host: "node3"},
				{ID: "att-a", Status: cinder.AttachAttached, Host: "node1"},
				{ID: "att-b", Status: cinder.AttachAttached, Host: "node2"},
			},
			wantReqs: []string{getV1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCinder(t, tc.max, cinder.StatusInUse, tc.recs...)
			if tc.pageSize > 0 {
				f.pageSize = tc.pageSize
			}
			f.ignoreFilter = tc.ignoreFilter
			c, reg := f.client(ExportAuto)
			got, err := c.ListExports(context.Background(), "v1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("exports %+v\nwant %+v", got, tc.want)
			}
			if !slices.Equal(f.requests(), tc.wantReqs) {
				t.Errorf("requests %v\nwant %v", f.requests(), tc.wantReqs)
			}
			var markers []string
			for _, q := range f.queries {
				markers = append(markers, q.Get("marker"))
				if q.Get("volume_id") != "v1" || q.Get("sort") != "created_at:asc,id:asc" || q.Has("all_tenants") {
					t.Errorf("attachment list query %v, want volume_id=v1 sort=created_at:asc,id:asc", q)
				}
			}
			if !slices.Equal(markers, tc.wantMarkers) {
				t.Errorf("markers %q, want %q", markers, tc.wantMarkers)
			}
			if n := counter(reg, "list_attachments", "success"); n != float64(len(tc.wantMarkers)) {
				t.Errorf("list_attachments counted %v times, want %d", n, len(tc.wantMarkers))
			}
		})
	}
}

func TestListExportsErrors(t *testing.T) {
	t.Run("missing volume is not found without listing attachments", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusAvailable)
		c, _ := f.client(ExportAuto)
		if _, err := c.ListExports(context.Background(), "gone"); !errors.Is(err, cinder.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		if want := []string{"GET /volumes/gone"}; !slices.Equal(f.requests(), want) {
			t.Errorf("requests %v, want %v", f.requests(), want)
		}
	})
	t.Run("a marker deleted between pages is a conflict to retry", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusInUse, fakeRecord{id: "att-1", status: cinder.AttachReserved}, fakeRecord{id: "att-2", status: cinder.AttachReserved})
		f.pageSize = 1
		first := f.handlers[listPage]
		calls := 0
		f.on(listPage, func(w http.ResponseWriter, r *http.Request) {
			calls++
			if calls == 2 {
				f.mu.Lock()
				f.remove("att-1")
				f.mu.Unlock()
			}
			first(w, r)
		})
		c, _ := f.client(ExportAuto)
		_, err := c.ListExports(context.Background(), "v1")
		if !errors.Is(err, cinder.ErrConflict) || errors.Is(err, cinder.ErrNotFound) {
			t.Fatalf("got %v, want ErrConflict only", err)
		}
	})
	t.Run("empty volume id sends nothing", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusAvailable)
		c, _ := f.client(ExportAuto)
		if _, err := c.ListExports(context.Background(), ""); !errors.Is(err, cinder.ErrInvalid) {
			t.Fatalf("got %v", err)
		}
		if len(f.requests()) != 0 {
			t.Errorf("requests %v", f.requests())
		}
	})
}

func TestClearExports(t *testing.T) {
	apiAttached := fakeRecord{id: "att-1", status: cinder.AttachAttached, host: "node1", conn: true, at: "2026-11-24T20:21:00.000000"}
	legacyAttached := fakeRecord{id: "att-1", status: cinder.AttachAttached, host: "node1", at: "2026-11-24T20:21:00.000000"}
	for _, tc := range []struct {
		name    string
		max     string
		status  string
		recs    []fakeRecord
		want    []string // requests
		deleted []string // attachment ids deleted, in order
		detach  []string // os-detach attachment ids, in order
	}{
		{
			name: "reserved record of a failed create is deleted", max: "3.70", status: cinder.StatusReserved,
			recs:    []fakeRecord{{id: "att-1", status: cinder.AttachReserved}},
			want:    []string{getV1, listPage, listPage, "DELETE /attachments/att-1", getV1},
			deleted: []string{"att-1"},
		},
		{
			name: "attaching record of an export never completed is deleted", max: "3.70", status: cinder.StatusAttaching,
			recs:    []fakeRecord{{id: "att-1", status: cinder.AttachAttaching, conn: true, at: "2026-11-24T20:21:00.000000"}},
			want:    []string{getV1, listPage, listPage, "DELETE /attachments/att-1", getV1},
			deleted: []string{"att-1"},
		},
		{
			name: "attaching without record (legacy os-reserve) is terminated and unreserved", max: "3.70", status: cinder.StatusAttaching,
			want: []string{getV1, listPage, terminate, unreserve, getV1},
		},
		{
			name: "in-use with an attachments-API export deletes the attachment", max: "3.70", status: cinder.StatusInUse,
			recs:    []fakeRecord{apiAttached},
			want:    []string{getV1, listPage, listPage, "DELETE /attachments/att-1", getV1},
			deleted: []string{"att-1"},
		},
		{
			name: "in-use with a legacy os-attach record gets the legacy teardown", max: "3.70", status: cinder.StatusInUse,
			recs:   []fakeRecord{legacyAttached},
			want:   []string{getV1, listPage, listPage, getV1, beginDet, terminate, detachV1, getV1},
			detach: []string{"att-1"},
		},
		{
			name: "detaching is rolled back before the legacy teardown", max: "3.70", status: cinder.StatusDetaching,
			recs:   []fakeRecord{legacyAttached},
			want:   []string{getV1, rollDetach, listPage, listPage, getV1, beginDet, terminate, detachV1, getV1},
			detach: []string{"att-1"},
		},
		{
			name: "every export goes, oldest first", max: "3.70", status: cinder.StatusInUse,
			recs: []fakeRecord{apiAttached, {id: "att-2", status: cinder.AttachReserved}, {id: "att-3", status: "error_attaching"}},
			want: []string{getV1, listPage, listPage,
				"DELETE /attachments/att-1", "DELETE /attachments/att-2", "DELETE /attachments/att-3", getV1},
			deleted: []string{"att-1", "att-2", "att-3"},
		},
		{
			name: "already available costs only the reads", max: "3.70", status: cinder.StatusAvailable,
			want: []string{getV1, listPage},
		},
		{
			name: "below 3.27 in-use gets the legacy teardown", max: "3.20", status: cinder.StatusInUse,
			recs:   []fakeRecord{legacyAttached},
			want:   []string{getV1, getV1, beginDet, terminate, detachV1, getV1},
			detach: []string{"att-1"},
		},
		{
			name: "below 3.27 detaching is rolled back first", max: "3.20", status: cinder.StatusDetaching,
			recs:   []fakeRecord{legacyAttached},
			want:   []string{getV1, rollDetach, getV1, beginDet, terminate, detachV1, getV1},
			detach: []string{"att-1"},
		},
		{
			name: "below 3.27 attaching without record is terminated and unreserved", max: "3.20", status: cinder.StatusAttaching,
			want: []string{getV1, terminate, unreserve, getV1},
		},
		{
			name: "below 3.27 already available costs one read", max: "3.20", status: cinder.StatusAvailable,
			want: []string{getV1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCinder(t, tc.max, tc.status, tc.recs...)
			c, reg := f.client(ExportAuto)
			v, err := c.ClearExports(context.Background(), "v1", testConnector)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != cinder.StatusAvailable || len(v.AttachmentIDs) != 0 || f.volumeStatus() != cinder.StatusAvailable {
				t.Errorf("volume returned %s %v, fake cinder %s; want available without attachments", v.Status, v.AttachmentIDs, f.volumeStatus())
			}
			if !slices.Equal(f.requests(), tc.want) {
				t.Errorf("requests %v\nwant %v", f.requests(), tc.want)
			}
			var deleted []string
			for _, r := range f.requests() {
				if id, ok := strings.CutPrefix(r, "DELETE /attachments/"); ok {
					deleted = append(deleted, id)
				}
			}
			if !slices.Equal(deleted, tc.deleted) {
				t.Errorf("deleted %v, want %v", deleted, tc.deleted)
			}
			var detached []string
			for _, b := range f.bodiesOf(detachV1) {
				detached = append(detached, b["os-detach"].(map[string]any)["attachment_id"].(string))
			}
			if !slices.Equal(detached, tc.detach) {
				t.Errorf("os-detach of %v, want %v", detached, tc.detach)
			}
			for _, b := range f.bodiesOf(terminate) {
				if want := map[string]any{"os-terminate_connection": map[string]any{"connector": connectorWant}}; !reflect.DeepEqual(b, want) {
					t.Errorf("terminate body %v, want %v", b, want)
				}
			}
			if slices.Contains(tc.want, rollDetach) && counter(reg, "roll_detaching", "success") != 1 {
				t.Error("os-roll_detaching not counted")
			}
		})
	}
}

func TestClearExportsErrors(t *testing.T) {
	t.Run("missing volume is not found after one read", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusAvailable)
		c, _ := f.client(ExportAuto)
		if _, err := c.ClearExports(context.Background(), "gone", testConnector); !errors.Is(err, cinder.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		if want := []string{"GET /volumes/gone"}; !slices.Equal(f.requests(), want) {
			t.Errorf("requests %v, want %v", f.requests(), want)
		}
	})
	t.Run("a failed delete stops with Cinder's message", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusInUse,
			fakeRecord{id: "att-1", status: cinder.AttachAttached, conn: true}, fakeRecord{id: "att-2", status: cinder.AttachReserved})
		f.onJSON("DELETE /attachments/att-1", 500, `{"computeFault":{"code":500,"message":"target busy"}}`)
		c, _ := f.client(ExportAuto)
		_, err := c.ClearExports(context.Background(), "v1", testConnector)
		var ce *cinder.Error
		if !errors.Is(err, cinder.ErrUnavailable) || !errors.As(err, &ce) || ce.Message != "target busy" || ce.Volume != "v1" {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "http") || strings.Contains(err.Error(), testProject) {
			t.Errorf("error %q shows the URL", err)
		}
		if want := []string{getV1, listPage, listPage, "DELETE /attachments/att-1"}; !slices.Equal(f.requests(), want) {
			t.Errorf("requests %v, want %v", f.requests(), want)
		}
	})
	t.Run("an export started meanwhile is not unreserved", func(t *testing.T) {
		f := newFakeCinder(t, "3.70", cinder.StatusAttaching, fakeRecord{id: "att-1", status: cinder.AttachAttaching, conn: true})
		f.afterDelete = func(f *fakeCinder) {
			f.recs = append(f.recs, fakeRecord{id: "att-new", status: cinder.AttachAttaching, conn: true})
			f.status = cinder.StatusAttaching
		}
		c, _ := f.client(ExportAuto)
		_, err := c.ClearExports(context.Background(), "v1", testConnector)
		if !errors.Is(err, cinder.ErrConflict) || !strings.Contains(err.Error(), "att-new") {
			t.Fatalf("got %v, want ErrConflict naming att-new", err)
		}
		for _, r := range f.requests() {
			if r == terminate || r == unreserve {
				t.Errorf("sent %s; requests %v", r, f.requests())
			}
		}
	})
}

func TestUnexportDispatchesOnRecordedMethod(t *testing.T) {
	legacyTeardown := []string{getV1, beginDet, terminate, detachV1}
	for _, tc := range []struct {
		name    string
		max     string
		setting string
		ref     cinder.ExportRef
		want    []string
		wantErr string // ErrInvalid with this text
	}{
		{name: "attachments export on a legacy client deletes the attachment", max: "3.70", setting: ExportLegacy,
			ref: cinder.ExportRef{Method: cinder.ExportAttachments, ID: "att-1"}, want: []string{"DELETE /attachments/att-1"}},
		{name: "legacy export on an attachments client gets the legacy teardown", max: "3.70", setting: ExportAttachments,
			ref: cinder.ExportRef{Method: cinder.ExportLegacy, ID: "att-1"}, want: legacyTeardown},
		{name: "no method on an attachments client deletes the attachment", max: "3.70", setting: ExportAttachments,
			ref: cinder.ExportRef{ID: "att-1"}, want: []string{"DELETE /attachments/att-1"}},
		{name: "no method on a legacy client gets the legacy teardown", max: "3.70", setting: ExportLegacy,
			ref: cinder.ExportRef{ID: "att-1"}, want: legacyTeardown},
		{name: "legacy export on a client below 3.27 gets the legacy teardown", max: "3.20", setting: ExportAuto,
			ref: cinder.ExportRef{Method: cinder.ExportLegacy, ID: "att-1"}, want: legacyTeardown},
		{name: "attachments export on a client below 3.27 is refused without a request", max: "3.20", setting: ExportAuto,
			ref: cinder.ExportRef{Method: cinder.ExportAttachments, ID: "att-1"}, wantErr: "needs microversion 3.27, this client sends 3.0"},
		{name: "unknown method is refused", max: "3.70", setting: ExportAuto,
			ref: cinder.ExportRef{Method: "iscsiadm", ID: "att-1"}, wantErr: `unknown export method "iscsiadm"`},
		{name: "empty id is refused", max: "3.70", setting: ExportAuto,
			ref: cinder.ExportRef{Method: cinder.ExportAttachments}, wantErr: "export id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCinder(t, tc.max, cinder.StatusInUse, fakeRecord{id: "att-1", status: cinder.AttachAttached, host: "node1"})
			c, _ := f.client(tc.setting)
			err := c.Unexport(context.Background(), "v1", tc.ref, testConnector)
			if tc.wantErr != "" {
				if !errors.Is(err, cinder.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want ErrInvalid with %q", err, tc.wantErr)
				}
				if len(f.requests()) != 0 {
					t.Errorf("requests %v, want none", f.requests())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.requests(), tc.want) {
				t.Errorf("requests %v\nwant %v", f.requests(), tc.want)
			}
			if f.volumeStatus() != cinder.StatusAvailable {
				t.Errorf("volume %s after unexport, want available", f.volumeStatus())
			}
		})
	}
}

// TestAttachmentRecordKeepsNoConnectionInfo: the list's connection_info
// (CHAP passwords) is reduced to whether there is one.
func TestAttachmentRecordKeepsNoConnectionInfo(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"connection_info":{"auth_password":"secret","driver_volume_type":"iscsi"}}`: true,
		`{"connection_info":null}`: false,
		`{"connection_info":{}}`:   false,
		`{}`:                       false,
	} {
		var r attachmentRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		if bool(r.ConnectionInfo) != want {
			t.Errorf("%s: connection info present %v, want %v", raw, r.ConnectionInfo, want)
		}
		if strings.Contains(fmt.Sprintf("%#v", r), "secret") {
			t.Errorf("%s: record keeps the connection info: %#v", raw, r)
		}
	}
}
