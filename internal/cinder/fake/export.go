package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// attachment is one volume_attachment record of Cinder: made by
// POST /attachments (reserved, then attaching once the backend exported the
// volume, attached after os-complete) or by legacy os-attach (attached).
type attachment struct {
	id     string
	status string              // cinder.Attach*
	method cinder.ExportMethod // how it was made
	host   string              // connector host / os-attach host_name; "" when Cinder recorded none
	// connector is the connector Cinder recorded with the backend export
	// (attachments API, from attaching on); nil when none.
	connector *cinder.Connector
	conn      cinder.Connection // connection info handed out (fake bookkeeping)
}

func (v *volume) find(id string) *attachment {
	for _, a := range v.attachments {
		if a.id == id {
			return a
		}
	}
	return nil
}

// hasAttachments is Cinder's volume_has_attachments_filter: a record that is
// not detached.
func (v *volume) hasAttachments() bool {
	return len(v.attachments) > 0
}

// statusFromAttachments is Cinder's _get_statuses_from_attachments, which
// finish_detach applies after removing an attachment: the alphabetically
// first status of the remaining (non-error) attachments, attached meaning
// in-use and none meaning available.
func (v *volume) statusFromAttachments() string {
	best := ""
	for _, a := range v.attachments {
		if strings.HasPrefix(a.status, "error_") {
			continue
		}
		if best == "" || a.status < best {
			best = a.status
		}
	}
	switch best {
	case "":
		return cinder.StatusAvailable
	case cinder.AttachAttached:
		return cinder.StatusInUse
	}
	return best
}

// finishDetach removes attachment id (if there) and sets the volume status
// from the remaining ones.
func (v *volume) finishDetach(id string) {
	v.attachments = slices.DeleteFunc(v.attachments, func(a *attachment) bool { return a.id == id })
	v.vol.Status = v.statusFromAttachments()
}

// unreserve is Cinder's unreserve_volume: attaching goes to in-use when
// the volume has attachments, else to available; any other status stays.
func (v *volume) unreserve() {
	if v.vol.Status != cinder.StatusAttaching {
		return
	}
	if v.hasAttachments() {
		v.vol.Status = cinder.StatusInUse
	} else {
		v.vol.Status = cinder.StatusAvailable
	}
}

func (v *volume) exports() []cinder.Attachment {
	out := make([]cinder.Attachment, len(v.attachments))
	for i, a := range v.attachments {
		out[i] = cinder.Attachment{ID: a.id, Status: a.status, Host: a.host}
	}
	return out
}

// legacyReserve reports a legacy os-reserve that no record explains: the
// volume is attaching but no attachment is reserved or attaching.
func (v *volume) legacyReserve() bool {
	return v.vol.Status == cinder.StatusAttaching && !slices.ContainsFunc(v.attachments, func(a *attachment) bool {
		return a.status == cinder.AttachReserved || a.status == cinder.AttachAttaching
	})
}

func sameConnector(a, b cinder.Connector) bool {
	return a.Host == b.Host && a.Initiator == b.Initiator && a.NQN == b.NQN && slices.Equal(a.WWPNs, b.WWPNs)
}

// findAttachment looks an attachment up by id in every volume, as
// /attachments/{id} does. Call with f.mu held.
func (f *Fake) findAttachment(id string) (*volume, *attachment) {
	for _, vid := range f.order {
		if v, ok := f.volumes[vid]; ok {
			if a := v.find(id); a != nil {
				return v, a
			}
		}
	}
	return nil, nil
}

// connectionFor is the connection info of a new export. Call with f.mu held.
func (f *Fake) connectionFor(v *volume) cinder.Connection {
	f.seq++
	conn, ok := f.connections[v.vol.VolumeType]
	if !ok {
		conn = defaultConnection(v.vol.ID, f.seq)
	}
	return fillConnection(conn, v.vol.ID)
}

func attachmentNotFound(op, volumeID, id string) error {
	return cinder.NewError(op, volumeID, cinder.ErrNotFound, "Volume attachment could not be found with filter: attachment_id = "+id+".")
}

// unreachable reports whether Cinder is down or crashed.
func (f *Fake) unreachable() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down || f.crashed
}

