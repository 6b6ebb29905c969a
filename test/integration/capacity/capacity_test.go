// Package capacity tests capacity-aware scheduling end to end: the built
// provisioner with --capacity publishes CSIStorageCapacity objects from a
// real Cinder's limits and pool stats, and a real kube-scheduler (the
// stack runs none; the test starts one) places pods with
// WaitForFirstConsumer claims only where they say there is room.
//
// What it models, honestly: Cinder's quota is per project, not per zone,
// and the stack's Cinder has one availability zone. The two Kubernetes
// zones are therefore (a) the Cinder zone, whose room is the project's
// gigabytes quota left, and (b) a zone Cinder does not serve at all (the
// provisioner would ask Cinder for it and be refused), which gets no
// capacity object. The test's project (noauth takes any project id) starts
// with a quota of 1 GiB: a 1 GiB claim's pod goes to zone (a), a 2 GiB
// claim's pod is placed nowhere (the scheduler's event says there is not
// enough free storage) until the quota is raised, and then only in zone
// (a); zone (b) never gets a pod.
package capacity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cinder-provisioner/cinder-provisioner/internal/capacity"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	zoneKey      = "topology.kubernetes.io/zone"
	foreignZone  = "itcap-no-cinder" // a zone Cinder does not serve
	pollInterval = 2 * time.Second
	waitTimeout  = 2 * time.Minute
)

