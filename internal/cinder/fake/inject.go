package fake

import (
	"context"
	"slices"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Operation names, as used by FailNext, Fail, LoseAnswer, CrashAt, Hook and
// the call logs. The first group are the cinder.Client methods (Calls, Ops);
// the second the Cinder requests Export, Unexport and ClearExports are made
// of (Steps, StepOps).
const (
	OpCreateVolume         = "CreateVolume"
	OpGetVolume            = "GetVolume"
	OpFindVolumeByName     = "FindVolumeByName"
	OpWaitForVolumeStatus  = "WaitForVolumeStatus"
	OpDeleteVolume         = "DeleteVolume"
	OpWaitForVolumeDeleted = "WaitForVolumeDeleted"
	OpExport               = "Export"
	OpUnexport             = "Unexport"
	OpListExports          = "ListExports"
	OpClearExports         = "ClearExports"
	OpListVolumes          = "ListVolumes"
	OpServiceInfo          = "ServiceInfo"
	OpUpdateMetadata       = "UpdateVolumeMetadata"

	// Attachments API (export method attachments).
	OpAttachmentCreate   = "AttachmentCreate"   // POST /attachments with the connector
	OpAttachmentComplete = "AttachmentComplete" // POST /attachments/{id}/action os-complete
	OpAttachmentDelete   = "AttachmentDelete"   // DELETE /attachments/{id}

	// Legacy volume actions (export method legacy). OpInitializeConnection
	// is also the backend export inside AttachmentCreate: a failure injected
	// there is the driver failing, which leaves the attachment and the
	// volume reserved and makes AttachmentCreate answer 500.
	OpReserve              = "Reserve"              // os-reserve
	OpInitializeConnection = "InitializeConnection" // os-initialize_connection
	OpAttach               = "Attach"               // os-attach
	OpBeginDetaching       = "BeginDetaching"       // os-begin_detaching
	OpRollDetaching        = "RollDetaching"        // os-roll_detaching
	OpTerminateConnection  = "TerminateConnection"  // os-terminate_connection
	OpDetach               = "Detach"               // os-detach
	OpUnreserve            = "Unreserve"            // os-unreserve
)

// what names an operation in the *cinder.Error it fails with, as the real
// client does.
var what = map[string]string{
	OpCreateVolume:         "create volume",
	OpGetVolume:            "get volume",
	OpFindVolumeByName:     "find volume",
	OpWaitForVolumeStatus:  "wait for volume",
	OpDeleteVolume:         "delete volume",
	OpWaitForVolumeDeleted: "wait for volume deletion",
	OpExport:               "export volume",
	OpUnexport:             "unexport volume",
	OpListExports:          "list exports",
	OpClearExports:         "clear exports",
	OpListVolumes:          "list volumes",
	OpServiceInfo:          "read service info",
	OpUpdateMetadata:       "update volume metadata",
	OpGetSnapshot:          "get snapshot",
	OpCreateSnapshot:       "create snapshot",
	OpListSnapshots:        "list snapshots",
	OpDeleteSnapshot:       "delete snapshot",
	OpExtendVolume:         "extend volume",
	OpProjectLimits:        "read project limits",
	OpAvailabilityZones:    "list availability zones",
	OpPools:                "read scheduler pool stats",
	OpVolumeTypeBackends:   "list volume types",
	OpAttachmentCreate:     "export volume (create attachment)",
	OpAttachmentComplete:   "export volume (complete attachment)",
	OpAttachmentDelete:     "unexport volume (delete attachment)",
	OpReserve:              "export volume (os-reserve)",
	OpInitializeConnection: "export volume (os-initialize_connection)",
	OpAttach:               "export volume (os-attach)",
	OpBeginDetaching:       "unexport volume (os-begin_detaching)",
	OpRollDetaching:        "os-roll_detaching",
	OpTerminateConnection:  "os-terminate_connection",
	OpDetach:               "os-detach",
	OpUnreserve:            "os-unreserve",
}

func opWhat(op string) string {
	if s, ok := what[op]; ok {
		return s
	}
	return op
}

// Call is one recorded call.
type Call struct {
	Op       string
	VolumeID string // id argument or created/affected volume
	Name     string // CreateVolume / FindVolumeByName
	// ExportID: Export's result, Unexport's ref.ID, the attachment a step
	// acts on.
	ExportID string
	// Method: Export's method, Unexport's ref.Method as passed ("" means
	// the fake's).
	Method    cinder.ExportMethod
	Connector *cinder.Connector // Export / Unexport / ClearExports and steps taking one
	Request   *cinder.CreateRequest
	// SnapshotID: CreateSnapshot's result, DeleteSnapshot's argument.
	SnapshotID string
	Err        error // what the call returned
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
	if c.SnapshotID != "" {
		s += " " + c.SnapshotID
	}
	return s
}

// Hook runs before an operation or step (after injected failures); a non-nil
// error fails the call with that error and the call changes nothing. Hooks
// run without the fake's lock: they may call the fake (SetStatus, Volume,
// ...).
type Hook func(ctx context.Context, call Call) error

type injectKind int

const (
	injectFail  injectKind = iota // fails, changes nothing
	injectLose                    // applied, then fails
	injectCrash                   // applied, then every call fails until Restart
)

type injection struct {
	kind injectKind
	err  error
}

// FailNext makes the next call of op return err; the call changes nothing.
// Injections queue up per op in the order given (FailNext twice fails the
// next two calls; FailNext then LoseAnswer fails one, then loses one answer).
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[op] = append(f.inject[op], injection{injectFail, err})
}