// Exports returns the exports of a volume: one per attachment, whatever its
// status, oldest first (a legacy os-reserve has none; see Reserved).
func (f *Fake) Exports(volumeID string) []cinder.Export {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil
	}
	out := make([]cinder.Export, len(v.attachments))
	for i, a := range v.attachments {
		out[i] = copyExport(cinder.Export{Method: a.method, ID: a.id, Connection: a.conn})
	}
	return out
}

// Attachments returns every attachment of a volume, whatever its status,
// oldest first, as ListExports does (but without being a call).
func (f *Fake) Attachments(volumeID string) []cinder.Attachment {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil
	}
	return v.exports()
}

// Reserved reports whether the volume carries a legacy os-reserve that no
// attachment records: it is attaching, and only ClearExports (or
// os-unreserve) brings it back.
func (f *Fake) Reserved(volumeID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	return ok && v.legacyReserve()
}

// BackendExports returns the connectors the backend exports the volume to:
// those of attachments past their backend export, then those of legacy
// os-initialize_connection calls that no os-terminate_connection (same
// host and initiator) or os-detach removed. Cinder's API shows none of
// this: an entry with no attachment is a target leaked on the backend.
func (f *Fake) BackendExports(volumeID string) []cinder.Connector {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[volumeID]
	if !ok {
		return nil
	}
	var out []cinder.Connector
	for _, a := range v.attachments {
		if a.connector != nil {
			out = append(out, copyConnector(*a.connector))
		}
	}
	for _, c := range v.legacyTargets {
		out = append(out, copyConnector(c))
	}
	return out
}

// undo is what an Export knows it did, to be undone in reverse order when
// a later step fails.
type undo []undoStep

type undoStep struct {
	name string
	fn   func(ctx context.Context) error
}

// finish undoes on a context that survives the caller's, and joins the
// export error with any rollback failure, as the real client does.
func (u undo) finish(ctx context.Context, err error) error {
	if err == nil || len(u) == 0 {
		return err
	}
	// as the real client: outlives the caller, not the leadership
	ctx, cancel := cinder.Detached(ctx, time.Minute)
	defer cancel()
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if e := u[i].fn(ctx); e != nil && !errors.Is(e, cinder.ErrNotFound) {
			errs = append(errs, fmt.Errorf("undo %s: %w", u[i].name, e))
		}
	}
	if len(errs) == 0 {
		return err
	}
	return errors.Join(err, fmt.Errorf("rollback incomplete, the volume may keep an export: %w", errors.Join(errs...)))
}

