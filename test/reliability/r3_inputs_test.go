package reliability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// Bounds of R3's waits. Every input that works answers within seconds; the
// bounds leave room for a claim queued behind the others on the
// provisioner's workers.
const (
	r3EventWait = 60 * time.Second // an Event, a refusal, a decision
	r3BindWait  = 90 * time.Second // a claim that must bind
	r3GoneWait  = 90 * time.Second // a volume or PV that must go
	// r3SettleWait bounds the end: every claim deleted, every volume gone
	r3SettleWait = 3 * time.Minute
)

const (
	r3AnnProvisionedBy   = "pv.kubernetes.io/provisioned-by"
	r3AnnProvisionerID   = "cinder.openstack.org/provisioner-identity"
	r3AnnSelectedNode    = "volume.kubernetes.io/selected-node"
	r3AnnNodeFCWWPNs     = "cinder.openstack.org/fc-wwpns"
	r3ReasonFailedDelete = "VolumeFailedDelete"
	r3ForeignProvisioner = "other.example.com/standalone-cinder"
)

// r3Reasons are the Warning reasons of the provisioner
// (docs/troubleshooting.md): an input that gives one it should not gives a
// misleading Event.
var r3Reasons = map[string]bool{
	"InvalidStorageClassParameter": true, "UnsupportedClaim": true, "MissingSecret": true,
	"CinderQuotaExceeded": true, "CinderRequestRejected": true, "CinderVolumeError": true,
	"UnsupportedTransport": true, "InvalidConnectionInfo": true, "CinderVolumeNameConflict": true,
	"InvalidNodeAnnotation": true, "CinderVolumeStuck": true, "CinderVolumeMismatch": true,
	"SecretConflict": true, "CinderUnavailable": true, "CinderProvisioningFailed": true,
	"PartialConnectionInfo": true, "InvalidDataSource": true, "SelectedNodeGone": true, "InvalidAvailabilityZone": true,
}

// r3Want is what a bad input must come to.
type r3Want int

const (
	// r3Event: a Warning Event on the claim with the reason and message,
	// and no volume of the claim left.
	r3Event r3Want = iota
	// r3Refused: the API server refuses the claim; message is in its error.
	r3Refused
	// r3Binds: the input is odd but servable; the claim binds.
	r3Binds
	// r3Own: the entry's check says (PVs, inputs acted on while provisioned).
	r3Own
)

// r3Entry is one bad input: what it makes, and what it must give.
type r3Entry struct {
	name string
	// setup prepares what the input needs before any claim exists (a Cinder
	// volume type, a Node).
	setup func(r *r3Run, en *r3Entry)
	// params are the StorageClass parameters over the suite's {type:
	// tgtfile}; an entry with params, class or quota gets a class of its
	// own, else it uses the run's plain class.
	params map[string]string
	class  func(sc *storagev1.StorageClass)
	// quota names the quota project whose provisioner serves the class.
	quota string
	size  string // "1Gi" when empty
	claim func(r *r3Run, en *r3Entry, pvc *corev1.PersistentVolumeClaim)
	// make replaces the claim: the entry makes its own objects (a PV, two
	// claims).
	make func(r *r3Run, en *r3Entry)
	// during runs right after the claim is made, for inputs that act while
	// the claim is provisioned; such entries run first and alone.
	during func(t *testing.T, r *r3Run, en *r3Entry)

	want            r3Want
	reason, message string
	// check runs after the generic one (r3Own: instead of it).
	check func(t *testing.T, r *r3Run, en *r3Entry)
	// binds: the input's claims must bind (counted in the row).
	binds int
	// control: not a bad input but the good one next to it, so that a fix
	// cannot refuse both
	control bool

	// what the run made and saw
	className string
	pvc       *corev1.PersistentVolumeClaim
	extra     *corev1.PersistentVolumeClaim // a second claim (the victim)
	victimID  string                        // the second claim's volume
	pvName    string
	volumeID  string
	apiErr    error
	got       string
}

// r3Quota is a Cinder project of its own with a quota, served by a
// provisioner of its own.
type r3Quota struct {
	project string
	name    string // --provisioner-name
	cinder  *gophercloud.ServiceClient
}

// r3Run is R3's world: one env, its provisioner, the quota projects.
type r3Run struct {
	t        *testing.T
	e        *env
	main     *framework.Process
	plain    string // a class with no parameters of its own
	quotas   map[string]*r3Quota
	nodeName string
	types    map[string]string // volume types R3 made: id -> name
	checked  int               // reasons and messages (or outcomes) checked
	bound    int               // claims that bound
}

