package cinder

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is; every error a Client returns
// wraps at most one of the request sentinels (ErrNotFound ... ErrUnavailable)
// plus, when a context ended, the context's error.
var (
	// ErrNotFound: the volume, attachment or resource does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrQuotaExceeded: Cinder refused for lack of quota (413); the *Error
	// carries Cinder's message.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrConflict: the request conflicts with the resource's state (409), or
	// several volumes carry one name.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: Cinder rejected the request (400); the *Error carries
	// Cinder's message.
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthorized: authentication or authorisation failed (401, 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: Cinder could not be reached or failed (5xx, 429,
	// connection refused, timeouts). Retrying later may succeed.
	ErrUnavailable = errors.New("cinder unavailable")
	// ErrVolumeError: the volume went to an error status; see
	// *VolumeStatusError.
	ErrVolumeError = errors.New("volume in error status")
)

// Error is a failed Cinder operation: which operation, on which volume, what
// kind of failure (a sentinel) and Cinder's own message. It never carries a
// URL, a header, a token or a credential.
type Error struct {
	Op      string // what was attempted, e.g. "create volume"
	Volume  string // volume id, or name when there is no id yet
	Kind    error  // one of the sentinels
	Message string // Cinder's message, when it gave one
	Err     error  // an additional cause, e.g. context.DeadlineExceeded
}

// NewError returns an *Error; for implementations of Client.
func NewError(op, volume string, kind error, message string) *Error {
	return &Error{Op: op, Volume: volume, Kind: kind, Message: message}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Volume != "" {
		b.WriteString(" ")
		b.WriteString(e.Volume)
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is see both the sentinel and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// VolumeStatusError reports a volume that reached an error status while the
// provisioner waited for something else.
type VolumeStatusError struct {
	VolumeID string
	Status   string   // the error status, e.g. "error"
	Wanted   []string // what was awaited
}

func (e *VolumeStatusError) Error() string {
	if len(e.Wanted) == 0 {
		return fmt.Sprintf("volume %s went to status %s", e.VolumeID, e.Status)
	}
	return fmt.Sprintf("volume %s went to status %s while waiting for %s", e.VolumeID, e.Status, strings.Join(e.Wanted, " or "))
}

// Is makes errors.Is(err, ErrVolumeError) true.
func (e *VolumeStatusError) Is(target error) bool { return target == ErrVolumeError }

// DuplicateNameError reports several volumes with the name FindVolumeByName
// looked for.
type DuplicateNameError struct {
	Name string
	IDs  []string // oldest first, ties by id
}

func (e *DuplicateNameError) Error() string {
	return fmt.Sprintf("find volume %s: %d volumes carry this name (%s)", e.Name, len(e.IDs), strings.Join(e.IDs, ", "))
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *DuplicateNameError) Is(target error) bool { return target == ErrConflict }
