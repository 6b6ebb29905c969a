package operator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	metaSecretNS          = "cinder.openstack.org/secret-namespace"
	labelPV               = "cinder.openstack.org/pv"
	finalizerProvisioning = "cinder.openstack.org/provisioning-protection"
	chapSecretSuffix      = "-chap"

	// orphanMinAge is --min-age of the runs that may delete: the test waits
	// until its real orphan is this old by Cinder's clock.
	orphanMinAge = 2 * time.Second
)

// orphansStack is what one orphans test made on the stack.
type orphansStack struct {
	t         *testing.T
	s         *framework.Stack
	sc        *gophercloud.ServiceClient
	clusterID string
	ns        string
	pvs       []string // PVs the test made, deleted at its end
}

// createVolumes makes volumes as the provisioner would (metadata: cluster,
// PV, claim, reclaim policy; "" records none) and waits until all are
// available. Each spec is {cluster, name, claim namespace, claim name,
// policy}.
func (o *orphansStack) createVolumes(specs ...[5]string) []string {
	t := o.t
	t.Helper()
	ctx := context.Background()
	ids := make([]string, len(specs))
	for i, sp := range specs {
		meta := map[string]string{metaClusterID: sp[0], metaPVName: sp[1], metaPVCNS: sp[2], metaPVCName: sp[3]}
		if sp[4] != "" {
			meta[metaReclaim] = sp[4]
		}
		v, err := volumes.Create(ctx, o.sc, volumes.CreateOpts{Name: sp[1], Size: 1, VolumeType: "tgtfile", Metadata: meta}, nil).Extract()
		if err != nil {
			t.Fatalf("create volume %s: %v", sp[1], err)
		}
		ids[i] = v.ID
	}
	for _, id := range ids {
		framework.Eventually(t, 2*time.Minute, "volume "+id+" never available", func(ctx context.Context) (bool, error) {
			got, err := volumes.Get(ctx, o.sc, id).Extract()
			if err != nil {
				return false, err
			}
			if got.Status == "error" {
				return false, errors.New("volume went to error")
			}
			return got.Status == "available", nil
		})
	}
	return ids
}

// export exports the volume as a host would be given it (attachments API,
// created and completed) and returns its connection info.
func (o *orphansStack) export(id string) map[string]any {
	t := o.t
	t.Helper()
	ctx := context.Background()
	var resp struct {
		Attachment struct {
			ID             string         `json:"id"`
			ConnectionInfo map[string]any `json:"connection_info"`
		} `json:"attachment"`
	}
	body := map[string]any{"attachment": map[string]any{"volume_uuid": id, "connector": map[string]any{
		"initiator": "iqn.2026-11.org.openstack.cinder-provisioner:" + o.clusterID, "host": "it-orphans-host", "multipath": false,
		"os_type": "linux2", "platform": "x86_64",
	}}}
	if _, err := o.sc.Post(ctx, o.sc.ServiceURL("attachments"), body, &resp, &gophercloud.RequestOpts{OkCodes: []int{200, 202}}); err != nil {
		t.Fatalf("create attachment of volume %s: %v", id, err)
	}
	if _, err := o.sc.Post(ctx, o.sc.ServiceURL("attachments", resp.Attachment.ID, "action"), map[string]any{"os-complete": nil}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200, 202, 204}}); err != nil {
		t.Fatalf("complete attachment %s of volume %s: %v", resp.Attachment.ID, id, err)
	}
	framework.Eventually(t, time.Minute, "volume "+id+" never in-use", func(ctx context.Context) (bool, error) {
		got, err := volumes.Get(ctx, o.sc, id).Extract()
		return err == nil && got.Status == "in-use", err
	})
	info := resp.Attachment.ConnectionInfo
	if data, ok := info["data"].(map[string]any); ok {
		info = data
	}
	return info
}

// staticPV creates a PV an admin writes by hand for a kept disk, from its
// connection info, under a name of the admin's choosing: no annotation.
func (o *orphansStack) staticPV(name string, info map[string]any) {
	t := o.t
	t.Helper()
	portal, _ := info["target_portal"].(string)
	iqn, _ := info["target_iqn"].(string)
	lun, _ := info["target_lun"].(float64)
	if portal == "" || iqn == "" {
		t.Fatalf("connection info without portal or IQN: %v", info)
	}
	o.createPV(&corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: portal, IQN: iqn, Lun: int32(lun),
			}},
		},
	})
}

