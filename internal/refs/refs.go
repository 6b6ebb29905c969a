package refs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// What references a Cinder volume. A volume may be deleted on proof only,
// and the first proof is that no PV in the cluster refers to it, whoever
// made the PV and however: our annotation, the original provisioner's, a
// static PV an admin wrote by hand for a kept disk (an iSCSI IQN that ends
// in the volume id, an RBD image "volume-<id>", a CSI volumeHandle, a
// cinder-csi PV). Rather than list the fields that can carry an id, every
// volume id written anywhere in a PV's source or annotations counts.

// normID is the form ids are compared in: lower case, no dashes (drivers
// write ids into target and image names either way).
func normID(id string) string { return strings.ToLower(strings.ReplaceAll(id, "-", "")) }

// idLen is the length of a volume id in the form ids are compared in.
const idLen = 32

// References indexes what the cluster's PVs carry that can name a volume:
// every 32-hex-digit window of every run of hex digits in a PV's
// annotations and source (dashes removed, lower case), so that an id
// embedded in a longer name (an IQN's "volume-<id>", an image name) is
// found, and a lookup costs one map read whatever the number of PVs.
type References struct {
	byID map[string][]string
}

// Add indexes one PV.
func (r *References) Add(pv *corev1.PersistentVolume) {
	var text strings.Builder
	for _, v := range pv.Annotations {
		text.WriteString(v)
		text.WriteByte(' ')
	}
	if src, err := json.Marshal(pv.Spec.PersistentVolumeSource); err == nil {
		text.Write(src)
	} else {
		// cannot happen for a decoded object; never lose a reference to it
		fmt.Fprintf(&text, "%+v", pv.Spec.PersistentVolumeSource)
	}
	if r.byID == nil {
		r.byID = map[string][]string{}
	}
	seen := map[string]bool{}
	norm := normID(text.String())
	for start := 0; start < len(norm); {
		end := start
		for end < len(norm) && isHex(norm[end]) {
			end++
		}
		for i := start; i+idLen <= end; i++ {
			if id := norm[i : i+idLen]; !seen[id] {
				seen[id] = true
				r.byID[id] = append(r.byID[id], pv.Name)
			}
		}
		start = end + 1
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Of returns the names of the PVs that carry the volume's id anywhere. An
// id that is not a UUID cannot be looked up: it counts as referenced, so
// nothing is deleted on its account.
func (r *References) Of(volumeID string) []string {
	id := normID(volumeID)
	if len(id) != idLen || strings.IndexFunc(id, func(c rune) bool { return c > 0x7f || !isHex(byte(c)) }) >= 0 {
		return []string{"(volume id " + volumeID + " is not a UUID: references unknown)"}
	}
	return r.byID[id]
}

// pvListPage is how many PVs one list request asks for.
const pvListPage = 500

// ListReferences reads every PV of the cluster from the API server (a live
// read, paged: never a cache that may lag) and indexes the volume ids they
// carry. It also returns the PVs.
func ListReferences(ctx context.Context, kube kubernetes.Interface) (*References, []corev1.PersistentVolume, error) {
	refs := &References{}
	var all []corev1.PersistentVolume
	opts := metav1.ListOptions{Limit: pvListPage}
	for {
		list, err := kube.CoreV1().PersistentVolumes().List(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("list PersistentVolumes: %w", err)
		}
		for i := range list.Items {
			refs.Add(&list.Items[i])
		}
		all = append(all, list.Items...)
		if list.Continue == "" {
			return refs, all, nil
		}
		opts.Continue = list.Continue
	}
}
