package fake

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// OpExtendVolume is the operation name of ExtendVolume (os-extend).
const OpExtendVolume = "ExtendVolume"

// Outcomes of an extend in the volume service, as SetExtendResult sets them.
const (
	// ExtendSucceeds: the backend grows the volume (default).
	ExtendSucceeds = "succeeds"
	// ExtendDriverFails: the driver fails; the volume goes error_extending
	// at its old size (volume/manager.py extend_volume).
	ExtendDriverFails = "driver-fails"
	// ExtendNoValidBackend: the scheduler finds no backend with room for
	// the new size; the volume goes back to its previous status at its old
	// size (scheduler/manager.py extend_volume).
	ExtendNoValidBackend = "no-valid-backend"
)

// extends is the fake's extend state: jobs in the volume service by volume
// id, and the settings. The zero value offers microversion 3.70, extends
// online, succeeds at the first poll and has no gigabytes quota.
type extends struct {
	jobs         map[string]*extendJob
	maxMV        string // "": 3.70
	noOnline     bool   // the backend reports online_extend_support False
	result       string // "": ExtendSucceeds
	polls        int    // GetVolume polls an extend stays extending
	gigabytes    int    // 0: no gigabytes quota
	perVolumeMax int    // 0: no per_volume_gigabytes limit
	userMessages []string
}

type extendJob struct {
	prev  string // previous_status
	to    int    // new_size
	polls int
}

func (e *extends) maxMicroversion() string {
	if e.maxMV == "" {
		return "3.70"
	}
	return e.maxMV
}

// microversion is what the real client would send for maxMicroversion.
func (e *extends) microversion() string {
	switch max := e.maxMicroversion(); {
	case mvAtLeast(max, "3.54"):
		return "3.54"
	case mvAtLeast(max, "3.44"):
		return "3.44"
	}
	return "3.0"
}

func mvAtLeast(have, want string) bool {
	split := func(s string) (int, int) {
		x, y, _ := strings.Cut(s, ".")
		a, _ := strconv.Atoi(x)
		b, _ := strconv.Atoi(y)
		return a, b
	}
	hx, hy := split(have)
	wx, wy := split(want)
	return hx > wx || hx == wx && hy >= wy
}

// SetMaxMicroversion sets the highest microversion the fake's Cinder offers
// (default "3.70"), which ServiceInfo reports; below 3.42 an in-use volume
// cannot be extended.
func (f *Fake) SetMaxMicroversion(mv string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.maxMV = mv
}

// SetOnlineExtend sets whether the backend reports online_extend_support
// (default true, Cinder's default too). Without it the scheduler refuses
// to extend an attached volume: the request is accepted (202), the volume
// goes extending and back to in-use at its old size.
func (f *Fake) SetOnlineExtend(online bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.noOnline = !online
}

// SetExtendResult sets how extends end in the volume service:
// ExtendSucceeds (default), ExtendDriverFails, ExtendNoValidBackend.
func (f *Fake) SetExtendResult(result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.result = result
}

// SetExtendingPolls sets how many GetVolume polls an extend stays
// "extending" before it ends (default 0: the first poll sees the end).
func (f *Fake) SetExtendingPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.polls = n
}

// SetGigabytesQuota limits the sum of the project's volume sizes (0: no
// limit); a create or an extend beyond it is Cinder's 413
// VolumeSizeExceedsAvailableQuota, the volume left as it was.
func (f *Fake) SetGigabytesQuota(gib int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.gigabytes = gib
}

// SetPerVolumeGigabytes sets per_volume_gigabytes (0: no limit); an extend
// beyond it is Cinder's 413 VolumeSizeExceedsLimit.
func (f *Fake) SetPerVolumeGigabytes(gib int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ext.perVolumeMax = gib
}

// UserMessages returns the user messages Cinder recorded for failed
// extends (GET /messages), oldest first.
func (f *Fake) UserMessages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ext.userMessages...)
}

