// Package fake is a stateful in-memory cinder.Client for unit tests of the
// provisioner: volumes by id, statuses that progress creating -> available,
// exports with configurable connection info per volume type, failure
// injection per operation and a call log for order assertions.
//
// It answers like the real client: the same *cinder.Error sentinels, deletes
// of missing volumes and unexports of missing exports succeed, a volume with
// an export cannot be deleted (ErrInvalid), quota (ErrQuotaExceeded).
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

// Operation names, as used by FailNext, Fail, Hook and the call log.
const (
	OpCreateVolume         = "CreateVolume"
	OpGetVolume            = "GetVolume"
	OpFindVolumeByName     = "FindVolumeByName"
	OpWaitForVolumeStatus  = "WaitForVolumeStatus"
	OpDeleteVolume         = "DeleteVolume"
	OpWaitForVolumeDeleted = "WaitForVolumeDeleted"
	OpExport               = "Export"
	OpUnexport             = "Unexport"
	OpListVolumes          = "ListVolumes"
	OpServiceInfo          = "ServiceInfo"
)

// VolumeIDPlaceholder in a string of a configured connection's data is
// replaced by the exported volume's id.
const VolumeIDPlaceholder = "{volume_id}"

// Call is one recorded call.
type Call struct {
	Op        string
	VolumeID  string            // id argument or created/affected volume
	Name      string            // CreateVolume / FindVolumeByName
	ExportID  string            // Unexport; Export's result
	Connector *cinder.Connector // Export / Unexport
	Request   *cinder.CreateRequest
	Err       error // what the call returned
}

// String is "Op volume" (plus the export id when there is one): handy for
// comparing call sequences.
func (c Call) String() string {
	s := c.Op
	if c.VolumeID != "" {
		s += " " + c.VolumeID
	} else if c.Name != "" {
		s += " " + c.Name
	}
	if c.ExportID != "" {
		s += " " + c.ExportID
	}
	return s
}

// Hook runs before an operation (after injected failures); a non-nil error
// fails the call with that error. Hooks run without the fake's lock: they may
// call the fake (SetStatus, Volume, ...).
type Hook func(ctx context.Context, call Call) error

type volume struct {
	vol      cinder.Volume
	creating int    // GetVolume polls left in "creating"
	final    string // status after creating
	exports  []exportRecord
}

// snapshot is a copy of the volume as Cinder would show it, attachments
// included.
func (v *volume) snapshot() cinder.Volume {
	out := copyVolume(v.vol)
	out.AttachmentIDs = nil
	for _, e := range v.exports {
		out.AttachmentIDs = append(out.AttachmentIDs, e.export.ID)
	}
	return out
}

type exportRecord struct {
	export    cinder.Export
	connector cinder.Connector
}

// Fake implements cinder.Client in memory. The zero value is not usable:
// call New.
type Fake struct {
	mu            sync.Mutex
	volumes       map[string]*volume
	order         []string // volume ids in creation order
	calls         []Call
	failNext      map[string][]error
	failAlways    map[string]error
	hooks         map[string]Hook
	connections   map[string]cinder.Connection
	creatingPolls int
	finalStatus   string
	quota         int // -1 unlimited
	method        cinder.ExportMethod
	defaultType   string
	seq           int
	now           func() time.Time
	backoff       cinder.Backoff
}

var _ cinder.Client = (*Fake)(nil)

// New returns an empty fake: exports through the attachments API, default
// volume type "default", new volumes available at the first GetVolume, no
// quota.
func New() *Fake {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &Fake{
		volumes:     map[string]*volume{},
		failNext:    map[string][]error{},
		failAlways:  map[string]error{},
		hooks:       map[string]Hook{},
		connections: map[string]cinder.Connection{},
		finalStatus: cinder.StatusAvailable,
		quota:       -1,
		method:      cinder.ExportAttachments,
		defaultType: "default",
		backoff:     cinder.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 1},
	}
	n := 0
	f.now = func() time.Time { n++; return start.Add(time.Duration(n) * time.Second) }
	return f
}

// FailNext makes the next call of op return err (calls queue up: FailNext
// twice fails the next two calls). The call changes nothing.
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = append(f.failNext[op], err)
}

// Fail makes every call of op return err until Fail(op, nil).
func (f *Fake) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failAlways, op)
		return
	}
	f.failAlways[op] = err
}

// Hook installs (nil: removes) a hook for op.
func (f *Fake) Hook(op string, h Hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.hooks, op)
		return
	}
	f.hooks[op] = h
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

// SetQuota limits the number of volumes (-1: unlimited).
func (f *Fake) SetQuota(volumes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quota = volumes
}

// SetExportMethod sets the method exports report (default attachments).
func (f *Fake) SetExportMethod(m cinder.ExportMethod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method = m
}