func TestAZoneWithoutRoomGetsNoPods(t *testing.T) {
	s := framework.Get(t)
	ctx := context.Background()
	id := framework.UniqueName("itcap")
	driver := id + ".cinder.openstack.org" // a DNS subdomain: it names the CSIDriver
	ns := s.Namespace(t, "capacity")
	provNS := s.Namespace(t, "capacity-provisioner")

	// a project of the test's own, with a gigabytes quota of 1
	project := randomHex(16)
	cinder := s.CinderClientFor(t, project)
	s.CleanupClusterVolumes(t, cinder, id)
	setGigabytesQuota(t, cinder, project, 1)
	t.Cleanup(func() { setGigabytesQuota(t, cinder, project, -1) })
	conf := filepath.Join(t.TempDir(), "cloud.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[Global]\ncinder-endpoint = %s\nusername = admin\ntenant-name = %s\n", s.Cinder.BaseEndpoint(), project), 0o600); err != nil {
		t.Fatal(err)
	}
	cinderZone := firstZone(t, cinder)

	// two Ready nodes, one per zone, and only they may take the test's pods
	nodeIn := s.CreateReadyNode(t, id+"-in", map[string]string{zoneKey: cinderZone, "it-capacity": id}).Name
	nodeOut := s.CreateReadyNode(t, id+"-out", map[string]string{zoneKey: foreignZone, "it-capacity": id}).Name

	wfc := storagev1.VolumeBindingWaitForFirstConsumer
	class := framework.CreateStorageClass(t, s.Kube, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: id}, Provisioner: driver,
		Parameters: map[string]string{"type": "tgtfile"}, VolumeBindingMode: &wfc,
	})
	t.Cleanup(func() { // the CSIDriver is cluster-scoped; its capacities go with it (owner)
		err := s.Kube.StorageV1().CSIDrivers().Delete(context.Background(), driver, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: delete CSIDriver %s: %v", driver, err)
		}
	})

	metricsAddr := freeAddress(t)
	args := framework.ProvisionerArgs{
		Kubeconfig: s.Kubeconfig, CloudConfig: conf, Name: driver, ClusterID: id, SecretNamespace: provNS,
		Initiator: "iqn.2026-11.org.cinder-provisioner:integration", MetricsAddress: metricsAddr, Verbosity: 4,
	}.Args()
	prov := framework.Start(t, "provisioner", s.ProvisionerBinary(t),
		append(args, "--capacity", "--capacity-poll-interval", pollInterval.String(), "--capacity-namespace", provNS)...)

	// published: 1 GiB in the Cinder zone; nothing for the foreign zone
	waitCapacity(t, s, provNS, class, "zone="+cinderZone, "1Gi")
	if c := capacityOf(t, s, provNS, class, "zone="+foreignZone); c != nil {
		t.Errorf("a capacity object for a zone Cinder does not serve: %v", c.Capacity)
	}
	d, err := s.Kube.StorageV1().CSIDrivers().Get(ctx, driver, metav1.GetOptions{})
	if err != nil || d.Spec.StorageCapacity == nil || !*d.Spec.StorageCapacity {
		t.Fatalf("CSIDriver %s: %+v, %v; want storageCapacity true", driver, d, err)
	}

	s.StartScheduler(t)
	defaultServiceAccount(t, s, ns) // the stack runs no serviceaccount controller

	// 2 GiB do not fit anywhere: no node, and the scheduler says why
	big := podWithClaim(t, s, ns, id, "big", class, "2Gi")
	ev := framework.WaitEvent(t, s.Kube, ns, big, corev1.EventTypeWarning, "FailedScheduling", waitTimeout)
	if !strings.Contains(ev.Message, "did not have enough free storage") {
		t.Errorf("FailedScheduling of %s says %q; want the scheduler's 'did not have enough free storage'", big, ev.Message)
	}
	t.Logf("FailedScheduling: %s", ev.Message)

	// 1 GiB fits, in the Cinder zone only
	small := podWithClaim(t, s, ns, id, "small", class, "1Gi")
	if node := waitScheduled(t, s, ns, small); node != nodeIn {
		t.Fatalf("pod %s went to %s, want %s (the only zone with room)", small, node, nodeIn)
	}
	framework.WaitBound(t, s.Kube, ns, small, waitTimeout, false)
	// the project's quota is now used up
	waitCapacity(t, s, provNS, class, "zone="+cinderZone, "0")
	if p := getPod(t, s, ns, big); p.Spec.NodeName != "" {
		t.Fatalf("pod %s was put on %s with no room anywhere", big, p.Spec.NodeName)
	}
	if c := claim(t, s, ns, big); c.Annotations["volume.kubernetes.io/selected-node"] != "" {
		t.Errorf("claim %s got a node with no room anywhere: %v", big, c.Annotations)
	}

	// room again: the quota grows by 2 GiB, and the big pod goes to the Cinder zone
	setGigabytesQuota(t, cinder, project, 3)
	waitCapacity(t, s, provNS, class, "zone="+cinderZone, "2Gi")
	if node := waitScheduled(t, s, ns, big); node != nodeIn {
		t.Fatalf("pod %s went to %s, want %s", big, node, nodeIn)
	}
	framework.WaitBound(t, s.Kube, ns, big, waitTimeout, false)
	t.Logf("pods %s and %s on %s (zone %s); none on %s (zone %s, no Cinder there)", small, big, nodeIn, cinderZone, nodeOut, foreignZone)
	logCapacityCost(t, metricsAddr)

	// clean up with the provisioner running: pods (no kubelet: force), claims, volumes
	for _, name := range []string{small, big} {
		if err := s.Kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatalf("delete pod %s: %v", name, err)
		}
		framework.DeleteClaim(t, s.Kube, ns, name)
	}
	framework.Eventually(t, waitTimeout, "the test's volumes are deleted", func(ctx context.Context) (bool, error) {
		vols, err := framework.ClusterVolumes(ctx, cinder, id)
		return len(vols) == 0, err
	})
	if prov.Exited() {
		t.Errorf("the provisioner exited")
	}
}