// Export implements cinder.Client with the fake's export method.
//
// Attachments: AttachmentCreate (volume and attachment reserved, then the
// backend export, OpInitializeConnection: both attaching), then
// AttachmentComplete (attached, in-use); a failed complete is undone with
// AttachmentDelete. A failed create leaves no undo: the caller never got
// the attachment's id.
//
// Legacy: Reserve (attaching, no record), InitializeConnection (backend
// export), Attach (an attached record, in-use); a failure is undone with
// TerminateConnection then Unreserve.
func (f *Fake) Export(ctx context.Context, volumeID string, cn cinder.Connector) (out *cinder.Export, err error) {
	call := &Call{Op: OpExport, VolumeID: volumeID, Connector: &cn}
	err = f.do(ctx, levelCall, call, func() error {
		if volumeID == "" {
			return cinder.NewError("export volume", "", cinder.ErrInvalid, "empty volume id")
		}
		if cn.Host == "" {
			return cinder.NewError("export volume", volumeID, cinder.ErrInvalid, "the connector needs a host name")
		}
		f.mu.Lock()
		method := f.method
		f.mu.Unlock()
		call.Method = method
		var exp *cinder.Export
		var err error
		if method == cinder.ExportLegacy {
			exp, err = f.exportLegacy(ctx, volumeID, cn)
		} else {
			exp, err = f.exportAttachment(ctx, volumeID, cn)
		}
		if err != nil {
			return err
		}
		call.ExportID = exp.ID
		out = exp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (f *Fake) exportAttachment(ctx context.Context, volumeID string, cn cinder.Connector) (_ *cinder.Export, err error) {
	id, conn, err := f.attachmentCreate(ctx, volumeID, cn)
	if err != nil {
		return nil, err
	}
	u := undo{{"create attachment", func(ctx context.Context) error { return f.attachmentDelete(ctx, volumeID, id) }}}
	if err := f.attachmentComplete(ctx, volumeID, id); err != nil {
		return nil, u.finish(ctx, err)
	}
	return &cinder.Export{Method: cinder.ExportAttachments, ID: id, Connection: conn}, nil
}

func (f *Fake) exportLegacy(ctx context.Context, volumeID string, cn cinder.Connector) (*cinder.Export, error) {
	if err := f.reserve(ctx, volumeID); err != nil {
		return nil, err
	}
	u := undo{{"os-reserve", func(ctx context.Context) error { return f.unreserveStep(ctx, volumeID) }}}
	conn, err := f.initializeConnection(ctx, volumeID, cn)
	if err != nil {
		return nil, u.finish(ctx, err)
	}
	u = append(u, undoStep{"os-initialize_connection", func(ctx context.Context) error { return f.terminateConnection(ctx, volumeID, cn) }})
	id, err := f.attach(ctx, volumeID, cn, conn)
	if err != nil {
		return nil, u.finish(ctx, err)
	}
	return &cinder.Export{Method: cinder.ExportLegacy, ID: id, Connection: conn}, nil
}

// attachmentCreate is POST /attachments with a connector (volume/api.py
// attachment_create, _attachment_reserve; manager attachment_update,
// _connection_create).
func (f *Fake) attachmentCreate(ctx context.Context, volumeID string, cn cinder.Connector) (id string, conn cinder.Connection, err error) {
	call := &Call{Op: OpAttachmentCreate, VolumeID: volumeID, Connector: &cn}
	op := opWhat(OpAttachmentCreate)
	err = f.do(ctx, levelStep, call, func() error {
		f.mu.Lock()
		v, ok := f.volumes[volumeID]
		if !ok {
			f.mu.Unlock()
			return notFound(op, volumeID)
		}
		status := v.vol.Status
		if strings.Contains(status, "error") {
			f.mu.Unlock()
			return cinder.NewError(op, volumeID, cinder.ErrInvalid, fmt.Sprintf(
				"Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume %s currently has a status of: %s", volumeID, status))
		}
		allowed, allowedText := []string{cinder.StatusAvailable, "downloading"}, "available or downloading"
		if v.vol.Multiattach {
			allowed, allowedText = []string{cinder.StatusAvailable, cinder.StatusInUse, "downloading"}, "available or in-use or downloading"
		}
		if !slices.Contains(allowed, status) {
			f.mu.Unlock()
			return cinder.NewError(op, volumeID, cinder.ErrInvalid, fmt.Sprintf(
				"Invalid volume: Volume %s status must be %s to reserve, but the current status is %s.", volumeID, allowedText, status))
		}
		f.seq++
		a := &attachment{id: fmt.Sprintf("00000000-0000-4000-a000-%012d", f.seq), status: cinder.AttachReserved, method: cinder.ExportAttachments}
		v.attachments = append(v.attachments, a)
		v.vol.Status = cinder.StatusReserved
		call.ExportID = a.id
		f.mu.Unlock()

		// The backend export, a synchronous RPC to the volume service: the
		// caller's context no longer matters.
		inner := &Call{Op: OpInitializeConnection, VolumeID: volumeID, ExportID: a.id, Connector: &cn}
		berr := f.do(context.WithoutCancel(ctx), levelInner, inner, func() error {
			f.mu.Lock()
			defer f.mu.Unlock()
			v, ok := f.volumes[volumeID]
			if !ok || v.find(a.id) == nil {
				return attachmentNotFound(op, volumeID, a.id)
			}
			c := copyConnector(cn)
			a.status, a.host, a.connector = cinder.AttachAttaching, cn.Host, &c
			a.conn = f.connectionFor(v)
			v.vol.Status = cinder.StatusAttaching
			conn = a.conn
			return nil
		})
		if berr == nil {
			id = a.id
			return nil
		}
		if f.unreachable() {
			return berr // the connection dropped with the request
		}
		f.mu.Lock()
		applied := a.status == cinder.AttachAttaching
		f.mu.Unlock()
		if applied { // the RPC's answer was lost: the API gives up
			return cinder.NewError(op, volumeID, cinder.ErrUnavailable, "Unable to create attachment for volume.")
		}
		return cinder.NewError(op, volumeID, cinder.ErrUnavailable, fmt.Sprintf(
			"Unable to create attachment for volume (Bad or unexpected response from the storage volume backend API: Driver initialize connection failed (error: %v).).", berr))
	})
	if err != nil {
		return "", cinder.Connection{}, err
	}
	return id, conn, nil
}

// attachmentComplete is os-complete: attachment attached, volume in-use.
func (f *Fake) attachmentComplete(ctx context.Context, volumeID, id string) error {
	call := &Call{Op: OpAttachmentComplete, VolumeID: volumeID, ExportID: id}
	return f.do(ctx, levelStep, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, a := f.findAttachment(id)
		if a == nil {
			return attachmentNotFound(opWhat(OpAttachmentComplete), volumeID, id)
		}
		a.status = cinder.AttachAttached
		v.vol.Status = cinder.StatusInUse
		return nil
	})
}

// attachmentDelete is DELETE /attachments/{id}, in any status: the backend
// export goes, the volume status follows the remaining attachments. A
// missing attachment is success (the real client maps the 404).
func (f *Fake) attachmentDelete(ctx context.Context, volumeID, id string) error {
	call := &Call{Op: OpAttachmentDelete, VolumeID: volumeID, ExportID: id}
	return f.do(ctx, levelStep, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, a := f.findAttachment(id)
		if a == nil {
			return nil
		}
		v.finishDetach(id)
		return nil
	})
}

// legacyStep runs a legacy volume action on an existing volume.
func (f *Fake) legacyStep(ctx context.Context, call *Call, apply func(v *volume) error) error {
	return f.do(ctx, levelStep, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[call.VolumeID]
		if !ok {
			return notFound(opWhat(call.Op), call.VolumeID)
		}
		return apply(v)
	})
}

