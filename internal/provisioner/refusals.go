package provisioner

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// maxRefusals bounds the memory of refusals; past it the oldest half is
// dropped (a dropped claim costs one more real attempt, nothing else).
const maxRefusals = 10000

// refusals remembers final refusals, so that the library's retries of a
// claim that cannot be served as it is do not create, export and delete a
// volume again and again, nor repeat the Event. A refusal holds while the
// claim's spec (generation) and its StorageClass (uid, resourceVersion) stay
// as they were; it is forgotten when the process restarts. Refusals that
// depend on something else an admin can fix without touching either (a
// missing Ceph Secret, a node's annotations, quota, a backend in error)
// are not remembered: they are tried again for real.
type refusals struct {
	mu    sync.Mutex
	byUID map[types.UID]refusal
	order []types.UID
}

type refusal struct {
	generation int64
	classUID   types.UID
	classRV    string
	err        error
}

func refusalKey(opts controller.ProvisionOptions) refusal {
	return refusal{generation: opts.PVC.Generation, classUID: opts.StorageClass.UID, classRV: opts.StorageClass.ResourceVersion}
}

// get returns the remembered refusal of the claim, if it still holds.
func (r *refusals) get(opts controller.ProvisionOptions) (error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got, ok := r.byUID[opts.PVC.UID]
	if !ok {
		return nil, false
	}
	want := refusalKey(opts)
	if got.generation != want.generation || got.classUID != want.classUID || got.classRV != want.classRV {
		delete(r.byUID, opts.PVC.UID)
		return nil, false
	}
	return got.err, true
}

// put remembers a refusal when it is final (errorTable).
func (r *refusals) put(opts controller.ProvisionOptions, err error) {
	if !classify(err).final {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byUID == nil {
		r.byUID = map[types.UID]refusal{}
	}
	if len(r.order) >= maxRefusals {
		for _, uid := range r.order[:maxRefusals/2] {
			delete(r.byUID, uid)
		}
		r.order = append([]types.UID(nil), r.order[maxRefusals/2:]...)
	}
	v := refusalKey(opts)
	v.err = err
	if _, ok := r.byUID[opts.PVC.UID]; !ok {
		r.order = append(r.order, opts.PVC.UID)
	}
	r.byUID[opts.PVC.UID] = v
}