// freeAddress is a 127.0.0.1 port free a moment ago, for /metrics.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// logCapacityCost waits for 10 refreshes, then logs what they cost in
// Cinder requests and time (docs/capacity.md quotes it), from the
// provisioner's own request metrics for the reads only the publisher makes.
func logCapacityCost(t *testing.T, addr string) {
	t.Helper()
	var m map[string]float64
	framework.Eventually(t, waitTimeout, "10 capacity refreshes", func(context.Context) (bool, error) {
		m = scrape(t, addr)
		return m[capacity.MetricRefreshes+`{outcome="published"}`] >= 10, nil
	})
	refreshes := m[capacity.MetricRefreshes+`{outcome="published"}`]
	var requests, seconds float64
	var lines []string
	for _, op := range []string{"get_limits", "list_availability_zones", "get_pools", "list_services", "list_volume_types"} {
		n := m[`cinder_provisioner_cinder_requests_total{operation="`+op+`",outcome="success"}`]
		sum := m[`cinder_provisioner_cinder_request_duration_seconds_sum{operation="`+op+`",outcome="success"}`]
		requests, seconds = requests+n, seconds+sum
		mean := 0.0
		if n > 0 {
			mean = sum / n
		}
		lines = append(lines, fmt.Sprintf("%s: %.0f requests, mean %.1f ms", op, n, mean*1000))
	}
	if requests == 0 {
		t.Errorf("no capacity requests in /metrics")
	}
	t.Logf("capacity cost: %.0f refreshes, %.2f Cinder requests and %.1f ms of Cinder time per refresh\n%s",
		refreshes, requests/refreshes, seconds/refreshes*1000, strings.Join(lines, "\n"))
}

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func setGigabytesQuota(t *testing.T, sc *gophercloud.ServiceClient, project string, gib int) {
	t.Helper()
	if _, err := quotasets.Update(context.Background(), sc, project, quotasets.UpdateOpts{Gigabytes: &gib}).Extract(); err != nil {
		t.Fatalf("set the gigabytes quota of project %s to %d: %v", project, gib, err)
	}
}

func firstZone(t *testing.T, sc *gophercloud.ServiceClient) string {
	t.Helper()
	pages, err := availabilityzones.List(sc).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list availability zones: %v", err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil || len(zones) == 0 {
		t.Fatalf("availability zones %v, %v", zones, err)
	}
	return zones[0].ZoneName
}

func capacityOf(t *testing.T, s *framework.Stack, ns, class, segment string) *storagev1.CSIStorageCapacity {
	t.Helper()
	list, err := s.Kube.StorageV1().CSIStorageCapacities(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list CSIStorageCapacities: %v", err)
	}
	for i, c := range list.Items {
		if c.StorageClassName == class && c.Annotations[capacity.AnnotationSegment] == segment {
			return &list.Items[i]
		}
	}
	return nil
}

func waitCapacity(t *testing.T, s *framework.Stack, ns, class, segment, want string) {
	t.Helper()
	q := resource.MustParse(want)
	framework.Eventually(t, waitTimeout, fmt.Sprintf("capacity %s for class %s, %s", want, class, segment), func(context.Context) (bool, error) {
		c := capacityOf(t, s, ns, class, segment)
		return c != nil && c.MaximumVolumeSize != nil && c.MaximumVolumeSize.Cmp(q) == 0, nil
	})
}

func defaultServiceAccount(t *testing.T, s *framework.Stack, ns string) {
	t.Helper()
	_, err := s.Kube.CoreV1().ServiceAccounts(ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount default: %v", err)
	}
}

// podWithClaim creates a claim and a pod using it that may only go to the
// test's nodes; both are named name.
func podWithClaim(t *testing.T, s *framework.Stack, ns, id, name, class, size string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, framework.Claim(ns, name, class, size), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create claim %s: %v", name, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeSelector:                 map[string]string{"it-capacity": id},
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name: "c", Image: "registry.k8s.io/pause:3.10",
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
			}}},
		},
	}
	if _, err := s.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return name
}

func getPod(t *testing.T, s *framework.Stack, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := s.Kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

func claim(t *testing.T, s *framework.Stack, ns, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get claim %s: %v", name, err)
	}
	return c
}

func waitScheduled(t *testing.T, s *framework.Stack, ns, name string) string {
	t.Helper()
	var node string
	framework.Eventually(t, waitTimeout, "pod "+name+" scheduled", func(ctx context.Context) (bool, error) {
		p, err := s.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", nil
	})
	return node
}