// ExtendVolume implements cinder.Client as volume_actions.py _extend and
// volume/api.py _extend do: the request changes nothing when refused; when
// accepted the volume is extending and ends as SetExtendResult,
// SetOnlineExtend and SetExtendingPolls say, seen by GetVolume polls.
func (f *Fake) ExtendVolume(ctx context.Context, id string, newSizeGiB int) error {
	call := &Call{Op: OpExtendVolume, VolumeID: id}
	return f.do(ctx, levelCall, call, func() error {
		const op = "extend volume"
		if id == "" || newSizeGiB <= 0 {
			return cinder.NewError(op, id, cinder.ErrInvalid, "a volume id and a positive size are required")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		v, ok := f.volumes[id]
		if !ok {
			return notFound(op, id)
		}
		attached := v.vol.Status == cinder.StatusInUse
		if attached && !mvAtLeast(f.ext.maxMicroversion(), cinder.MicroversionExtendInUse) {
			// The real client refuses before sending (openstack/extend.go).
			return &cinder.Error{Op: op, Volume: id, Kind: cinder.ErrInvalid, Err: cinder.ErrOnlineExtendUnsupported,
				Message: "the volume is in-use and this Cinder offers microversions up to " + f.ext.maxMicroversion()}
		}
		if newSizeGiB <= v.vol.SizeGiB {
			return cinder.NewError(op, id, cinder.ErrInvalid, fmt.Sprintf(
				"Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.vol.SizeGiB, newSizeGiB))
		}
		expected := cinder.StatusAvailable
		if attached {
			expected = cinder.StatusInUse
		}
		if v.vol.Status != expected {
			return cinder.NewError(op, id, cinder.ErrInvalid, fmt.Sprintf(
				"Invalid volume: Volume %s status must be '{'status': '%s'}' to extend, currently %s.", id, expected, v.vol.Status))
		}
		if max := f.ext.perVolumeMax; max > 0 && newSizeGiB > max {
			return cinder.NewError(op, id, cinder.ErrQuotaExceeded, fmt.Sprintf(
				"VolumeSizeExceedsLimit: Requested volume size %dG is larger than maximum allowed limit %dG.", newSizeGiB, max))
		}
		if quota := f.ext.gigabytes; quota > 0 {
			used := 0
			for _, o := range f.volumes {
				used += o.vol.SizeGiB
			}
			if inc := newSizeGiB - v.vol.SizeGiB; used+inc > quota {
				return cinder.NewError(op, id, cinder.ErrQuotaExceeded, fmt.Sprintf(
					"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", inc, quota, used))
			}
		}
		if f.ext.jobs == nil {
			f.ext.jobs = map[string]*extendJob{}
		}
		f.ext.jobs[id] = &extendJob{prev: v.vol.Status, to: newSizeGiB, polls: f.ext.polls}
		v.vol.Status = cinder.StatusExtending
		return nil
	})
}

// advanceExtendLocked is one GetVolume poll of an extending volume. A
// volume set extending by SetStatus has no job and stays extending.
func (f *Fake) advanceExtendLocked(v *volume) {
	job, ok := f.ext.jobs[v.vol.ID]
	if !ok {
		return
	}
	if job.polls > 0 {
		job.polls--
		return
	}
	delete(f.ext.jobs, v.vol.ID)
	result := f.ext.result
	if result == ExtendSucceeds || result == "" {
		if f.ext.noOnline && v.hasAttachments() {
			result = ExtendNoValidBackend // capabilities_filter.py
		}
	}
	switch result {
	case ExtendDriverFails:
		v.vol.Status = cinder.StatusErrorExtending
		f.ext.userMessages = append(f.ext.userMessages, "extend volume: Volume driver failed to extend volume "+v.vol.ID+".")
	case ExtendNoValidBackend:
		v.vol.Status = job.prev
		f.ext.userMessages = append(f.ext.userMessages, "extend volume: No valid backend was found for volume "+v.vol.ID+".")
	default:
		v.vol.SizeGiB = job.to
		v.vol.Status = cinder.StatusAvailable
		if v.hasAttachments() {
			v.vol.Status = cinder.StatusInUse
		}
	}
}
