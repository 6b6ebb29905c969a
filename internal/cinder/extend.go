package cinder

import "errors"

// What Cinder 21 (Zed) does on os-extend, as the resizer relies on it:
//
//   - api/contrib/volume_actions.py _extend: with microversion 3.42
//     (VOLUME_EXTEND_INUSE) an in-use volume goes to extend_attached_volume,
//     anything else to extend, which expects available: an in-use volume
//     below 3.42 is a 400 "Volume ... status must be '{'status':
//     'available'}' to extend, currently in-use".
//   - volume/api.py _extend: new_size <= size is a 400 InvalidInput ("New
//     size for extend must be greater than current size"); the status goes
//     extending (previous_status kept) by a conditional update from
//     available or in-use, else 400 InvalidVolume; the per-volume size limit
//     and the gigabytes reservation are checked after it and roll the status
//     back on failure: 413 (VolumeSizeExceedsLimit,
//     VolumeSizeExceedsAvailableQuota) leaves the volume as it was.
//   - scheduler/manager.py extend_volume: no backend passes the filters
//     (capabilities_filter.py: a pool reporting online_extend_support False
//     refuses an attached volume; the default is True) -> the status goes
//     back to previous_status, the size stays, a user message is recorded.
//   - volume/manager.py extend_volume: a driver failure -> error_extending
//     (size unchanged, quota rolled back, user message DRIVER_FAILED_EXTEND);
//     success -> size = new_size and status in-use when the volume has
//     attachments, else available. The LVM driver then re-reads the target
//     (targets/iscsi.py extend_target: tgt-admin --update IQN -f), so a
//     tgt target shows the new size; a failure there is logged only.
//   - Nothing in Cinder leaves error_extending by itself: an admin resets
//     the status (cinder reset-state --state in-use ID); DELETE is allowed
//     from error_extending.

// Statuses of an extend.
const (
	StatusExtending      = "extending"
	StatusErrorExtending = "error_extending"
)

// MicroversionExtendInUse is the microversion Cinder needs to extend an
// in-use volume (VOLUME_EXTEND_INUSE).
const MicroversionExtendInUse = "3.42"

// ErrOnlineExtendUnsupported: the volume is in-use and this Cinder offers no
// microversion 3.42, so it cannot be extended without detaching it. It comes
// wrapped in an *Error of kind ErrInvalid.
var ErrOnlineExtendUnsupported = errors.New("extending an in-use volume needs microversion " + MicroversionExtendInUse)