// Fail makes every call of op return err until Fail(op, nil); the calls
// change nothing. Queued injections of op (FailNext, LoseAnswer, CrashAt)
// come first.
func (f *Fake) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failAlways, op)
		return
	}
	f.failAlways[op] = err
}

// LoseAnswer makes the next call of op take effect in Cinder and then
// return err, as when the answer is lost (a timeout after Cinder applied the
// request). A nil err is an ErrUnavailable *cinder.Error. For CreateVolume
// the volume exists but the caller got an error; for AttachmentCreate the
// attachment exists but the caller never learnt its id.
func (f *Fake) LoseAnswer(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[op] = append(f.inject[op], injection{injectLose, err})
}

// CrashAt makes the next call of op take effect in Cinder; then it and every
// later call of any op fail with an ErrUnavailable *cinder.Error
// ("connection refused") and change nothing, until Restart. It models the
// caller's process dying, or Cinder going away, right after the request:
// no undo reaches Cinder.
func (f *Fake) CrashAt(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject[op] = append(f.inject[op], injection{kind: injectCrash})
}

// Restart ends a crash caused by CrashAt: calls reach Cinder again, which
// kept every state the crash left.
func (f *Fake) Restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashed = false
}

// Crashed reports whether a CrashAt crash is in effect.
func (f *Fake) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// SetDown makes Cinder unreachable (true) or reachable again (false): while
// down every call fails with an ErrUnavailable *cinder.Error ("connection
// refused"), changes nothing and consumes no injection.
func (f *Fake) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Hook installs (nil: removes) a hook for op; step names (OpAttachmentCreate,
// OpReserve, ...) work too.
func (f *Fake) Hook(op string, h Hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.hooks, op)
		return
	}
	f.hooks[op] = h
}

// Calls returns the log of cinder.Client calls (Export, Unexport, ... but
// not their steps), each recorded when it returned.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Ops returns the operations of Calls, in order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Op
	}
	return out
}

// Steps returns every call and every Cinder request the composite calls
// made, in the order they started: e.g. Export, AttachmentCreate,
// AttachmentComplete. Each entry carries what it returned. The backend step
// inside AttachmentCreate and the polls of the waits are not logged.
func (f *Fake) Steps() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Call, len(f.steps))
	for i, c := range f.steps {
		out[i] = *c
	}
	return out
}

// StepOps returns the operations of Steps, in order.
func (f *Fake) StepOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.steps))
	for i, c := range f.steps {
		out[i] = c.Op
	}
	return out
}

// ResetCalls empties both call logs.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
	f.steps = nil
}

// level says where a call is logged.
type level int

const (
	levelCall  level = iota // a cinder.Client method: Calls and Steps
	levelStep               // a Cinder request inside one: Steps
	levelInner              // inside Cinder (the backend export): not logged
)

// refused is what every call gets while Cinder is down or after a crash.
func refused(call *Call) error {
	vol := call.VolumeID
	if vol == "" {
		vol = call.Name
	}
	return cinder.NewError(opWhat(call.Op), vol, cinder.ErrUnavailable, "connection refused")
}

// do runs one call or step: reachability, injected failures, the hook, the
// context, then apply (which takes the lock itself and may set call fields),
// then a lost answer or a crash. It logs the call as lvl says.
func (f *Fake) do(ctx context.Context, lvl level, call *Call, apply func() error) (err error) {
	var entry *Call
	if lvl != levelInner {
		cinder.CountCall(ctx) // one request, as the real client counts
		f.mu.Lock()
		entry = new(Call)
		*entry = *call
		f.steps = append(f.steps, entry)
		f.mu.Unlock()
	}
	defer func() {
		if lvl == levelInner {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		*entry = *call
		entry.Err = err
		if lvl == levelCall {
			f.calls = append(f.calls, *entry)
		}
	}()

	f.mu.Lock()
	if f.down || f.crashed {
		f.mu.Unlock()
		return refused(call)
	}
	if q := f.inject[call.Op]; len(q) > 0 && q[0].kind == injectFail {
		f.inject[call.Op] = q[1:]
		f.mu.Unlock()
		return q[0].err
	} else if e, ok := f.failAlways[call.Op]; ok && len(q) == 0 {
		f.mu.Unlock()
		return e
	}
	hook := f.hooks[call.Op]
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, *call); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	var inj *injection
	f.mu.Lock()
	if f.down || f.crashed { // a hook may have crashed or downed it
		f.mu.Unlock()
		return refused(call)
	}
	if q := f.inject[call.Op]; len(q) > 0 && q[0].kind != injectFail {
		inj, f.inject[call.Op] = &q[0], q[1:]
	}
	f.mu.Unlock()

	err = apply()
	if inj == nil {
		return err
	}
	if inj.kind == injectCrash {
		f.mu.Lock()
		f.crashed = true
		f.mu.Unlock()
		return refused(call)
	}
	if inj.err == nil {
		vol := call.VolumeID
		if vol == "" {
			vol = call.Name
		}
		return cinder.NewError(opWhat(call.Op), vol, cinder.ErrUnavailable, "no answer (timeout)")
	}
	return inj.err
}