func (o *orphansStack) createPV(pv *corev1.PersistentVolume) {
	o.t.Helper()
	if _, err := o.s.Kube.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		o.t.Fatalf("create PV %s: %v", pv.Name, err)
	}
	o.pvs = append(o.pvs, pv.Name)
}

func (o *orphansStack) deletePV(name string) {
	o.t.Helper()
	ctx := context.Background()
	err := o.s.Kube.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		o.t.Fatalf("delete PV %s: %v", name, err)
	}
	framework.Eventually(o.t, time.Minute, "PV "+name+" never gone", func(ctx context.Context) (bool, error) {
		_, err := o.s.Kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// claim creates a claim no provisioner serves (its class does not exist:
// it stays Pending) holding the provisioner's finalizer, as the provisioner
// holds a claim from before its first Cinder request. The finalizer is
// removed at the end of the test.
func (o *orphansStack) claim(name string) *corev1.PersistentVolumeClaim {
	t := o.t
	t.Helper()
	ctx := context.Background()
	class := o.clusterID + "-nobody"
	pvc, err := o.s.Kube.CoreV1().PersistentVolumeClaims(o.ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{finalizerProvisioning}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create claim %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		claims := o.s.Kube.CoreV1().PersistentVolumeClaims(o.ns)
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := claims.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: drop the finalizers of claim %s/%s: %v", o.ns, name, err)
		}
		if err := claims.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete claim %s/%s: %v", o.ns, name, err)
		}
	})
	return pvc
}

// waitOlderThan polls until Cinder's own clock says the volume is at
// least d old.
func (o *orphansStack) waitOlderThan(id string, d time.Duration) {
	o.t.Helper()
	framework.WaitOlderThan(o.t, o.sc, id, d)
}

// section returns the part of out from the line that starts with title to
// the next line without indentation.
func section(out, title string) string {
	i := strings.Index(out, title)
	if i < 0 {
		return ""
	}
	lines := strings.SplitAfter(out[i:], "\n")
	n := len(lines[0])
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, " ") {
			break
		}
		n += len(l)
	}
	return out[i : i+n]
}

