// Package fake is a stateful in-memory cinder.Client for unit tests of the
// provisioner. It follows Cinder 21's state machine, the states between two
// requests included:
//
//   - volumes go creating -> available (or error, or stay creating) as
//     GetVolume polls them, and deleting -> gone (or error_deleting);
//   - Export is made of the Cinder requests the real client sends
//     (attachments API: AttachmentCreate, AttachmentComplete; legacy:
//     Reserve, InitializeConnection, Attach), Unexport and ClearExports too,
//     each one a step that failures can be injected into;
//   - attachments have their own status (reserved, attaching, attached) and
//     the volume view lists only attached ones, as Cinder's does.
//
// Failures come in three kinds, for every operation and step: FailNext and
// Fail (the request fails and changes nothing), LoseAnswer (the request is
// applied, then the caller gets an error) and CrashAt (applied, then every
// call fails until Restart). SetDown makes Cinder unreachable.
//
// It answers like the real client: the same *cinder.Error sentinels and
// Cinder's messages, deletes of missing volumes and unexports of missing
// exports succeed. Everything is safe for concurrent use and deterministic:
// waits poll with a 1 ms backoff and states advance per poll, not with time.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// VolumeIDPlaceholder in a string of a configured connection's data is
// replaced by the exported volume's id.
const VolumeIDPlaceholder = "{volume_id}"

// defaultHost is the backend the fake's scheduler puts every volume on.
const defaultHost = "fake@lvm#lvm"

// msgNotDeletable is Cinder's answer to DELETE of a volume in a status it
// does not delete from, or with an attachment (volume/api.py delete).
const msgNotDeletable = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer."

type volume struct {
	vol         cinder.Volume
	host        string // "": never scheduled
	creating    int    // GetVolume polls left in "creating"
	final       string // status after creating
	deleting    int    // GetVolume polls left in "deleting"
	deleteFinal string // "" (gone) or error_deleting
	attachments []*attachment
	// legacyTargets are the connectors os-initialize_connection exported
	// the volume to, until os-terminate_connection or os-detach.
	legacyTargets []cinder.Connector
}

// snapshot is a copy of the volume as Cinder's volume view shows it:
// AttachmentIDs lists the attached attachments only.
func (v *volume) snapshot() cinder.Volume {
	out := copyVolume(v.vol)
	out.AttachmentIDs = nil
	for _, a := range v.attachments {
		if a.status == cinder.AttachAttached {
			out.AttachmentIDs = append(out.AttachmentIDs, a.id)
		}
	}
	return out
}

// Fake implements cinder.Client in memory. The zero value is not usable:
// call New.
type Fake struct {
	mu               sync.Mutex
	volumes          map[string]*volume
	order            []string // volume ids in creation order
	calls            []Call
	steps            []*Call
	inject           map[string][]injection
	failAlways       map[string]error
	hooks            map[string]Hook
	down, crashed    bool
	connections      map[string]cinder.Connection
	creatingPolls    int
	finalStatus      string
	deletingPolls    int
	deleteFinal      string
	quota            int // -1 unlimited
	method           cinder.ExportMethod
	defaultType      string
	multiattachTypes map[string]bool // volume types whose extra specs allow multiattach
	seq              int
	clock            time.Time // Cinder's clock: each create ticks it by a second; Advance moves it
	backoff          cinder.Backoff
	sources          sources // snapshots and zones (clone.go)
	ext              extends // extends in progress and their settings (extend.go)
	snaps            snapshotSettings
	capacity         capacitySettings // pools and type backends (capacity.go)
}

var _ cinder.Client = (*Fake)(nil)

// New returns an empty fake: exports through the attachments API, default
// volume type "default", new volumes available at the first GetVolume,
// deleted volumes gone at the first GetVolume, no quota.
func New() *Fake {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &Fake{
		volumes:     map[string]*volume{},
		inject:      map[string][]injection{},
		failAlways:  map[string]error{},
		hooks:       map[string]Hook{},
		connections: map[string]cinder.Connection{},
		finalStatus: cinder.StatusAvailable,
		quota:       -1,
		method:      cinder.ExportAttachments,
		defaultType: "default",
		backoff:     cinder.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 1},
	}
	f.clock = start
	return f
}