// TestR3BadInput gives one provisioner >= 25 distinct bad inputs at once
// and checks that each gets the Event reason and message it must give (or
// the refusal, or the outcome, it must come to), that no input leaves a
// volume, and that none is left once every claim is deleted.
func TestR3BadInput(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	r := &r3Run{t: t, e: e, quotas: map[string]*r3Quota{}, types: map[string]string{}}
	t.Cleanup(func() {
		for id := range r.types {
			_ = volumetypes.Delete(context.Background(), e.cinder, id).ExtractErr()
		}
	})
	r.main = e.provisioner("provisioner-0")
	r.plain = e.storageClass(nil)
	r.quota("volumes", quotasets.UpdateOpts{Volumes: r3Int(0)})
	r.quota("gigabytes", quotasets.UpdateOpts{Gigabytes: r3Int(1)})

	entries := r3Entries()
	for _, en := range entries {
		if en.setup != nil {
			en.setup(r, en)
		}
	}
	// inputs acted on while provisioned go first, each alone, so that the
	// provisioner's workers are free and the moment is the one meant
	for _, en := range entries {
		if en.during == nil {
			continue
		}
		r.makeClaim(en)
		t.Run(en.name, func(t *testing.T) {
			en.during(t, r, en)
			r.checkEntry(t, en)
		})
	}
	// every other input at once
	for _, en := range entries {
		if en.during != nil {
			continue
		}
		if en.make != nil {
			en.make(r, en)
		} else {
			r.makeClaim(en)
		}
	}
	for _, en := range entries {
		if en.during != nil {
			continue
		}
		t.Run(en.name, func(t *testing.T) { r.checkEntry(t, en) })
	}

	// the end: every claim deleted, nothing left
	ctx := context.Background()
	if err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("delete claims: %v", err)
	}
	var left []string
	t.Run("no volume left once every claim is deleted", func(t *testing.T) {
		defer func() {
			for _, v := range left {
				t.Errorf("volume left: %s", v)
			}
		}()
		framework.Eventually(t, r3SettleWait, "every volume gone after every claim was deleted", func(ctx context.Context) (bool, error) {
			var err error
			left, err = r.allVolumes(ctx)
			return err == nil && len(left) == 0, nil
		})
	})
	for _, en := range entries {
		if en.pvc == nil {
			continue
		}
		// the PV goes just after its volume: the library removes its
		// finalizer once Delete returned
		framework.Eventually(t, 30*time.Second, en.name+": PV "+en.pvName+" left after its claim was deleted", func(ctx context.Context) (bool, error) {
			_, err := e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, en.pvName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}
	for id, name := range r.types {
		if err := volumetypes.Delete(ctx, e.cinder, id).ExtractErr(); err != nil {
			t.Errorf("delete volume type %s: %v", name, err)
		} else {
			delete(r.types, id)
		}
	}

	mustBind, claims, controls := 0, 0, 0
	for _, en := range entries {
		mustBind += en.binds
		if en.control {
			controls++
		}
		if en.pvc != nil {
			claims++
		}
		if en.extra != nil {
			claims++
		}
		t.Logf("R3 %-45s -> %s", en.name, en.got)
	}
	if r.bound != mustBind {
		t.Errorf("%d claims bound, want the %d that must", r.bound, mustBind)
	}
	results.add(row{
		scenario: "R3 bad input",
		load:     fmt.Sprintf("%d distinct bad inputs (and %d good one next to them)", len(entries)-controls, controls),
		faults:   "-",
		bound:    r.bound, claims: claims, leaked: len(left), double: 0,
		events:   fmt.Sprintf("%d reasons and messages checked", r.checked),
		recover:  "-",
		duration: time.Since(start), passed: !t.Failed(),
	})
}

// r3Entries is the table: one entry per bad input.
func r3Entries() []*r3Entry {
	rwxBlock := func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
		block := corev1.PersistentVolumeBlock
		pvc.Spec.VolumeMode = &block
		pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	}
	return []*r3Entry{
		// acted on while provisioned
		{
			name: "claim deleted while provisioning", want: r3Own,
			during: r3DeleteClaimWhileProvisioning, check: r3ClaimAndVolumeGone,
		},
		{
			name: "StorageClass deleted while provisioning", want: r3Own, params: map[string]string{}, binds: 1,
			during: r3DeleteClassWhileProvisioning, check: r3BindsThenGoes,
		},

		// StorageClass parameters
		{
			name: "unknown parameter", params: map[string]string{"colour": "blue"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "colour": unknown parameter (known: availability, cephSecretName,`,
		},
		{
			name: "parameter given twice (fsType, FSTYPE)", params: map[string]string{"fsType": "ext4", "FSTYPE": "xfs"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "fsType": given twice (also as "FSTYPE")`,
		},
		{
			// the kubelet runs "mkfs.<fsType>": this one can never format
			name: "fsType with mkfs options in it", params: map[string]string{"fsType": "ext4 -E nodiscard"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "fsType"`,
		},
		{
			name: "readOnly not a boolean", params: map[string]string{"readOnly": "yes please"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "readOnly": "yes please" is not a boolean (true or false)`,
		},
		{
			name: "initiatorName not an iSCSI name", params: map[string]string{"initiatorName": "iqn.k8s node"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "initiatorName": "iqn.k8s node" is not a valid iqn, eui or naa name`,
		},
		{
			// not a namespace name: no CHAP Secret can ever be made there
			name: "chapSecretNamespace not a namespace name", params: map[string]string{"chapSecretNamespace": "Storage_Secrets"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "chapSecretNamespace"`,
		},
		{
			name: "cephSecretName without cephSecretNamespace", params: map[string]string{"clusterID": "ceph-1", "cephSecretName": "ceph-user"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "cephSecretNamespace": required with cephSecretName`,
		},
		{
			name:   "cephSecretNamespace not a namespace name",
			params: map[string]string{"clusterID": "ceph-1", "cephSecretName": "ceph-user", "cephSecretNamespace": "Ceph_CSI"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "cephSecretNamespace"`,
		},
		{
			name: "imageFeatures with an unknown feature", params: map[string]string{"imageFeatures": "layering,teleport"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "imageFeatures"`,
		},
		{
			name: "rbdDriver not a CSI driver name", params: map[string]string{"rbdDriver": "rbd csi driver"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "rbdDriver"`,
		},
		{
			name: "fcWWPNs not WWNs", params: map[string]string{"fcWWPNs": "garbage"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "fcWWPNs": invalid WWN "garbage": want 16 hex digits`,
		},
		{
			name: "fcWWNNs too short", params: map[string]string{"fcWWNNs": "20:00:00:24"},
			reason: "InvalidStorageClassParameter", message: `StorageClass parameter "fcWWNNs": invalid WWN "20:00:00:24": want 16 hex digits`,
		},

		// what Cinder refuses
		{
			name: "volume type that does not exist", params: map[string]string{"type": "r3-no-such-type"},
			reason: "CinderRequestRejected", message: "Volume type with name r3-no-such-type could not be found",
		},
		{
			name: "availability zone that does not exist", params: map[string]string{"availability": "r3-no-such-zone"},
			reason: "InvalidAvailabilityZone", message: "Availability zone 'r3-no-such-zone' is invalid",
		},
		{
			name: "volume type whose backend is down", setup: r3DownType,
			reason: "CinderVolumeError", message: "went to status error while waiting for available",
		},
		{
			name: "quota 0 volumes (HTTP 413)", quota: "volumes",
			reason: "CinderQuotaExceeded", message: "Maximum number of volumes allowed (0) exceeded for quota 'volumes'",
		},
		{
			name: "size over the gigabytes quota", quota: "gigabytes", size: "2Gi",
			reason: "CinderQuotaExceeded", message: "exceeds allowed gigabytes quota. Requested 2G, quota is 1G",
		},

		// claims
		{
			name: "claim with a selector",
			claim: func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
			},
			reason: "UnsupportedClaim", message: "a claim with a selector cannot be provisioned dynamically: remove spec.selector",
		},
		{
			name: "access mode that does not exist", want: r3Refused,
			claim: func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadWriteSometimes"}
			},
			message: `Unsupported value: "ReadWriteSometimes"`,
		},
		{
			name: "ReadWriteMany filesystem",
			claim: func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
			},
			reason: "UnsupportedClaim", message: "ReadWriteMany is only possible with volumeMode: Block on a multiattach volume type",
		},
		{
			// tgtfile has no multiattach extra spec
			name: "ReadWriteMany block on a non-multiattach type", claim: rwxBlock,
			reason: "UnsupportedClaim", message: `ReadWriteMany needs a multiattach volume, but Cinder volume type "tgtfile" did not give one`,
		},
		{
			// the control of the one above, so that refusing every RWX
			// claim is no fix: the Cinder of this stack (21.3) refuses a
			// create request with the multiattach flag, whatever the type
			name: "ReadWriteMany block on a multiattach type (control: binds)", control: true,
			setup: r3MultiattachType, claim: rwxBlock, want: r3Binds, binds: 1, check: r3Multiattach,
		},
		{
			name:   "Ceph Secret that does not exist",
			params: map[string]string{"clusterID": "ceph-1", "cephSecretName": "r3-no-such-ceph-user", "cephSecretNamespace": baseNamespace},
			reason: "MissingSecret", message: "Secret " + baseNamespace + "/r3-no-such-ceph-user named by the StorageClass (cephSecretName/cephSecretNamespace) does not exist",
		},
		{
			name: "node with a malformed FC annotation", setup: r3FCNode,
			class: func(sc *storagev1.StorageClass) {
				wffc := storagev1.VolumeBindingWaitForFirstConsumer
				sc.VolumeBindingMode = &wffc
			},
			claim: func(r *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				pvc.Annotations = map[string]string{r3AnnSelectedNode: r.nodeName}
			},
			reason: "InvalidNodeAnnotation", message: `annotation cinder.openstack.org/fc-wwpns: invalid WWN "garbage": want 16 hex digits`,
		},
		{
			name: "claim of 0 bytes", size: "0", want: r3Refused,
			message: "must be greater than zero",
		},
		{
			name: "claim of 1 byte (binds 1 GiB)", size: "1", want: r3Binds, binds: 1,
			check: r3OneGiB,
		},
		{
			// within Cinder's size field, beyond any backend
			name: "huge claim (100Pi)", size: "100Pi",
			reason: "CinderVolumeError", message: "went to status error while waiting for available",
		},
		{
			// beyond Cinder's size field (2^31-1 GiB)
			name: "claim beyond Cinder's size field (3Ei)", size: "3Ei",
			reason: "UnsupportedClaim", message: "requested size 3Ei is too large",
		},
		{
			name: "dataSourceRef of a kind we do not handle (example.com/Foo)",
			claim: func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				group := "example.com"
				pvc.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: &group, Kind: "Foo", Name: "foo"}
			},
			// a volume populator's: left to it
			want: r3Own, check: r3PopulatorLeftAlone,
		},
		{
			name: "clone of another claim (dataSource PVC)",
			claim: func(_ *r3Run, _ *r3Entry, pvc *corev1.PersistentVolumeClaim) {
				pvc.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "r3-source"}
			},
			reason: "InvalidDataSource", message: "the claim to clone", // r3-source does not exist
		},

		// PVs
		{
			name: "PV of another provisioner (Released)", want: r3Own,
			make: r3ForeignPV, check: r3ForeignPVLeftAlone,
			message: "belongs to provisioner",
		},
		{
			name: "PV whose volume was deleted behind our back", want: r3Own, binds: 1,
			check: r3VolumeDeletedBehindOurBack,
		},
		{
			name: "PV whose volume-id annotation was emptied", want: r3Own, binds: 1,
			check:  r3EditedVolumeID(func(*r3Entry) string { return "" }),
			reason: r3ReasonFailedDelete, message: "annotation cinder.openstack.org/volume-id is empty",
		},
		{
			name: "PV whose volume-id annotation is garbage", want: r3Own, binds: 1,
			check:  r3EditedVolumeID(func(*r3Entry) string { return "garbage" }),
			reason: r3ReasonFailedDelete, message: "cinder.openstack.org/volume-id",
		},
		{
			// an admin restoring PVs from a backup with another PV's id:
			// deleting this PV must not delete the other PV's volume
			name: "PV whose volume-id annotation names another PV's volume", want: r3Own, binds: 2,
			make:   r3TwoClaims,
			check:  r3EditedVolumeID(func(en *r3Entry) string { return en.victimID }),
			reason: r3ReasonFailedDelete, // the message must name the other volume: set by the check
		},
	}
}

// --- making things ---

func r3Int(n int) *int { return &n }

// quota makes a Cinder project of its own with the quota and starts a
// provisioner for it (its own name, the env's cluster id).
func (r *r3Run) quota(key string, opts quotasets.UpdateOpts) {
	r.t.Helper()
	e := r.e
	ctx := context.Background()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	q := &r3Quota{project: hex.EncodeToString(b)}
	q.name = strings.Replace(e.name, ".", "-q"+key+".", 1)
	q.cinder = e.s.CinderClientFor(r.t, q.project)
	e.s.CleanupVolumesWithMetadata(r.t, q.cinder, metaClusterID, e.clusterID)
	if _, err := quotasets.Update(ctx, e.cinder, q.project, opts).Extract(); err != nil {
		r.t.Fatalf("set quota of project %s: %v", q.project, err)
	}
	r.t.Cleanup(func() {
		if err := quotasets.Delete(context.Background(), e.cinder, q.project).ExtractErr(); err != nil {
			r.t.Logf("reset quota of project %s: %v", q.project, err)
		}
	})
	conf := filepath.Join(r.t.TempDir(), "cloud-"+key+".conf")
	body := fmt.Sprintf("[Global]\ncinder-endpoint = %s\nusername = admin\ntenant-name = %s\n", e.s.Cinder.BaseEndpoint(), q.project)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		r.t.Fatal(err)
	}
	e.provisioner("provisioner-quota-"+key, "--cloud-config", conf, "--provisioner-name", q.name)
	r.quotas[key] = q
}

// makeClaim makes the entry's class (when it needs its own) and claim.
func (r *r3Run) makeClaim(en *r3Entry) {
	e := r.e
	en.className = r.plain
	if en.params != nil || en.class != nil || en.quota != "" {
		var mutate []func(*storagev1.StorageClass)
		if en.class != nil {
			mutate = append(mutate, en.class)
		}
		if en.quota != "" {
			name := r.quotas[en.quota].name
			mutate = append(mutate, func(sc *storagev1.StorageClass) { sc.Provisioner = name })
		}
		en.className = e.storageClass(en.params, mutate...)
	}
	size := en.size
	if size == "" {
		size = "1Gi"
	}
	name := fmt.Sprintf("r3-%s", framework.UniqueName("c"))
	mutate := func(pvc *corev1.PersistentVolumeClaim) {
		if en.claim != nil {
			en.claim(r, en, pvc)
		}
	}
	if en.want == r3Refused {
		// once: the refusal is the answer, not a fault to retry
		pvc := r3ClaimObject(e.ns, name, en.className, size)
		mutate(pvc)
		created, err := e.s.Kube.CoreV1().PersistentVolumeClaims(e.ns).Create(context.Background(), pvc, metav1.CreateOptions{})
		if err == nil {
			en.pvc = created
		}
		en.apiErr = err
		return
	}
	pvc, err := e.claim(name, en.className, size, mutate)
	if err != nil {
		r.t.Fatalf("%s: create claim: %v", en.name, err)
	}
	en.pvc = pvc
	en.pvName = "pvc-" + string(pvc.UID)
}

func r3ClaimObject(ns, name, class, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// volumeType makes a public volume type with the extra specs; it is
// deleted at the end.
func (r *r3Run) volumeType(prefix string, specs map[string]string) string {
	public := true
	name := framework.UniqueName(prefix)
	vt, err := volumetypes.Create(context.Background(), r.e.cinder, volumetypes.CreateOpts{Name: name, IsPublic: &public, ExtraSpecs: specs}).Extract()
	if err != nil {
		r.t.Fatalf("create volume type %s: %v", name, err)
	}
	r.types[vt.ID] = name
	return name
}

// r3DownType makes a volume type whose backend does not exist: the
// scheduler puts its volumes in error.
func r3DownType(r *r3Run, en *r3Entry) {
	en.params = map[string]string{"type": r.volumeType("r3-down", map[string]string{"volume_backend_name": "r3-no-such-backend"})}
}

// r3MultiattachType makes a multiattach volume type on the tgtfile backend.
func r3MultiattachType(r *r3Run, en *r3Entry) {
	en.params = map[string]string{"type": r.volumeType("r3-multiattach", map[string]string{"volume_backend_name": "tgtfile", "multiattach": "<is> True"})}
}

// r3FCNode makes a Node whose FC annotation is garbage.
func r3FCNode(r *r3Run, _ *r3Entry) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        framework.UniqueName("r3-fc-node"),
		Annotations: map[string]string{r3AnnNodeFCWWPNs: "garbage"},
	}}
	if _, err := r.e.s.Kube.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		r.t.Fatalf("create node: %v", err)
	}
	r.nodeName = node.Name
	r.t.Cleanup(func() {
		_ = r.e.s.Kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
}

// r3TwoClaims makes the entry's claim and a second one whose volume the
// first PV's edited annotation will name.
func r3TwoClaims(r *r3Run, en *r3Entry) {
	r.makeClaim(en)
	victim, err := r.e.claim(fmt.Sprintf("r3-%s", framework.UniqueName("victim")), r.plain, "1Gi")
	if err != nil {
		r.t.Fatalf("create claim: %v", err)
	}
	en.extra = victim
}

// r3ForeignPV makes a Released PV that names our provisioner in
// provisioned-by but another in our identity annotation, and a Cinder volume
// for it (of another cluster: neither our sweep nor our count sees it).
func r3ForeignPV(r *r3Run, en *r3Entry) {
	e := r.e
	ctx := context.Background()
	other := e.clusterID + "-other"
	e.s.CleanupVolumesWithMetadata(r.t, e.cinder, metaClusterID, other)
	name := framework.UniqueName("r3-foreign")
	vol, err := volumes.Create(ctx, e.cinder, volumes.CreateOpts{Size: 1, Name: name, Metadata: map[string]string{metaClusterID: other}}, nil).Extract()
	if err != nil {
		r.t.Fatalf("create volume: %v", err)
	}
	en.volumeID = vol.ID
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			r3AnnProvisionedBy: e.name,
			annVolumeID:        vol.ID,
			r3AnnProvisionerID: r3ForeignProvisioner,
		}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              r.plain,
			// a claim that is gone: the PV controller releases the PV
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: e.ns, Name: "r3-gone", UID: uuid.NewUUID()},
			PersistentVolumeSource: corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
				TargetPortal: "127.0.0.1:3260", IQN: "iqn.2026-11.com.example:foreign", Lun: 0, FSType: "ext4",
			}},
		},
	}
	if _, err := e.s.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		r.t.Fatalf("create PV: %v", err)
	}
	en.pvName = name
	r.t.Cleanup(func() { r.forceDeletePV(name) })
}

// forceDeletePV deletes a PV the test made, finalizers and all.
func (r *r3Run) forceDeletePV(name string) {
	ctx := context.Background()
	pvs := r.e.s.Kube.CoreV1().PersistentVolumes()
	_, _ = pvs.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	_ = pvs.Delete(ctx, name, metav1.DeleteOptions{})
}

// --- looking ---

// warnings lists the Warning Events of an object.
func (r *r3Run) warnings(ctx context.Context, uid types.UID) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.uid": string(uid), "type": corev1.EventTypeWarning}.AsSelector().String()
	list, err := r.e.s.Kube.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func r3DescribeEvents(evs []corev1.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s ×%d: %s", ev.Reason, ev.Count, ev.Message)
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

// cinderFor is the Cinder client of the project that serves the entry.
func (r *r3Run) cinderFor(en *r3Entry) *gophercloud.ServiceClient {
	if en.quota != "" {
		return r.quotas[en.quota].cinder
	}
	return r.e.cinder
}

// volumesNamed lists the volumes (any status) of the env's cluster named
// name, in the project that serves the entry.
func (r *r3Run) volumesNamed(ctx context.Context, en *r3Entry, name string) ([]string, error) {
	vols, err := framework.VolumesWithMetadata(ctx, r.cinderFor(en), metaClusterID, r.e.clusterID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vols {
		if v.Name == name {
			out = append(out, v.ID+" "+v.Status)
		}
	}
	return out, nil
}

// allVolumes lists every volume of the env's cluster, in every project R3
// uses.
func (r *r3Run) allVolumes(ctx context.Context) ([]string, error) {
	clients := []*gophercloud.ServiceClient{r.e.cinder}
	for _, q := range r.quotas {
		clients = append(clients, q.cinder)
	}
	var out []string
	for _, sc := range clients {
		vols, err := framework.VolumesWithMetadata(ctx, sc, metaClusterID, r.e.clusterID)
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			out = append(out, v.Name+" "+v.ID+" "+v.Status)
		}
	}
	return out, nil
}

// volume reads a volume of the main project; nil when Cinder knows it no
// more.
func (r *r3Run) volume(ctx context.Context, id string) (*volumes.Volume, error) {
	v, err := volumes.Get(ctx, r.e.cinder, id).Extract()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil, nil
	}
	return v, err
}

// r3LogLine reports whether one line of the process's log holds every part.
func r3LogLine(p *framework.Process, parts ...string) bool {
	for _, line := range strings.Split(p.Log(), "\n") {
		all := true
		for _, s := range parts {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// --- checking ---

// checkEntry checks what the entry must give.
func (r *r3Run) checkEntry(t *testing.T, en *r3Entry) {
	r.checked++
	switch en.want {
	case r3Refused:
		if en.apiErr == nil {
			en.got = "accepted by the API server"
			t.Fatalf("the API server accepted the claim; want a refusal with %q", en.message)
		}
		en.got = "API server refused: " + en.apiErr.Error()
		if !apierrors.IsInvalid(en.apiErr) || !strings.Contains(en.apiErr.Error(), en.message) {
			t.Errorf("API server refused with %v; want an Invalid refusal with %q", en.apiErr, en.message)
		}
	case r3Event:
		r.checkClaimEvent(t, en)
	case r3Binds:
		en.got = "did not bind (see the test log)"
		pv := r.waitBound(t, en.pvc)
		en.got = "bound to " + pv.Name
	}
	if en.check != nil {
		en.check(t, r, en)
	}
}

// checkClaimEvent waits for the claim's Warning Event with the entry's
// reason and message; a claim that binds instead, or gets another reason
// of ours, fails at once. Then no volume of the claim may be left.
func (r *r3Run) checkClaimEvent(t *testing.T, en *r3Entry) {
	ctx := context.Background()
	var seen []corev1.Event
	defer func() {
		if t.Failed() {
			t.Logf("Warning Events of claim %s:%s", en.pvc.Name, r3DescribeEvents(seen))
		}
	}()
	framework.Eventually(t, r3EventWait, fmt.Sprintf("Warning %s %q on claim %s", en.reason, en.message, en.pvc.Name), func(ctx context.Context) (bool, error) {
		evs, err := r.warnings(ctx, en.pvc.UID)
		if err != nil {
			return false, nil // polled again
		}
		seen = evs
		for _, ev := range evs {
			if ev.Reason == en.reason && strings.Contains(ev.Message, en.message) {
				en.got = ev.Reason + ": " + ev.Message
				return true, nil
			}
		}
		for _, ev := range evs {
			if r3Reasons[ev.Reason] && ev.Reason != en.reason {
				en.got = ev.Reason + ": " + ev.Message
				return false, fmt.Errorf("gave Warning %s instead: %s", ev.Reason, ev.Message)
			}
		}
		c, err := r.e.s.Kube.CoreV1().PersistentVolumeClaims(r.e.ns).Get(ctx, en.pvc.Name, metav1.GetOptions{})
		if err == nil && c.Status.Phase == corev1.ClaimBound {
			en.got = "bound to " + c.Spec.VolumeName
			return false, fmt.Errorf("the claim bound to PV %s instead", c.Spec.VolumeName)
		}
		return false, nil
	})
	r.noVolumeOf(t, en)
	// the Event must be the only kind of ours the claim got
	if evs, err := r.warnings(ctx, en.pvc.UID); err == nil {
		for _, ev := range evs {
			if r3Reasons[ev.Reason] && ev.Reason != en.reason {
				t.Errorf("also gave Warning %s: %s", ev.Reason, ev.Message)
			}
		}
	}
}

// noVolumeOf waits until no volume of the entry's claim exists.
func (r *r3Run) noVolumeOf(t *testing.T, en *r3Entry) {
	var left []string
	defer func() {
		if t.Failed() && len(left) > 0 {
			t.Logf("volumes of claim %s: %v", en.pvc.Name, left)
		}
	}()
	framework.Eventually(t, r3GoneWait, fmt.Sprintf("no volume of claim %s left", en.pvc.Name), func(ctx context.Context) (bool, error) {
		var err error
		left, err = r.volumesNamed(ctx, en, en.pvName)
		return err == nil && len(left) == 0, nil
	})
}

// waitBound waits until the claim is bound and returns its PV.
func (r *r3Run) waitBound(t *testing.T, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	var pv *corev1.PersistentVolume
	var seen []corev1.Event
	defer func() {
		if t.Failed() && pv == nil {
			t.Logf("Warning Events of claim %s:%s", pvc.Name, r3DescribeEvents(seen))
		}
	}()
	framework.Eventually(t, r3BindWait, fmt.Sprintf("claim %s bound", pvc.Name), func(ctx context.Context) (bool, error) {
		seen, _ = r.warnings(ctx, pvc.UID)
		for _, ev := range seen {
			if r3Reasons[ev.Reason] && ev.Reason != "PartialConnectionInfo" {
				return false, fmt.Errorf("gave Warning %s instead: %s", ev.Reason, ev.Message)
			}
		}
		c, err := r.e.s.Kube.CoreV1().PersistentVolumeClaims(r.e.ns).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil || c.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
		pv, err = r.e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, nil
	})
	r.bound++
	return pv
}

// waitPVGone waits until the PV is gone; with strict, a VolumeFailedDelete
// Warning on it fails at once.
func (r *r3Run) waitPVGone(t *testing.T, pv *corev1.PersistentVolume, strict bool) {
	framework.Eventually(t, r3GoneWait, fmt.Sprintf("PV %s gone", pv.Name), func(ctx context.Context) (bool, error) {
		_, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if evs, err := r.warnings(ctx, pv.UID); err == nil && strict {
			for _, ev := range evs {
				if ev.Reason == r3ReasonFailedDelete {
					return false, fmt.Errorf("a Warning %s on PV %s: %s", ev.Reason, pv.Name, ev.Message)
				}
			}
		}
		return false, nil
	})
}

// waitVolumeGone waits until Cinder no longer knows the volume.
func (r *r3Run) waitVolumeGone(t *testing.T, id string) {
	framework.Eventually(t, r3GoneWait, fmt.Sprintf("volume %s gone", id), func(ctx context.Context) (bool, error) {
		v, err := r.volume(ctx, id)
		return err == nil && v == nil, nil
	})
}

// r3OneGiB: a claim of 1 byte gets a 1 GiB volume, and the PV says so.
func r3OneGiB(t *testing.T, r *r3Run, en *r3Entry) {
	c, err := r.e.s.Kube.CoreV1().PersistentVolumeClaims(r.e.ns).Get(context.Background(), en.pvc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("PV %s capacity %s, want 1Gi", pv.Name, got.String())
	}
	v, err := r.volume(context.Background(), pv.Annotations[annVolumeID])
	if err != nil || v == nil {
		t.Fatalf("volume of PV %s: %v %v", pv.Name, v, err)
	}
	if v.Size != 1 {
		t.Errorf("volume %s is %d GiB, want 1", v.ID, v.Size)
	}
	en.got = fmt.Sprintf("bound to %s: PV capacity %s, Cinder volume %d GiB", pv.Name, pv.Spec.Capacity.Storage().String(), v.Size)
}

// r3Multiattach: the RWX block claim is backed by a multiattach volume.
func r3Multiattach(t *testing.T, r *r3Run, en *r3Entry) {
	pv, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), en.pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.volume(context.Background(), pv.Annotations[annVolumeID])
	if err != nil || v == nil {
		t.Fatalf("volume of PV %s: %v %v", pv.Name, v, err)
	}
	if !v.Multiattach {
		t.Errorf("volume %s of the ReadWriteMany PV %s is not multiattach", v.ID, pv.Name)
	}
	en.got += fmt.Sprintf(": volume %s multiattach=%v", v.ID, v.Multiattach)
}

// r3DeleteClaimWhileProvisioning deletes the claim as soon as its volume
// exists in Cinder, before its PV does.
func r3DeleteClaimWhileProvisioning(t *testing.T, r *r3Run, en *r3Entry) {
	status := r.waitVolumeAppears(t, en)
	if err := r.e.deleteClaim(en.pvc); err != nil {
		t.Fatalf("delete claim: %v", err)
	}
	en.got = "deleted with its volume " + status
}

// r3DeleteClassWhileProvisioning deletes the claim's StorageClass as soon
// as its volume exists in Cinder.
func r3DeleteClassWhileProvisioning(t *testing.T, r *r3Run, en *r3Entry) {
	status := r.waitVolumeAppears(t, en)
	if err := r.e.s.Kube.StorageV1().StorageClasses().Delete(context.Background(), en.className, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete StorageClass: %v", err)
	}
	en.got = "class deleted with the volume " + status
}

// waitVolumeAppears waits for the claim's volume in Cinder and says its
// status, and whether the PV existed yet.
func (r *r3Run) waitVolumeAppears(t *testing.T, en *r3Entry) string {
	var vols []string
	framework.Eventually(t, r3EventWait, fmt.Sprintf("volume of claim %s in Cinder", en.pvc.Name), func(ctx context.Context) (bool, error) {
		var err error
		vols, err = r.volumesNamed(ctx, en, en.pvName)
		return err == nil && len(vols) > 0, nil
	})
	_, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), en.pvName, metav1.GetOptions{})
	if err == nil {
		t.Logf("PV %s existed already: the act came after provisioning", en.pvName)
		return strings.Join(vols, ", ") + " (PV made)"
	}
	return strings.Join(vols, ", ") + " (no PV yet)"
}

// r3ClaimAndVolumeGone: the claim's volume and PV go, nothing waits.
func r3ClaimAndVolumeGone(t *testing.T, r *r3Run, en *r3Entry) {
	start := time.Now()
	r.noVolumeOf(t, en)
	framework.Eventually(t, r3GoneWait, fmt.Sprintf("no PV %s", en.pvName), func(ctx context.Context) (bool, error) {
		_, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, en.pvName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	en.got += fmt.Sprintf("; volume and PV gone %.0fs later", time.Since(start).Seconds())
}

// r3BindsThenGoes: the provisioning under way finishes (the class was read
// when it began), and the volume goes with the claim, class or no class.
func r3BindsThenGoes(t *testing.T, r *r3Run, en *r3Entry) {
	pv := r.waitBound(t, en.pvc)
	id := pv.Annotations[annVolumeID]
	if err := r.e.deleteClaim(en.pvc); err != nil {
		t.Fatalf("delete claim: %v", err)
	}
	r.waitPVGone(t, pv, true)
	r.waitVolumeGone(t, id)
	en.got += "; bound to " + pv.Name + ", PV and volume gone with the claim"
}

// r3ForeignPVLeftAlone: our provisioner looks at the PV, decides it is
// not its own, and leaves it and its volume alone, with no Warning.
func r3ForeignPVLeftAlone(t *testing.T, r *r3Run, en *r3Entry) {
	ctx := context.Background()
	framework.Eventually(t, r3EventWait, fmt.Sprintf("PV %s Released", en.pvName), func(ctx context.Context) (bool, error) {
		pv, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, en.pvName, metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeReleased, nil
	})
	framework.Eventually(t, r3EventWait, "the provisioner ignores the PV", func(context.Context) (bool, error) {
		return r3LogLine(r.main, "Volume deletion ignored", en.pvName, en.message), nil
	})
	pv, err := r.e.s.Kube.CoreV1().PersistentVolumes().Get(ctx, en.pvName, metav1.GetOptions{})
	if err != nil || pv.DeletionTimestamp != nil {
		t.Fatalf("PV %s deleted: %v", en.pvName, err)
	}
	if evs, err := r.warnings(ctx, pv.UID); err == nil {
		for _, ev := range evs {
			if ev.Reason == r3ReasonFailedDelete || r3Reasons[ev.Reason] {
				t.Errorf("Warning %s on another provisioner's PV: %s", ev.Reason, ev.Message)
			}
		}
	}
	v, err := r.volume(ctx, en.volumeID)
	if err != nil || v == nil || v.Status == "deleting" {
		t.Fatalf("another provisioner's volume %s touched: %+v %v", en.volumeID, v, err)
	}
	en.got = fmt.Sprintf("ignored (log: Volume deletion ignored ... %s); PV Released and kept, volume %s %s", en.message, v.ID, v.Status)
	r.forceDeletePV(en.pvName)
}

// r3VolumeDeletedBehindOurBack: the claim binds; its volume is deleted in
// Cinder directly (attachment first); deleting the claim then removes the
// PV and its CHAP Secret without a Warning: a gone volume is deleted.
func r3VolumeDeletedBehindOurBack(t *testing.T, r *r3Run, en *r3Entry) {
	ctx := context.Background()
	pv := r.waitBound(t, en.pvc)
	id := pv.Annotations[annVolumeID]
	v, err := r.volume(ctx, id)
	if err != nil || v == nil {
		t.Fatalf("volume %s of PV %s: %v", id, pv.Name, err)
	}
	for _, a := range v.Attachments {
		if err := attachments.Delete(ctx, r.e.cinder, a.AttachmentID).ExtractErr(); err != nil {
			t.Fatalf("delete attachment %s: %v", a.AttachmentID, err)
		}
	}
	framework.Eventually(t, r3EventWait, fmt.Sprintf("volume %s available", id), func(ctx context.Context) (bool, error) {
		v, err := r.volume(ctx, id)
		return err == nil && v != nil && v.Status == "available", nil
	})
	if err := volumes.Delete(ctx, r.e.cinder, id, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		t.Fatalf("delete volume %s: %v", id, err)
	}
	r.waitVolumeGone(t, id)
	if err := r.e.deleteClaim(en.pvc); err != nil {
		t.Fatalf("delete claim: %v", err)
	}
	r.waitPVGone(t, pv, true)
	if ref := pv.Spec.ISCSI; ref != nil && ref.SecretRef != nil {
		_, err := r.e.s.Kube.CoreV1().Secrets(ref.SecretRef.Namespace).Get(ctx, ref.SecretRef.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("CHAP Secret %s/%s of PV %s left: %v", ref.SecretRef.Namespace, ref.SecretRef.Name, pv.Name, err)
		}
	}
	en.got = "PV " + pv.Name + " and its CHAP Secret deleted, no Warning"
}

// r3EditedVolumeID: the claim binds; its PV's volume-id annotation is set
// to what value says; deleting the claim must give a VolumeFailedDelete
// Warning on the PV, and delete no volume (neither the PV's real one nor
// one the annotation names). With the annotation restored, PV and volume go.
func r3EditedVolumeID(value func(en *r3Entry) string) func(t *testing.T, r *r3Run, en *r3Entry) {
	return func(t *testing.T, r *r3Run, en *r3Entry) {
		ctx := context.Background()
		kube := r.e.s.Kube
		pv := r.waitBound(t, en.pvc)
		realID := pv.Annotations[annVolumeID]
		if en.extra != nil {
			victim := r.waitBound(t, en.extra)
			en.victimID = victim.Annotations[annVolumeID]
			en.message = en.victimID // a clear message names the volume it refuses
		}
		victimID := en.victimID
		target := value(en)
		restore := func() error {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annVolumeID: realID}}})
			_, err := kube.CoreV1().PersistentVolumes().Patch(context.Background(), pv.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		restored := false
		defer func() {
			if !restored {
				if err := restore(); err != nil {
					t.Errorf("restore annotation of PV %s: %v", pv.Name, err)
				}
			}
		}()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annVolumeID: target}}})
		if _, err := kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("edit PV %s: %v", pv.Name, err)
		}
		if err := r.e.deleteClaim(en.pvc); err != nil {
			t.Fatalf("delete claim: %v", err)
		}
		en.got = ""
		framework.Eventually(t, r3EventWait, fmt.Sprintf("Warning %s %q on PV %s", en.reason, en.message, pv.Name), func(ctx context.Context) (bool, error) {
			if v, err := r.volume(ctx, realID); err == nil && (v == nil || v.Status == "deleting") {
				en.got = "deleted the PV's real volume " + realID
				return false, fmt.Errorf("deleted the PV's real volume %s though the annotation no longer names it", realID)
			}
			if victimID != "" {
				if v, err := r.volume(ctx, victimID); err == nil && (v == nil || v.Status == "deleting") {
					en.got = "deleted the other PV's volume " + victimID
					return false, fmt.Errorf("deleted the volume %s of the other PV, named by the edited annotation", victimID)
				}
			}
			evs, err := r.warnings(ctx, pv.UID)
			if err == nil {
				for _, ev := range evs {
					if ev.Reason == en.reason && strings.Contains(ev.Message, en.message) {
						en.got = ev.Reason + ": " + ev.Message
						return true, nil
					}
				}
			}
			if _, err := kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				v, _ := r.volume(ctx, realID)
				state := "gone"
				if v != nil {
					state = v.Status
					if len(v.Attachments) == 0 {
						state += ", its export removed"
					}
				}
				if en.got == "" {
					en.got = fmt.Sprintf("PV deleted without a Warning; its real volume %s: %s", realID, state)
				}
				return false, fmt.Errorf("PV %s deleted without a Warning; its real volume %s: %s", pv.Name, realID, state)
			}
			return false, nil
		})
		v, err := r.volume(ctx, realID)
		if err != nil || v == nil || v.Status == "deleting" {
			t.Errorf("the PV's real volume %s deleted by mistake: %+v %v", realID, v, err)
		}
		if victimID != "" {
			if v, err := r.volume(ctx, victimID); err != nil || v == nil || v.Status != "in-use" {
				t.Errorf("the other PV's volume %s touched: %+v %v", victimID, v, err)
			}
		}
		if err := restore(); err != nil {
			t.Fatalf("restore annotation of PV %s: %v", pv.Name, err)
		}
		restored = true
		r.waitPVGone(t, pv, false)
		r.waitVolumeGone(t, realID)
		en.got += "; restored: PV and volume gone"
	}
}