// reserve is os-reserve: available (or in-use, multiattach) -> attaching,
// with no attachment record.
func (f *Fake) reserve(ctx context.Context, volumeID string) error {
	return f.legacyStep(ctx, &Call{Op: OpReserve, VolumeID: volumeID}, func(v *volume) error {
		allowed, allowedText := []string{cinder.StatusAvailable}, "available"
		if v.vol.Multiattach {
			allowed, allowedText = []string{cinder.StatusAvailable, cinder.StatusInUse}, "available or in-use"
		}
		if !slices.Contains(allowed, v.vol.Status) {
			return cinder.NewError(opWhat(OpReserve), volumeID, cinder.ErrInvalid, fmt.Sprintf(
				"Invalid volume: Volume status must be %s to reserve, but the status is %s.", allowedText, v.vol.Status))
		}
		v.vol.Status = cinder.StatusAttaching
		return nil
	})
}

// unreserveStep is os-unreserve (a no-op unless attaching).
func (f *Fake) unreserveStep(ctx context.Context, volumeID string) error {
	return f.legacyStep(ctx, &Call{Op: OpUnreserve, VolumeID: volumeID}, func(v *volume) error {
		v.unreserve()
		return nil
	})
}

// initializeConnection is os-initialize_connection: the backend exports the
// volume to the connector; no status changes.
func (f *Fake) initializeConnection(ctx context.Context, volumeID string, cn cinder.Connector) (conn cinder.Connection, err error) {
	err = f.legacyStep(ctx, &Call{Op: OpInitializeConnection, VolumeID: volumeID, Connector: &cn}, func(v *volume) error {
		if v.vol.Status == "maintenance" {
			return cinder.NewError(opWhat(OpInitializeConnection), volumeID, cinder.ErrInvalid,
				"Invalid volume: The volume connection cannot be initialized in maintenance mode.")
		}
		v.legacyTargets = append(v.legacyTargets, copyConnector(cn))
		conn = f.connectionFor(v)
		return nil
	})
	return conn, err
}

