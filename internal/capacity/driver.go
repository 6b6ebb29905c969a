package capacity

import (
	"context"
	"fmt"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// maxDriverNameLength is the longest CSIDriver name the API server accepts
// (ValidateCSIDriverName in k8s.io/kubernetes pkg/apis/storage/validation).
const maxDriverNameLength = 63

// ValidateDriverName checks that the provisioner name can name a CSIDriver
// object: kube-scheduler's volumebinding plugin looks the CSIDriver up by
// the StorageClass's provisioner field, so both must be the same string, a
// DNS-1123 subdomain of at most 63 characters (lower case letters, digits,
// '-' and '.'; no '/').
func ValidateDriverName(name string) error {
	var problems []string
	if len(name) > maxDriverNameLength {
		problems = append(problems, fmt.Sprintf("must be no more than %d characters", maxDriverNameLength))
	}
	problems = append(problems, validation.IsDNS1123Subdomain(name)...)
	if len(problems) == 0 {
		return nil
	}
	suggestion := strings.ToLower(strings.ReplaceAll(name, "/", "."))
	return fmt.Errorf("%q cannot name the CSIDriver object kube-scheduler looks up by the StorageClass's provisioner (%s): "+
		"with capacity publishing on, set the provisioner name to a DNS subdomain, e.g. %q, and use that same name as the provisioner of your StorageClasses "+
		"(a class's provisioner cannot be changed: make new classes; claims and PVs of the old name are no longer this provisioner's)",
		name, strings.Join(problems, "; "), suggestion)
}

// driverObject is the CSIDriver this provisioner wants: storageCapacity on,
// nothing for kubelet or attach/detach to do (our PVs are not CSI volumes;
// the object exists only for kube-scheduler's capacity check).
func driverObject(name string) *storagev1.CSIDriver {
	return &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptr.To(false),
			PodInfoOnMount:       ptr.To(false),
			StorageCapacity:      ptr.To(true),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		},
	}
}

// ensureDriver creates the CSIDriver named after the provisioner, or turns
// storageCapacity on in one that exists (the field is mutable; the others
// are not, and are left as they are). It returns the object, whose UID
// owns the CSIStorageCapacity objects.
func ensureDriver(ctx context.Context, kube kubernetes.Interface, name string) (*storagev1.CSIDriver, error) {
	drivers := kube.StorageV1().CSIDrivers()
	d, err := drivers.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		d, err = drivers.Create(ctx, driverObject(name), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			d, err = drivers.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("CSIDriver %s: %w", name, err)
	}
	if d.Spec.StorageCapacity == nil || !*d.Spec.StorageCapacity {
		d = d.DeepCopy()
		d.Spec.StorageCapacity = ptr.To(true)
		if d, err = drivers.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("CSIDriver %s: turn storageCapacity on: %w", name, err)
		}
	}
	return d, nil
}