// tick is a create's created_at: the clock moves a second first, so that
// volumes made one after another are ordered by it.
func (f *Fake) tick() time.Time {
	f.clock = f.clock.Add(time.Second)
	return f.clock
}

// Now returns Cinder's clock: what a Date header would say now.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

// Advance moves Cinder's clock forward, as time passing on Cinder's host
// would (volumes grow older by Cinder's clock; the provisioner's is not
// involved).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

// SetConnection sets the connection info exports of a volume type return.
// Strings containing VolumeIDPlaceholder get the volume's id.
func (f *Fake) SetConnection(volumeType string, conn cinder.Connection) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connections[volumeType] = conn
}

// SetCreatingPolls sets how many GetVolume polls a new volume stays
// "creating" before it reaches its final status (default 0).
func (f *Fake) SetCreatingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creatingPolls = n
}

// SetCreateFinalStatus sets the status new volumes reach after creating:
// "available" (default), "error" to simulate a failed backend, "creating" to
// never finish.
func (f *Fake) SetCreateFinalStatus(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finalStatus = status
}

// SetDeletingPolls sets how many GetVolume polls a deleted volume stays
// "deleting" before it is gone or error_deleting (default 0: the first poll
// after DeleteVolume finds it gone). Until then it is listed, found by
// name and counted by the quota, as in Cinder.
func (f *Fake) SetDeletingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletingPolls = n
}

// SetDeleteFinalStatus sets how deletions end: "" (default: the volume is
// gone) or "error_deleting" (the backend failed: the volume stays, and
// Cinder refuses to delete it again).
func (f *Fake) SetDeleteFinalStatus(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status == "deleted" {
		status = ""
	}
	f.deleteFinal = status
}

// SetQuota limits the number of volumes (-1: unlimited). Volumes being
// deleted still count.
func (f *Fake) SetQuota(volumes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quota = volumes
}

// SetExportMethod sets the method Export uses and reports (default
// attachments), and the one Unexport uses for a ref without a method.
func (f *Fake) SetExportMethod(m cinder.ExportMethod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method = m
}

// SetMultiattachType makes volumes of a type multiattach, as the extra
// spec multiattach="<is> True" does in Cinder (the only way since Cinder
// removed the create request's multiattach flag).
func (f *Fake) SetMultiattachType(volumeType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.multiattachTypes == nil {
		f.multiattachTypes = map[string]bool{}
	}
	f.multiattachTypes[volumeType] = true
}

// SetDefaultVolumeType sets the type of volumes created without one.
func (f *Fake) SetDefaultVolumeType(t string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.defaultType = t
}

// SetStatus forces a volume's status (e.g. "error", "error_deleting"), as
// an admin's reset-state would; attachments are left alone. A volume set
// to "deleting" then behaves as a deletion in progress.
func (f *Fake) SetStatus(id, status string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return fmt.Errorf("fake: no volume %s", id)
	}
	v.vol.Status, v.creating = status, 0
	if isDeleting(status) {
		v.deleting, v.deleteFinal = f.deletingPolls, f.deleteFinal
	}
	return nil
}

// SetHost sets the backend host of a volume. "" is a volume the scheduler
// never placed (its create request was lost between the API and the
// scheduler): Cinder 21 deletes such a volume at once whatever its status.
func (f *Fake) SetHost(id, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return fmt.Errorf("fake: no volume %s", id)
	}
	v.host = host
	return nil
}

