// Package stack proves the local stack is real: the PV binder of a real
// kube-controller-manager marks claims for our provisioner, and a real Cinder
// creates, exports (attachments API, iSCSI with CHAP from a real tgtd) and
// deletes a volume whose LUN a userspace iSCSI login reads.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const provisionerName = "openstack.org/standalone-cinder"

func TestPVBinderMarksClaimForCinderProvisioner(t *testing.T) {
	s := framework.Get(t)
	ctx := context.Background()
	ns := s.Namespace(t, "stack")

	scName := framework.UniqueName("stack-sc")
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: scName},
		Provisioner: provisionerName,
	}
	if _, err := s.Kube.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create StorageClass: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Kube.StorageV1().StorageClasses().Delete(context.Background(), scName, metav1.DeleteOptions{})
	})

	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &scName,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}
	if _, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PVC: %v", err)
	}

	var got string
	framework.Eventually(t, 30*time.Second, "PV binder never annotated the claim", func(ctx context.Context) (bool, error) {
		c, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "claim", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = c.Annotations["volume.kubernetes.io/storage-provisioner"]
		return got != "", nil
	})
	if got != provisionerName {
		t.Errorf("volume.kubernetes.io/storage-provisioner = %q, want %q", got, provisionerName)
	}
}

// attachmentResult is the part of Cinder's attachment the test reads.
type attachmentResult struct {
	Attachment struct {
		ID             string         `json:"id"`
		ConnectionInfo map[string]any `json:"connection_info"`
	} `json:"attachment"`
}

func TestCinderVolumeExportsISCSIWithCHAPReadableFromUserspace(t *testing.T) {
	s := framework.Get(t)
	ctx := context.Background()
	sc := s.CinderClient(t)
	sc.Microversion = "3.54" // attachment "mode" needs 3.54
	name := framework.UniqueName("it-stack")
	s.CleanupVolumesNamed(t, sc, name)

	vol, err := volumes.Create(ctx, sc, volumes.CreateOpts{Name: name, Size: 1, VolumeType: "tgtfile"}, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	framework.Eventually(t, 60*time.Second, "volume never became available", func(ctx context.Context) (bool, error) {
		v, err := volumes.Get(ctx, sc, vol.ID).Extract()
		if err != nil {
			return false, err
		}
		if v.Status == "error" {
			return false, errors.New("volume went to error")
		}
		return v.Status == "available", nil
	})

	const initiator = "iqn.2026-11.org.cinder-provisioner:stack-test"
	body := map[string]any{"attachment": map[string]any{
		"volume_uuid": vol.ID,
		"mode":        "rw",
		// no instance_uuid: without Nova, deleting an attachment that names an
		// instance fails (Cinder bug #2004555 fix asks Nova)
		"connector": map[string]any{"initiator": initiator, "ip": "127.0.0.1", "host": "stack-test",
			"platform": "x86_64", "os_type": "linux2", "multipath": false},
	}}
	var att attachmentResult
	if _, err := sc.Post(ctx, sc.ServiceURL("attachments"), body, &att, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("create attachment: %v", err)
	}
	ci := att.Attachment.ConnectionInfo
	str := func(k string) string { v, _ := ci[k].(string); return v }
	if got := str("driver_volume_type"); got != "iscsi" {
		t.Fatalf("driver_volume_type = %q, want iscsi", got)
	}
	if got := str("auth_method"); got != "CHAP" {
		t.Fatalf("auth_method = %q, want CHAP", got)
	}
	lun, err := strconv.Atoi(fmt.Sprint(ci["target_lun"])) // float64 or json.Number, by decoder
	if err != nil || str("target_portal") == "" || str("target_iqn") == "" || str("auth_username") == "" || str("auth_password") == "" {
		t.Fatalf("incomplete iSCSI connection info: portal=%q iqn=%q lun=%v user set=%t password set=%t",
			str("target_portal"), str("target_iqn"), ci["target_lun"], str("auth_username") != "", str("auth_password") != "")
	}
	if _, err := sc.Post(ctx, sc.ServiceURL("attachments", att.Attachment.ID, "action"), map[string]any{"os-complete": nil}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
		t.Fatalf("complete attachment: %v", err)
	}

	login := framework.ISCSILogin{Initiator: initiator, Portal: str("target_portal"), IQN: str("target_iqn"),
		LUN: int32(lun), Username: str("auth_username"), Password: str("auth_password")}
	size, err := framework.ReadCapacity(ctx, login)
	if err != nil {
		t.Fatalf("userspace iSCSI login: %v", err)
	}
	if size != 1<<30 {
		t.Errorf("LUN size = %d bytes, want %d (1 GiB)", size, 1<<30)
	}
	login.Password = "not-the-password"
	if _, err := framework.ReadCapacity(ctx, login); err == nil {
		t.Errorf("login with a wrong CHAP password succeeded: the target does not enforce CHAP")
	}

	if _, err := sc.Delete(ctx, sc.ServiceURL("attachments", att.Attachment.ID), &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("delete attachment: %v", err)
	}
	framework.Eventually(t, 30*time.Second, "volume never returned to available", func(ctx context.Context) (bool, error) {
		v, err := volumes.Get(ctx, sc, vol.ID).Extract()
		return err == nil && v.Status == "available", err
	})
	if err := volumes.Delete(ctx, sc, vol.ID, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		t.Fatalf("delete volume: %v", err)
	}
	framework.Eventually(t, 60*time.Second, "deleted volume never went away", func(ctx context.Context) (bool, error) {
		_, err := volumes.Get(ctx, sc, vol.ID).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, nil
		}
		return false, nil
	})
}
