package framework

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// ProvisionerArgs are the flags every test run of the provisioner shares:
// an identity of its own, no leader election.
type ProvisionerArgs struct {
	Kubeconfig      string
	CloudConfig     string
	Name            string // --provisioner-name
	ClusterID       string
	SecretNamespace string
	Initiator       string // --iscsi-initiator-name
	MetricsAddress  string // "" turns /metrics off
	Verbosity       int
}

// Args returns the command line; flags given later override these.
func (a ProvisionerArgs) Args() []string {
	return []string{
		"--kubeconfig", a.Kubeconfig,
		"--cloud-config", a.CloudConfig,
		"--provisioner-name", a.Name,
		"--cluster-id", a.ClusterID,
		"--secret-namespace", a.SecretNamespace,
		"--iscsi-initiator-name", a.Initiator,
		"--metrics-address", a.MetricsAddress,
		"--leader-elect=false",
		"-v", strconv.Itoa(a.Verbosity),
	}
}

// StartProvisioner starts the built binary as the process proc with a's
// flags, the stack's kubeconfig and cloud config where a names none, and
// extra (which override them).
func (s *Stack) StartProvisioner(t testing.TB, proc string, a ProvisionerArgs, extra ...string) *Process {
	t.Helper()
	if a.Kubeconfig == "" {
		a.Kubeconfig = s.Kubeconfig
	}
	if a.CloudConfig == "" {
		a.CloudConfig = s.CloudConf
	}
	return Start(t, proc, s.ProvisionerBinary(t), append(a.Args(), extra...)...)
}

// StorageClass builds (does not create) a class of provisioner, named
// uniquely after prefix, with params.
func StorageClass(prefix, provisioner string, params map[string]string, mutate ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: UniqueName(prefix)},
		Provisioner: provisioner,
		Parameters:  params,
	}
	for _, m := range mutate {
		m(sc)
	}
	return sc
}

// CreateStorageClass creates sc and deletes it when the test ends; it
// returns its name.
func CreateStorageClass(t testing.TB, kube kubernetes.Interface, sc *storagev1.StorageClass) string {
	t.Helper()
	if _, err := kube.StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create StorageClass: %v", err)
	}
	t.Cleanup(func() {
		err := kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete StorageClass %s: %v", sc.Name, err)
		}
	})
	return sc.Name
}

// Claim builds (does not create) a ReadWriteOnce claim of size in class.
func Claim(ns, name, class, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			},
		},
	}
	for _, m := range mutate {
		m(pvc)
	}
	return pvc
}

// CreateClaim creates pvc; an error fails the test.
func CreateClaim(t testing.TB, kube kubernetes.Interface, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	t.Helper()
	out, err := kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(context.Background(), pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create PVC %s: %v", pvc.Name, err)
	}
	return out
}

// GetClaim reads the claim; an error fails the test.
func GetClaim(t testing.TB, kube kubernetes.Interface, ns, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get claim %s: %v", name, err)
	}
	return c
}

// GetPV reads the PV; an error fails the test.
func GetPV(t testing.TB, kube kubernetes.Interface, name string) *corev1.PersistentVolume {
	t.Helper()
	pv, err := kube.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get PV %s: %v", name, err)
	}
	return pv
}

// CreateClaimRetrying creates pvc, retrying API errors until timeout (the
// API server may be the fault of the moment); a claim that already exists
// (an earlier try that succeeded) is read back.
func CreateClaimRetrying(kube kubernetes.Interface, pvc *corev1.PersistentVolumeClaim, timeout time.Duration) (*corev1.PersistentVolumeClaim, error) {
	var out *corev1.PersistentVolumeClaim
	err := Retry(timeout, func() (err error) {
		out, err = kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(context.Background(), pvc, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			out, err = kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(context.Background(), pvc.Name, metav1.GetOptions{})
		}
		return err
	})
	return out, err
}

// DeleteClaimRetrying deletes the claim, retrying API errors until
// timeout; a claim already gone counts as deleted.
func DeleteClaimRetrying(kube kubernetes.Interface, ns, name string, timeout time.Duration) error {
	return Retry(timeout, func() error {
		err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// DeleteClaim deletes the claim; any error fails the test.
func DeleteClaim(t testing.TB, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	if err := kube.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete PVC %s: %v", name, err)
	}
}

// Retry calls f until it succeeds or timeout passes, every 200 ms, and
// returns f's last error.
func Retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond) // bounded by timeout
	}
}

// WaitBound waits until the claim is Bound and returns the name of its PV.
// An error reading the claim fails the test at once, unless
// tolerateAPIErrors (the API server may be the fault of the moment).
func WaitBound(t testing.TB, kube kubernetes.Interface, ns, name string, timeout time.Duration, tolerateAPIErrors bool) string {
	t.Helper()
	var pvName string
	Eventually(t, timeout, "claim "+name+" never bound", func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if tolerateAPIErrors {
				return false, nil
			}
			return false, err
		}
		pvName = c.Spec.VolumeName
		return c.Status.Phase == corev1.ClaimBound, nil
	})
	return pvName
}

// WaitBoundPV waits until the claim is Bound and returns its PV; an error
// reading the claim or the PV fails the test.
func WaitBoundPV(t testing.TB, kube kubernetes.Interface, ns, name string, timeout time.Duration) *corev1.PersistentVolume {
	t.Helper()
	return GetPV(t, kube, WaitBound(t, kube, ns, name, timeout, false))
}

// DeleteProvisionedPVs removes the PVs provisioner made that are left at
// the end of a test, their finalizers too (the provisioner is gone by
// then); each is handed to seen first (nil: none). Their volumes go with
// the cluster id's cleanup.
func DeleteProvisionedPVs(t testing.TB, kube kubernetes.Interface, provisioner string, seen func(*corev1.PersistentVolume)) {
	ctx := context.Background()
	pvs, err := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("cleanup: list PVs: %v", err)
		return
	}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != provisioner {
			continue
		}
		if seen != nil {
			seen(&pv)
		}
		if len(pv.Finalizers) > 0 {
			pv.Finalizers = nil
			_, _ = kube.CoreV1().PersistentVolumes().Update(ctx, &pv, metav1.UpdateOptions{})
		}
		if err := kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete PV %s: %v", pv.Name, err)
		}
	}
}

// ClusterVolumes lists the Cinder volumes, in any status, that the
// provisioner created with cluster id clusterID.
func ClusterVolumes(ctx context.Context, sc *gophercloud.ServiceClient, clusterID string) ([]volumes.Volume, error) {
	return VolumesWithMetadata(ctx, sc, contract.MetaClusterID, clusterID)
}

// CleanupClusterVolumes force-deletes, when the test ends, every volume of
// cluster id clusterID that is still in Cinder.
func (s *Stack) CleanupClusterVolumes(t testing.TB, sc *gophercloud.ServiceClient, clusterID string) {
	t.Helper()
	s.CleanupVolumesWithMetadata(t, sc, contract.MetaClusterID, clusterID)
}
