package resizer

import corev1 "k8s.io/api/core/v1"

// outcome is how one pass over a claim ended. Every return of sync names
// one; what follows from it (requeue or not, the Event's type, the metric)
// is decided here and nowhere else.
type outcome int

const (
	// idle: nothing to do: not a claim of ours, not grown, or finished.
	idle outcome = iota
	// gone: the claim or its PV was deleted; nothing is left to finish.
	gone
	// resized: the volume has the new size, the PV and the claim show it
	// (block mode: nothing is left for a node to do but see it).
	resized
	// nodePending: the volume and the PV have the new size; the claim asks
	// the kubelet to grow the filesystem (ceph-csi RBD: NodeResizePending).
	nodePending
	// inProgress: Cinder is still extending the volume; look again soon.
	inProgress
	// retry: a step failed for a reason that may pass (Cinder unreachable,
	// quota, error_extending until an admin resets it, an API conflict);
	// nothing is lost and the next pass starts from what exists.
	retry
	// refused: the grow cannot be done as asked; nothing was changed that a
	// later pass or a person must undo. Not tried again until the request
	// changes (or the process restarts).
	refused
	// refusedAgain: the same refusal for the same request: no Cinder call,
	// no new Event.
	refusedAgain
)

func (o outcome) String() string {
	switch o {
	case idle:
		return "idle"
	case gone:
		return "gone"
	case resized:
		return "resized"
	case nodePending:
		return "node_pending"
	case inProgress:
		return "in_progress"
	case retry:
		return "retry"
	case refused:
		return "refused"
	case refusedAgain:
		return "refused_again"
	}
	return "unknown"
}

// requeue says whether the claim goes back on the queue with backoff.
func (o outcome) requeue() bool { return o == inProgress || o == retry }

// eventType is the type of the Event an outcome records ("" for none; an
// outcome with a reason but no type records nothing).
func (o outcome) eventType() string {
	switch o {
	case resized, nodePending:
		return corev1.EventTypeNormal
	case retry, refused:
		return corev1.EventTypeWarning
	}
	return ""
}

// remembered says whether the refusal is kept so that the same request is
// not refused again with a new Event and new Cinder calls.
func (o outcome) remembered() bool { return o == refused }

// result is an outcome with what the Event says.
type result struct {
	out     outcome
	reason  string // Event reason; "" records no Event
	message string
	err     error // for the log of a retry
	wantGiB int64 // the size refused (refused)
	// settled: Cinder answered that no extend of the claim is under way
	// (it refused the request, or the extend ended in a failure), so a
	// lowered request may replace the size recorded on the claim (target).
	settled bool
}