// AddVolume seeds a volume (an orphan, one made by an earlier run, ...).
// Empty ID, Status, VolumeType and CreatedAt are filled in; it returns the id.
// Each of v.AttachmentIDs becomes an attached attachment of the fake's export
// method, without connection info.
func (f *Fake) AddVolume(v cinder.Volume) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v.ID == "" {
		v.ID = f.newID()
	}
	if v.Status == "" {
		v.Status = cinder.StatusAvailable
	}
	if v.VolumeType == "" {
		v.VolumeType = f.defaultType
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = f.tick()
	}
	v.Metadata = maps.Clone(v.Metadata)
	vol := &volume{vol: v, host: defaultHost, final: v.Status}
	for _, id := range v.AttachmentIDs {
		vol.attachments = append(vol.attachments, &attachment{id: id, status: cinder.AttachAttached, method: f.method})
	}
	vol.vol.AttachmentIDs = nil
	if isDeleting(v.Status) {
		vol.deleting, vol.deleteFinal = f.deletingPolls, f.deleteFinal
	}
	f.volumes[v.ID] = vol
	f.order = append(f.order, v.ID)
	return v.ID
}

// Volume returns a copy of a volume as Cinder shows it (AttachmentIDs: the
// attached attachments). It is no call: it changes nothing, fails never.
func (f *Fake) Volume(id string) (cinder.Volume, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return cinder.Volume{}, false
	}
	return v.snapshot(), true
}

// Volumes returns copies of all volumes (deleting ones included) in creation
// order.
func (f *Fake) Volumes() []cinder.Volume {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []cinder.Volume{}
	for _, id := range f.order {
		if v, ok := f.volumes[id]; ok {
			out = append(out, v.snapshot())
		}
	}
	return out
}

func (f *Fake) newID() string {
	f.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
}

func notFound(op, id string) error {
	return cinder.NewError(op, id, cinder.ErrNotFound, "Volume "+id+" could not be found.")
}

func isDeleting(status string) bool {
	return status == cinder.StatusDeleting || status == "error_managing_deleting"
}