// attach is os-attach with host_name: an attached record, volume in-use.
// Like Cinder's manager, a volume that already has an attachment for the
// host gets that one back.
func (f *Fake) attach(ctx context.Context, volumeID string, cn cinder.Connector, conn cinder.Connection) (id string, err error) {
	call := &Call{Op: OpAttach, VolumeID: volumeID, Connector: &cn}
	err = f.legacyStep(ctx, call, func(v *volume) error {
		if v.vol.Status == "maintenance" {
			return cinder.NewError(opWhat(OpAttach), volumeID, cinder.ErrInvalid,
				"Invalid volume: The volume cannot be attached in maintenance mode.")
		}
		for _, a := range v.attachments {
			if a.host == cn.Host {
				v.vol.Status = cinder.StatusInUse
				id, call.ExportID = a.id, a.id
				return nil
			}
		}
		if v.vol.Status == cinder.StatusInUse && !v.vol.Multiattach {
			return cinder.NewError(opWhat(OpAttach), volumeID, cinder.ErrInvalid,
				"Error attaching volume - InvalidVolume: Invalid volume: volume is already attached and multiple attachments are not enabled")
		}
		f.seq++
		a := &attachment{id: fmt.Sprintf("00000000-0000-4000-a000-%012d", f.seq), status: cinder.AttachAttached,
			method: cinder.ExportLegacy, host: cn.Host, conn: conn}
		v.attachments = append(v.attachments, a)
		v.vol.Status = cinder.StatusInUse
		id, call.ExportID = a.id, a.id
		return nil
	})
	return id, err
}

// beginDetaching is os-begin_detaching: in-use and attached -> detaching.
func (f *Fake) beginDetaching(ctx context.Context, volumeID string) error {
	return f.legacyStep(ctx, &Call{Op: OpBeginDetaching, VolumeID: volumeID}, func(v *volume) error {
		attached := slices.ContainsFunc(v.attachments, func(a *attachment) bool { return a.status == cinder.AttachAttached })
		if v.vol.Status != cinder.StatusInUse || !attached {
			return cinder.NewError(opWhat(OpBeginDetaching), volumeID, cinder.ErrInvalid,
				"Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
		}
		v.vol.Status = cinder.StatusDetaching
		return nil
	})
}

// rollDetaching is os-roll_detaching: detaching -> in-use, else a no-op.
func (f *Fake) rollDetaching(ctx context.Context, volumeID string) error {
	return f.legacyStep(ctx, &Call{Op: OpRollDetaching, VolumeID: volumeID}, func(v *volume) error {
		if v.vol.Status == cinder.StatusDetaching {
			v.vol.Status = cinder.StatusInUse
		}
		return nil
	})
}

// terminateConnection is os-terminate_connection: the backend stops
// exporting to the connector (same host and initiator), then Cinder
// unreserves (attaching -> in-use or available).
func (f *Fake) terminateConnection(ctx context.Context, volumeID string, cn cinder.Connector) error {
	return f.legacyStep(ctx, &Call{Op: OpTerminateConnection, VolumeID: volumeID, Connector: &cn}, func(v *volume) error {
		v.legacyTargets = slices.DeleteFunc(v.legacyTargets, func(c cinder.Connector) bool { return sameConnector(c, cn) })
		v.unreserve()
		return nil
	})
}

// detach is os-detach with an attachment id: the backend export is removed
// (remove_export), the record goes, the status follows the remaining
// attachments. A missing attachment only sets the status.
func (f *Fake) detach(ctx context.Context, volumeID, id string) error {
	return f.legacyStep(ctx, &Call{Op: OpDetach, VolumeID: volumeID, ExportID: id}, func(v *volume) error {
		if v.find(id) != nil {
			v.legacyTargets = nil
		}
		v.finishDetach(id)
		return nil
	})
}

// Unexport implements cinder.Client. Attachments (ref.Method, or "" with
// the fake's method attachments): AttachmentDelete, in any status. Legacy:
// BeginDetaching (when in-use), TerminateConnection with cn (on failure
// RollDetaching), Detach. A missing volume or export is success.
func (f *Fake) Unexport(ctx context.Context, volumeID string, ref cinder.ExportRef, cn cinder.Connector) error {
	call := &Call{Op: OpUnexport, VolumeID: volumeID, ExportID: ref.ID, Method: ref.Method, Connector: &cn}
	return f.do(ctx, levelCall, call, func() error {
		if volumeID == "" || ref.ID == "" {
			return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid, "volume id and export id are required")
		}
		method := ref.Method
		if method == "" {
			f.mu.Lock()
			method = f.method
			f.mu.Unlock()
		}
		var err error
		switch method {
		case cinder.ExportAttachments:
			err = f.attachmentDelete(ctx, volumeID, ref.ID)
		case cinder.ExportLegacy:
			err = f.unexportLegacy(ctx, volumeID, ref.ID, cn)
		default:
			return cinder.NewError("unexport volume", volumeID, cinder.ErrInvalid, "unknown export method "+string(method))
		}
		if errors.Is(err, cinder.ErrNotFound) && !errors.Is(err, cinder.ErrUnavailable) {
			return nil
		}
		return err
	})
}