func lineWith(out, s string) string {
	for l := range strings.Lines(out) {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestOrphans runs the orphans command against the real stack. Of the
// volumes of its cluster, all old enough by Cinder's clock for --min-age, it
// may delete only the one nothing holds: not the volumes of a claim in
// flight (Pending, Terminating), not one a static PV under a new name refers
// to, not an exported one, not a kept one; a Retain volume no PV ever held
// and one of unknown policy only when asked. Its CHAP Secret goes with the
// deleted volume. Nothing of the test is left at its end.
func TestOrphans(t *testing.T) {
	s := framework.Get(t)
	ctx := context.Background()
	o := &orphansStack{t: t, s: s, sc: s.CinderClient(t), clusterID: framework.UniqueName("it-orphans")}
	foreignID := o.clusterID + "-foreign"
	provisionerName := o.clusterID + ".cinder.openstack.org/standalone-cinder"

	// runs last: nothing of the test may be left
	t.Cleanup(func() { o.nothingLeft(foreignID) })
	s.CleanupVolumesWithMetadata(t, o.sc, metaClusterID, o.clusterID)
	s.CleanupVolumesWithMetadata(t, o.sc, metaClusterID, foreignID)
	t.Cleanup(func() {
		for _, name := range o.pvs {
			err := s.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("cleanup: delete PV %s: %v", name, err)
			}
		}
	})
	o.ns = s.Namespace(t, "it-orphans")

	// Claims in flight: one Pending, one deleted while its provisioner holds
	// it (Terminating). Their volumes carry their names and uids, no PV.
	pending := o.claim("pending")
	terminating := o.claim("terminating")
	if err := s.Kube.CoreV1().PersistentVolumeClaims(o.ns).Delete(ctx, terminating.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete claim: %v", err)
	}

	pvName := func() string { return "pvc-" + string(uuid.NewUUID()) }
	orphanPV, staticPV, keptPV := pvName(), pvName(), pvName()
	ids := o.createVolumes(
		[5]string{o.clusterID, orphanPV, o.ns, "gone", "Delete"},
		[5]string{o.clusterID, "pvc-" + string(pending.UID), o.ns, pending.Name, "Delete"},
		[5]string{o.clusterID, "pvc-" + string(terminating.UID), o.ns, terminating.Name, "Delete"},
		[5]string{o.clusterID, staticPV, o.ns, "static-gone", "Delete"},
		[5]string{o.clusterID, keptPV, o.ns, "kept-gone", "Retain"},
		[5]string{o.clusterID, pvName(), o.ns, "exported-gone", "Delete"},
		[5]string{o.clusterID, pvName(), o.ns, "never-held-gone", "Retain"},
		[5]string{o.clusterID, pvName(), o.ns, "unknown-gone", ""},
		[5]string{foreignID, pvName(), o.ns, "foreign-gone", "Delete"},
	)
	orphanID, pendingID, terminatingID, staticID, keptID, exportedID, neverHeldID, unknownID, foreignVolID :=
		ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7], ids[8]
	all := map[string]string{
		"orphan": orphanID, "pending": pendingID, "terminating": terminatingID, "static": staticID, "kept": keptID,
		"exported": exportedID, "never held": neverHeldID, "unknown": unknownID, "foreign": foreignVolID,
	}

	// The orphan's CHAP Secret, in the namespace recorded on the volume.
	if _, err := o.sc.Post(ctx, o.sc.ServiceURL("volumes", orphanID, "metadata"), map[string]any{"metadata": map[string]string{metaSecretNS: o.ns}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatalf("record the Secret's namespace on volume %s: %v", orphanID, err)
	}
	secretName := orphanPV + chapSecretSuffix
	if _, err := s.Kube.CoreV1().Secrets(o.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Labels: map[string]string{labelPV: orphanPV}},
		Type:       "kubernetes.io/iscsi-chap",
		StringData: map[string]string{"node.session.auth.username": "u", "node.session.auth.password": "p"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Secret: %v", err)
	}

	// A kept disk (Retain, exported: a PV held it) that an admin re-created
	// as a static PV under a new name; a disk of a Delete class never
	// exported that only a static PV under a new name refers to; an export
	// without any PV.
	keptInfo := o.export(keptID)
	o.staticPV(o.clusterID+"-kept-disk", keptInfo)
	staticInfo := map[string]any{"target_portal": keptInfo["target_portal"], "target_iqn": "iqn.2010-10.org.openstack:volume-" + staticID, "target_lun": float64(1)}
	o.staticPV(o.clusterID+"-static-disk", staticInfo)
	o.export(exportedID)

	// A PV of this provisioner whose volume Cinder never had.
	goneVolID := string(uuid.NewUUID())
	gonePV := o.clusterID + "-pvc-gone"
	o.createPV(&corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: gonePV, Annotations: map[string]string{annVolumeID: goneVolID, annIdentity: provisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2010-10.org.openstack:volume-" + goneVolID, Lun: 1,
			}},
		},
	})

	base := []string{"orphans", "--cloud-config", s.CloudConf, "--kubeconfig", s.Kubeconfig, "--cluster-id", o.clusterID, "--provisioner-name", provisionerName}
	left := func(want ...string) {
		t.Helper()
		for name, id := range all {
			if exists := volumeExists(t, o.sc, id); exists != slices.Contains(want, name) {
				t.Errorf("volume %s (%s) exists = %v", name, id, exists)
			}
		}
	}
	everything := []string{"orphan", "pending", "terminating", "static", "kept", "exported", "never held", "unknown", "foreign"}

	// The default --min-age: seconds old by Cinder's clock, nothing goes.
	stdout, _, err := runBinary(t, s, append(base, "--delete", "--yes")...)
	if err != nil {
		t.Fatalf("orphans --delete --yes: %v", err)
	}
	if !strings.Contains(lineWith(stdout, orphanID), "younger than 10m0s by Cinder's clock") || !strings.Contains(stdout, "Nothing to delete.") {
		t.Errorf("orphans --delete --yes does not spare the young orphan")
	}
	left(everything...)

	o.waitOlderThan(orphanID, orphanMinAge)
	minAge := "--min-age=" + orphanMinAge.String()
	stdout, _, err = runBinary(t, s, append(base, minAge)...)
	if err != nil {
		t.Fatalf("orphans: %v", err)
	}
	for _, tc := range []struct {
		title string
		want  []string
	}{
		{"Orphans of cluster " + o.clusterID + ", reclaim policy Delete: 1", []string{orphanID, orphanPV, "available", "1Gi", o.ns + "/gone"}},
		{"Orphans of cluster " + o.clusterID + ", reclaim policy Retain but never held by a PV: 1", []string{neverHeldID, "--include-never-held-retain"}},
		{"Orphans of cluster " + o.clusterID + ", reclaim policy unknown: 1", []string{unknownID, "--include-unknown-policy"}},
		{"Volumes of cluster " + o.clusterID + " kept on purpose (reclaim policy Retain, still exported, no PV): 0", nil},
		{"Volumes of cluster " + o.clusterID + " exported, no PV refers to it: a host may still use it: 1", []string{exportedID, "attached"}},
		{"Volumes of cluster " + o.clusterID + " without a PV whose claim exists: 2", []string{
			pendingID, "claim Pending, held by the provisioner's finalizer: in flight",
			terminatingID, "claim Terminating, held by the provisioner's finalizer",
		}},
		{"PVs of provisioner " + provisionerName + " whose Cinder volume is gone: 1", []string{gonePV, goneVolID}},
	} {
		sec := section(stdout, tc.title)
		if sec == "" {
			t.Errorf("orphans output has no section %q", tc.title)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(sec, w) {
				t.Errorf("section %q lacks %q", tc.title, w)
			}
		}
	}
	for _, id := range []string{staticID, keptID, foreignVolID} {
		if strings.Contains(stdout, id) {
			t.Errorf("orphans lists %s, which a PV refers to or which is another cluster's", id)
		}
	}

	// --delete without --yes and an empty answer deletes nothing.
	stdout, _, err = runBinary(t, s, append(base, minAge, "--delete")...)
	if err != nil {
		t.Fatalf("orphans --delete: %v", err)
	}
	if !strings.Contains(stdout, "delete 1 volumes? [y/N]") || !strings.Contains(stdout, "Not deleting.") {
		t.Errorf("orphans --delete without an answer did not ask, or did not say it deletes nothing")
	}
	left(everything...)

	// --delete --yes while two claims are in flight: only the orphan goes,
	// with its CHAP Secret.
	stdout, _, err = runBinary(t, s, append(base, minAge, "--delete", "--yes")...)
	if err != nil {
		t.Fatalf("orphans --delete --yes: %v", err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(orphanID+" ("+orphanPV+"): deleted in ") + `\S+; Secret ` + regexp.QuoteMeta(o.ns+"/"+secretName+" deleted")).MatchString(stdout) {
		t.Errorf("orphans --delete --yes does not report the deletion of the orphan and its Secret")
	}
	left("pending", "terminating", "static", "kept", "exported", "never held", "unknown", "foreign")
	if _, err := s.Kube.CoreV1().Secrets(o.ns).Get(ctx, secretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the orphan's CHAP Secret is still there (err %v)", err)
	}

	// Without its static PV, the kept disk is listed as kept on purpose, and
	// stays; the never held Retain volume and the one of unknown policy go
	// when asked for.
	o.deletePV(o.clusterID + "-kept-disk")
	stdout, _, err = runBinary(t, s, append(base, minAge, "--delete", "--yes", "--include-unknown-policy", "--include-never-held-retain")...)
	if err != nil {
		t.Fatalf("orphans --delete --yes --include-unknown-policy --include-never-held-retain: %v", err)
	}
	if sec := section(stdout, "Volumes of cluster "+o.clusterID+" kept on purpose (reclaim policy Retain, still exported, no PV): 1"); !strings.Contains(sec, keptID) {
		t.Errorf("the kept disk is not listed as kept on purpose once its PV is gone")
	}
	left("pending", "terminating", "static", "kept", "exported", "foreign")
	for _, name := range o.pvs {
		if name == o.clusterID+"-kept-disk" {
			continue
		}
		if _, err := s.Kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("PV %s: %v (orphans must never delete PVs)", name, err)
		}
	}
}

// nothingLeft fails the test if a volume of its clusters, one of its PVs or
// its namespace's claims are left once its cleanups ran.
func (o *orphansStack) nothingLeft(foreignID string) {
	t := o.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, cluster := range []string{o.clusterID, foreignID} {
		vols, err := framework.VolumesWithMetadata(ctx, o.sc, metaClusterID, cluster)
		if err != nil {
			t.Errorf("list volumes: %v", err)
		}
		for _, v := range vols {
			t.Errorf("volume %s (%s) of cluster %s left", v.ID, v.Name, cluster)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(o.pvs)+1)
	check := func(what string, gone func(ctx context.Context) (bool, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ok, err := gone(ctx)
				if err != nil || ok {
					if err != nil {
						errs <- fmt.Errorf("%s: %w", what, err)
					}
					return
				}
				select {
				case <-ctx.Done():
					errs <- fmt.Errorf("%s left", what)
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	for _, name := range o.pvs {
		check("PV "+name, func(ctx context.Context) (bool, error) {
			_, err := o.s.Kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
	}
	if o.ns != "" {
		check("namespace "+o.ns, func(ctx context.Context) (bool, error) {
			_, err := o.s.Kube.CoreV1().Namespaces().Get(ctx, o.ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