// SetDefaultVolumeType sets the type of volumes created without one.
func (f *Fake) SetDefaultVolumeType(t string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.defaultType = t
}

// SetStatus forces a volume's status (e.g. "error", "error_deleting").
func (f *Fake) SetStatus(id, status string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return fmt.Errorf("fake: no volume %s", id)
	}
	v.vol.Status, v.creating = status, 0
	return nil
}

// AddVolume seeds a volume (an orphan, one made by an earlier run, ...).
// Empty ID, Status, VolumeType and CreatedAt are filled in; it returns the id.
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
		v.CreatedAt = f.now()
	}
	v.Metadata = maps.Clone(v.Metadata)
	f.volumes[v.ID] = &volume{vol: v, final: v.Status}
	f.order = append(f.order, v.ID)
	return v.ID
}

// Volume returns a copy of a volume.
func (f *Fake) Volume(id string) (cinder.Volume, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return cinder.Volume{}, false
	}
	return v.snapshot(), true
}

// Volumes returns copies of all volumes in creation order.
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

// Exports returns the live exports of a volume.
func (f *Fake) Exports(volumeID string) []cinder.Export {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil
	}
	out := make([]cinder.Export, len(v.exports))
	for i, e := range v.exports {
		out[i] = copyExport(e.export)
	}
	return out
}

// Calls returns the call log.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Ops returns the operations of the call log, in order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Op
	}
	return out
}

// ResetCalls empties the call log.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func (f *Fake) newID() string {
	f.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
}

// begin runs failure injection and the hook for a call; it returns the
// error the call must fail with, if any.
func (f *Fake) begin(ctx context.Context, call Call) error {
	f.mu.Lock()
	var err error
	if q := f.failNext[call.Op]; len(q) > 0 {
		err, f.failNext[call.Op] = q[0], q[1:]
	} else if e, ok := f.failAlways[call.Op]; ok {
		err = e
	}
	hook := f.hooks[call.Op]
	f.mu.Unlock()
	if err == nil && hook != nil {
		err = hook(ctx, call)
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (f *Fake) record(call Call, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call.Err = err
	f.calls = append(f.calls, call)
}

// CreateVolume implements cinder.Client.
func (f *Fake) CreateVolume(ctx context.Context, req cinder.CreateRequest) (_ *cinder.Volume, err error) {
	call := Call{Op: OpCreateVolume, Name: req.Name, Request: &req}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	if req.Name == "" || req.SizeGiB <= 0 {
		return nil, cinder.NewError("create volume", req.Name, cinder.ErrInvalid, "a name and a positive size are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.quota >= 0 && len(f.volumes) >= f.quota {
		return nil, cinder.NewError("create volume", req.Name, cinder.ErrQuotaExceeded,
			fmt.Sprintf("VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota 'volumes'.", f.quota))
	}
	vt := req.VolumeType
	if vt == "" {
		vt = f.defaultType
	}
	v := &volume{
		vol: cinder.Volume{
			ID: f.newID(), Name: req.Name, Description: req.Description, Status: cinder.StatusCreating,
			SizeGiB: req.SizeGiB, VolumeType: vt, AvailabilityZone: req.AvailabilityZone,
			Multiattach: req.Multiattach, Metadata: maps.Clone(req.Metadata), CreatedAt: f.now(),
		},
		creating: f.creatingPolls,
		final:    f.finalStatus,
	}
	if v.vol.AvailabilityZone == "" {
		v.vol.AvailabilityZone = "nova"
	}
	f.volumes[v.vol.ID] = v
	f.order = append(f.order, v.vol.ID)
	call.VolumeID = v.vol.ID
	out := v.snapshot()
	return &out, nil
}

// get advances a creating volume by one poll and returns a copy.
func (f *Fake) get(id string) (*cinder.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return nil, cinder.NewError("get volume", id, cinder.ErrNotFound, "Volume "+id+" could not be found.")
	}
	if v.vol.Status == cinder.StatusCreating {
		if v.creating > 0 {
			v.creating--
		} else {
			v.vol.Status = v.final
		}
	}
	out := v.snapshot()
	return &out, nil
}

// GetVolume implements cinder.Client.
func (f *Fake) GetVolume(ctx context.Context, id string) (_ *cinder.Volume, err error) {
	call := Call{Op: OpGetVolume, VolumeID: id}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	return f.get(id)
}

// FindVolumeByName implements cinder.Client.
func (f *Fake) FindVolumeByName(ctx context.Context, name string) (_ *cinder.Volume, err error) {
	call := Call{Op: OpFindVolumeByName, Name: name}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
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
		return nil, cinder.NewError("find volume", name, cinder.ErrNotFound, "")
	case 1:
		call.VolumeID = found[0].vol.ID
		out := found[0].snapshot()
		return &out, nil
	}
	ids := make([]string, len(found))
	for i, v := range found {
		ids[i] = v.vol.ID
	}
	return nil, &cinder.DuplicateNameError{Name: name, IDs: ids}
}

// WaitForVolumeStatus implements cinder.Client; polls are not logged, the
// wait is (once).
func (f *Fake) WaitForVolumeStatus(ctx context.Context, id string, wanted ...string) (_ *cinder.Volume, err error) {
	call := Call{Op: OpWaitForVolumeStatus, VolumeID: id}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	return cinder.WaitForStatus(ctx, f.backoff, func(_ context.Context, id string) (*cinder.Volume, error) { return f.get(id) }, id, wanted...)
}

// DeleteVolume implements cinder.Client.
func (f *Fake) DeleteVolume(ctx context.Context, id string) (err error) {
	call := Call{Op: OpDeleteVolume, VolumeID: id}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return nil
	}
	if len(v.exports) > 0 {
		return cinder.NewError("delete volume", id, cinder.ErrInvalid,
			"Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.")
	}
	delete(f.volumes, id)
	return nil
}