func (f *Fake) unexportLegacy(ctx context.Context, volumeID, id string, cn cinder.Connector) error {
	// what the real client reads first (GET /volumes/{id})
	f.mu.Lock()
	v, ok := f.volumes[volumeID]
	var a *attachment
	var status string
	if ok {
		a, status = v.find(id), v.vol.Status
	}
	f.mu.Unlock()
	if a == nil {
		return nil
	}
	began := false
	if status == cinder.StatusInUse {
		if err := f.beginDetaching(ctx, volumeID); err != nil {
			return err
		}
		began = true
	}
	if err := f.terminateConnection(ctx, volumeID, cn); err != nil {
		if began {
			rbCtx, cancel := cinder.Detached(ctx, time.Minute)
			defer cancel()
			if rb := f.rollDetaching(rbCtx, volumeID); rb != nil {
				return errors.Join(err, fmt.Errorf("undo os-begin_detaching: %w", rb))
			}
		}
		return err
	}
	return f.detach(ctx, volumeID, id)
}

// ListExports implements cinder.Client: every attachment, whatever its
// status, oldest first, Host the connector's host (or os-attach's
// host_name; "" for an attachment whose backend export failed).
func (f *Fake) ListExports(ctx context.Context, volumeID string) (out []cinder.Attachment, err error) {
	call := &Call{Op: OpListExports, VolumeID: volumeID}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[volumeID]
		if !ok {
			return notFound("list exports", volumeID)
		}
		out = v.exports()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClearExports implements cinder.Client: RollDetaching when detaching, then
// AttachmentDelete (legacy method: Detach) for every attachment, oldest
// first, then, for a legacy os-reserve without a record, TerminateConnection
// with cn and Unreserve. It stops at the first failing step.
func (f *Fake) ClearExports(ctx context.Context, volumeID string, cn cinder.Connector) (out *cinder.Volume, err error) {
	call := &Call{Op: OpClearExports, VolumeID: volumeID, Connector: &cn}
	err = f.do(ctx, levelCall, call, func() error {
		if volumeID == "" {
			return cinder.NewError("clear exports", "", cinder.ErrInvalid, "empty volume id")
		}
		f.mu.Lock()
		v, ok := f.volumes[volumeID]
		if !ok {
			f.mu.Unlock()
			return notFound("clear exports", volumeID)
		}
		status, method, reserved := v.vol.Status, f.method, v.legacyReserve()
		ids := make([]string, len(v.attachments))
		for i, a := range v.attachments {
			ids[i] = a.id
		}
		f.mu.Unlock()

		if status == cinder.StatusDetaching {
			if err := f.rollDetaching(ctx, volumeID); err != nil {
				return err
			}
		}
		for _, id := range ids {
			var err error
			if method == cinder.ExportLegacy {
				err = f.detach(ctx, volumeID, id)
			} else {
				err = f.attachmentDelete(ctx, volumeID, id)
			}
			if err != nil {
				return err
			}
		}
		if reserved {
			if err := f.terminateConnection(ctx, volumeID, cn); err != nil {
				return err
			}
			if err := f.unreserveStep(ctx, volumeID); err != nil {
				return err
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok = f.volumes[volumeID]
		if !ok {
			return notFound("clear exports", volumeID)
		}
		s := v.snapshot()
		out = &s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
