package snapshotter

import corev1 "k8s.io/api/core/v1"

// outcome is how one pass over a VolumeSnapshot or a content ended. Every
// return of a sync names one; what follows from it (requeue, the Event's
// type, the metric) is decided here and nowhere else.
type outcome int

const (
	// idle: nothing to do: not ours, already done, or waiting for someone
	// else (external-snapshotter's controller, a deletion to be asked).
	idle outcome = iota
	// gone: the object was deleted; nothing is left to do.
	gone
	// contentCreated: the VolumeSnapshotContent snapcontent-<uid> exists.
	contentCreated
	// ready: the Cinder snapshot is available and the content's status
	// says so (external-snapshotter's controller marks the VolumeSnapshot).
	ready
	// deleted: the Cinder snapshot is gone (Delete) or kept (Retain) and
	// the content's finalizers are removed.
	deleted
	// inProgress: Cinder is still creating or deleting; look again soon
	// (no backoff).
	inProgress
	// retry: a step failed for a reason that may pass (Cinder unreachable,
	// quota, a volume Cinder cannot snapshot now, an error snapshot
	// removed, an API conflict); the next pass starts from what exists.
	retry
	// refused: the VolumeSnapshot cannot be served as asked (its claim is
	// not of ours, not bound, being deleted); not tried again until it
	// changes.
	refused
)

func (o outcome) String() string {
	switch o {
	case idle:
		return "idle"
	case gone:
		return "gone"
	case contentCreated:
		return "content_created"
	case ready:
		return "ready"
	case deleted:
		return "deleted"
	case inProgress:
		return "in_progress"
	case retry:
		return "retry"
	case refused:
		return "refused"
	}
	return "unknown"
}

// eventType is the type of the Event an outcome records ("" for none).
func (o outcome) eventType() string {
	switch o {
	case contentCreated, ready, deleted:
		return corev1.EventTypeNormal
	case retry, refused:
		return corev1.EventTypeWarning
	}
	return ""
}

// result is an outcome with what the Event says and where it goes.
type result struct {
	out     outcome
	reason  string // Event reason; "" records no Event
	message string
	err     error // for the log of a retry
	// on is the object the Event is recorded on (nil: none); the
	// VolumeSnapshot whenever it is known, users look there.
	on *corev1.ObjectReference
}