// WaitForVolumeDeleted implements cinder.Client.
func (f *Fake) WaitForVolumeDeleted(ctx context.Context, id string) (err error) {
	call := Call{Op: OpWaitForVolumeDeleted, VolumeID: id}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return err
	}
	return cinder.WaitForDeleted(ctx, f.backoff, func(_ context.Context, id string) (*cinder.Volume, error) { return f.get(id) }, id)
}

// Export implements cinder.Client.
func (f *Fake) Export(ctx context.Context, volumeID string, cn cinder.Connector) (_ *cinder.Export, err error) {
	call := Call{Op: OpExport, VolumeID: volumeID, Connector: &cn}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	if cn.Host == "" {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrInvalid, "the connector needs a host name")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrNotFound, "Volume "+volumeID+" could not be found.")
	}
	switch {
	case v.vol.Status == cinder.StatusAvailable:
	case v.vol.Status == cinder.StatusInUse && v.vol.Multiattach:
	case v.vol.Status == cinder.StatusInUse:
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrConflict, "volume is not multiattach and already attached")
	default:
		return nil, cinder.NewError("export volume", volumeID, cinder.ErrInvalid, "Invalid volume: volume status is "+v.vol.Status)
	}
	conn, ok := f.connections[v.vol.VolumeType]
	if !ok {
		conn = defaultConnection(volumeID, len(v.exports)+f.seq)
	}
	f.seq++
	exp := cinder.Export{
		Method:     f.method,
		ID:         fmt.Sprintf("00000000-0000-4000-a000-%012d", f.seq),
		Connection: fillConnection(conn, volumeID),
	}
	v.exports = append(v.exports, exportRecord{export: exp, connector: cn})
	v.vol.Status = cinder.StatusInUse
	call.ExportID = exp.ID
	out := copyExport(exp)
	return &out, nil
}

// Unexport implements cinder.Client.
func (f *Fake) Unexport(ctx context.Context, volumeID, exportID string, cn cinder.Connector) (err error) {
	call := Call{Op: OpUnexport, VolumeID: volumeID, ExportID: exportID, Connector: &cn}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return err
	}
	if volumeID == "" || exportID == "" {
		return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid, "volume id and export id are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil
	}
	v.exports = slices.DeleteFunc(v.exports, func(e exportRecord) bool { return e.export.ID == exportID })
	if len(v.exports) == 0 && v.vol.Status == cinder.StatusInUse {
		v.vol.Status = cinder.StatusAvailable
	}
	return nil
}

// ListVolumes implements cinder.Client.
func (f *Fake) ListVolumes(ctx context.Context, metadata map[string]string) (_ []cinder.Volume, err error) {
	call := Call{Op: OpListVolumes}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []cinder.Volume{}
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
			out = append(out, v.snapshot())
		}
	}
	return out, nil
}

// ServiceInfo implements cinder.Client.
func (f *Fake) ServiceInfo(ctx context.Context) (_ *cinder.ServiceInfo, err error) {
	call := Call{Op: OpServiceInfo}
	defer func() { f.record(call, err) }()
	if err := f.begin(ctx, call); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	types := []string{f.defaultType}
	for t := range f.connections {
		if t != f.defaultType {
			types = append(types, t)
		}
	}
	slices.Sort(types[1:])
	info := &cinder.ServiceInfo{
		Endpoint: "fake://cinder/v3/fake", AuthMode: "fake", APIVersion: "v3.0",
		MinMicroversion: "3.0", MaxMicroversion: "3.70", Microversion: "3.54", ExportMethod: f.method,
	}
	for _, t := range types {
		info.VolumeTypes = append(info.VolumeTypes, cinder.VolumeType{ID: "type-" + t, Name: t, IsPublic: true})
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