// CreateVolume implements cinder.Client.
func (f *Fake) CreateVolume(ctx context.Context, req cinder.CreateRequest) (out *cinder.Volume, err error) {
	call := &Call{Op: OpCreateVolume, Name: req.Name, Request: &req}
	err = f.do(ctx, levelCall, call, func() error {
		if req.Name == "" || req.SizeGiB <= 0 {
			return cinder.NewError("create volume", req.Name, cinder.ErrInvalid, "a name and a positive size are required")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.quota >= 0 && len(f.volumes) >= f.quota {
			return cinder.NewError("create volume", req.Name, cinder.ErrQuotaExceeded,
				fmt.Sprintf("VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota 'volumes'.", f.quota))
		}
		if err := f.checkCreateQuotaLocked(req); err != nil {
			return err
		}
		vt, az, err := f.checkSourceLocked(req)
		if err != nil {
			return err
		}
		v := &volume{
			vol: cinder.Volume{
				ID: f.newID(), Name: req.Name, Description: req.Description, Status: cinder.StatusCreating,
				SizeGiB: req.SizeGiB, VolumeType: vt, AvailabilityZone: az,
				SourceVolumeID: req.SourceVolumeID, SnapshotID: req.SnapshotID,
				Multiattach: f.multiattachTypes[vt], Metadata: maps.Clone(req.Metadata), CreatedAt: f.tick(),
			},
			host:     defaultHost,
			creating: f.creatingPolls,
			final:    f.finalStatus,
		}
		f.volumes[v.vol.ID] = v
		f.order = append(f.order, v.vol.ID)
		call.VolumeID = v.vol.ID
		s := v.snapshot()
		out = &s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// get is one GetVolume poll: it advances a creating or deleting volume by
// one poll and returns a copy.
func (f *Fake) get(id string) (*cinder.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return nil, notFound("get volume", id)
	}
	switch {
	case v.vol.Status == cinder.StatusCreating:
		if v.creating > 0 {
			v.creating--
		} else {
			v.vol.Status = v.final
		}
	case v.vol.Status == cinder.StatusExtending:
		f.advanceExtendLocked(v)
	case isDeleting(v.vol.Status):
		switch {
		case v.deleting > 0:
			v.deleting--
		case v.deleteFinal != "":
			v.vol.Status = v.deleteFinal
		default:
			delete(f.volumes, id)
			return nil, notFound("get volume", id)
		}
	}
	out := v.snapshot()
	out.ReadAt = f.clock
	return &out, nil
}

// GetVolume implements cinder.Client.
func (f *Fake) GetVolume(ctx context.Context, id string) (out *cinder.Volume, err error) {
	call := &Call{Op: OpGetVolume, VolumeID: id}
	err = f.do(ctx, levelCall, call, func() (err error) {
		out, err = f.get(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindVolumeByName implements cinder.Client.
func (f *Fake) FindVolumeByName(ctx context.Context, name string) (out *cinder.Volume, err error) {
	call := &Call{Op: OpFindVolumeByName, Name: name}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		var found []*volume
		for _, id := range f.order {
			if v, ok := f.volumes[id]; ok && v.vol.Name == name {
				found = append(found, v)
			}
		}
		switch len(found) {
		case 0:
			return cinder.NewError("find volume", name, cinder.ErrNotFound, "")
		case 1:
			call.VolumeID = found[0].vol.ID
			s := found[0].snapshot()
			s.ReadAt = f.clock
			out = &s
			return nil
		}
		ids := make([]string, len(found))
		for i, v := range found {
			ids[i] = v.vol.ID
		}
		return &cinder.DuplicateNameError{Name: name, IDs: ids}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WaitForVolumeStatus implements cinder.Client; polls are not logged, the
// wait is (once). While Cinder is down the wait fails at once instead of
// polling until ctx ends.
func (f *Fake) WaitForVolumeStatus(ctx context.Context, id string, wanted ...string) (out *cinder.Volume, err error) {
	call := &Call{Op: OpWaitForVolumeStatus, VolumeID: id}
	err = f.do(ctx, levelCall, call, func() (err error) {
		out, err = cinder.WaitForStatus(ctx, f.backoff, func(_ context.Context, id string) (*cinder.Volume, error) { return f.get(id) }, id, wanted...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVolume implements cinder.Client: Cinder accepts it only for a
// volume in a cinder.Deletable status without attached, attaching or
// reserved attachments (else ErrInvalid, also for a volume already
// deleting); the volume then goes deleting (see SetDeletingPolls). A missing
// volume is success.
func (f *Fake) DeleteVolume(ctx context.Context, id string) error {
	call := &Call{Op: OpDeleteVolume, VolumeID: id}
	return f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[id]
		if !ok {
			return nil
		}
		if v.host == "" {
			delete(f.volumes, id)
			return nil
		}
		busy := slices.ContainsFunc(v.attachments, func(a *attachment) bool {
			return a.status == cinder.AttachAttached || a.status == cinder.AttachAttaching || a.status == cinder.AttachReserved
		})
		if !cinder.Deletable(v.vol.Status) || busy || len(f.volumeSnapshotsLocked(id)) > 0 {
			return cinder.NewError("delete volume", id, cinder.ErrInvalid, msgNotDeletable)
		}
		if v.vol.Status == "error_managing" {
			v.vol.Status = "error_managing_deleting"
		} else {
			v.vol.Status = cinder.StatusDeleting
		}
		v.deleting, v.deleteFinal = f.deletingPolls, f.deleteFinal
		return nil
	})
}

// WaitForVolumeDeleted implements cinder.Client.
func (f *Fake) WaitForVolumeDeleted(ctx context.Context, id string) error {
	call := &Call{Op: OpWaitForVolumeDeleted, VolumeID: id}
	return f.do(ctx, levelCall, call, func() error {
		return cinder.WaitForDeleted(ctx, f.backoff, func(_ context.Context, id string) (*cinder.Volume, error) { return f.get(id) }, id)
	})
}

// ListVolumes implements cinder.Client.
func (f *Fake) ListVolumes(ctx context.Context, metadata map[string]string) (out []cinder.Volume, err error) {
	call := &Call{Op: OpListVolumes}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		out = []cinder.Volume{}
		for _, id := range f.order {
			v, ok := f.volumes[id]
			if !ok {
				continue
			}
			match := true
			for k, want := range metadata {
				if got, ok := v.vol.Metadata[k]; !ok || got != want {
					match = false
				}
			}
			if match {
				s := v.snapshot()
				s.ReadAt = f.clock
				out = append(out, s)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateVolumeMetadata implements cinder.Client: the keys are set, the
// others kept.
func (f *Fake) UpdateVolumeMetadata(ctx context.Context, id string, metadata map[string]string) error {
	call := &Call{Op: OpUpdateMetadata, VolumeID: id}
	return f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[id]
		if !ok {
			return notFound("update volume metadata", id)
		}
		if v.vol.Metadata == nil {
			v.vol.Metadata = map[string]string{}
		}
		maps.Copy(v.vol.Metadata, metadata)
		return nil
	})
}

// ServiceInfo implements cinder.Client.
func (f *Fake) ServiceInfo(ctx context.Context) (info *cinder.ServiceInfo, err error) {
	call := &Call{Op: OpServiceInfo}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		types := []string{f.defaultType}
		for t := range f.connections {
			if t != f.defaultType {
				types = append(types, t)
			}
		}
		slices.Sort(types[1:])
		info = &cinder.ServiceInfo{
			Endpoint: "fake://cinder/v3/fake", AuthMode: "fake", APIVersion: "v3.0",
			MinMicroversion: "3.0", MaxMicroversion: f.ext.maxMicroversion(), Microversion: f.ext.microversion(), ExportMethod: f.method,
		}
		for _, t := range types {
			info.VolumeTypes = append(info.VolumeTypes, cinder.VolumeType{ID: "type-" + t, Name: t, IsPublic: true})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// defaultConnection is what an LVM + tgtadm backend answers: iSCSI with
// CHAP. Numbers are json.Number, as the real client decodes them.
func defaultConnection(volumeID string, n int) cinder.Connection {
	return cinder.Connection{
		DriverVolumeType: "iscsi",
		Data: map[string]any{
			"target_discovered": false,
			"target_portal":     "127.0.0.1:3260",
			"target_iqn":        "iqn.2010-10.org.openstack:volume-" + volumeID,
			"target_lun":        json.Number("1"),
			"volume_id":         volumeID,
			"auth_method":       "CHAP",
			"auth_username":     fmt.Sprintf("chap-user-%d", n),
			"auth_password":     fmt.Sprintf("chap-secret-%d", n),
			"encrypted":         false,
			"access_mode":       "rw",
		},
	}
}

func fillConnection(c cinder.Connection, volumeID string) cinder.Connection {
	return cinder.Connection{DriverVolumeType: c.DriverVolumeType, Data: fillMap(c.Data, volumeID)}
}

func fillMap(m map[string]any, volumeID string) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = fillValue(v, volumeID)
	}
	return out
}

func fillValue(v any, volumeID string) any {
	switch t := v.(type) {
	case string:
		return strings.ReplaceAll(t, VolumeIDPlaceholder, volumeID)
	case map[string]any:
		return fillMap(t, volumeID)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = fillValue(e, volumeID)
		}
		return out
	case []string:
		out := make([]string, len(t))
		for i, e := range t {
			out[i] = strings.ReplaceAll(e, VolumeIDPlaceholder, volumeID)
		}
		return out
	default:
		return v
	}
}

func copyVolume(v cinder.Volume) cinder.Volume {
	v.Metadata = maps.Clone(v.Metadata)
	return v
}

// copyExport deep-copies an export (replacing the placeholder by itself).
func copyExport(e cinder.Export) cinder.Export {
	e.Connection = fillConnection(e.Connection, VolumeIDPlaceholder)
	return e
}

func copyConnector(c cinder.Connector) cinder.Connector {
	c.WWPNs = slices.Clone(c.WWPNs)
	c.WWNNs = slices.Clone(c.WWNNs)
	return c
}
