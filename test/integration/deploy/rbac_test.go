package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	// timeout bounds each wait for the provisioner or the PV binder.
	timeout = 90 * time.Second
	// rbacTimeout bounds the wait for new bindings to reach the authorizer.
	rbacTimeout = 30 * time.Second

	metaClusterID   = "cinder.openstack.org/cluster-id"
	annVolumeID     = "cinder.openstack.org/volume-id"
	annSelectedNode = "volume.kubernetes.io/selected-node"
	pvFinalizer     = "external-provisioner.volume.kubernetes.io/finalizer"
)

// The rules of deploy/kubernetes are least privilege (every rule commented,
// no wildcard, Secrets never granted cluster-wide); the Helm chart grants the
// same rules; the example overlay renders. The opt-in legacy-secrets
// Component adds exactly one cluster-wide rule, delete on Secrets, and the
// chart with rbac.legacySecretCleanup on grants the same.
func TestManifestRulesAreLeastPrivilegeAndTheChartMatches(t *testing.T) {
	s := framework.Get(t)
	base := kustomize(t, s, "deploy/kubernetes")
	checkRules(t, base)
	checkRuleComments(t, filepath.Join(s.RepoRoot, "deploy", "kubernetes", "rbac.yaml"))

	if r := base.clusterRole(secretsClusterRole); r == nil {
		t.Errorf("the base defines no ClusterRole %s for RoleBindings to grant Secrets with", secretsClusterRole)
	}
	for _, b := range base.clusterRoleBindings {
		if b.RoleRef.Name == secretsClusterRole {
			t.Errorf("ClusterRoleBinding %s binds %s cluster-wide", b.Name, secretsClusterRole)
		}
	}

	chartRBAC := filepath.Join(s.RepoRoot, "deploy", "helm", "cinder-provisioner", "templates", "rbac.yaml")
	checkRuleComments(t, chartRBAC)
	checkRuleComments(t, filepath.Join(s.RepoRoot, "deploy", "helm", "cinder-provisioner", "templates", "secret-namespaces.yaml"))
	checkRuleComments(t, filepath.Join(s.RepoRoot, "deploy", "example-overlay", "secret-namespaces.yaml"))
	// rendered by the pinned Helm, release cinder-provisioner in namespace
	// cinder-provisioner: the base's names
	chart := decode(t, chartRBAC, helmTemplate(t, s, baseNamespace, "--set", "clusterID=rbac-test",
		"--show-only", "templates/rbac.yaml"))
	if got, want := ruleSet(chart), ruleSet(base); got != want {
		t.Errorf("the chart's RBAC differs from the base's:\nchart:\n%s\nbase:\n%s", got, want)
	}

	overlay := kustomize(t, s, "deploy/example-overlay")
	var chapBinding bool
	for _, b := range overlay.roleBindings {
		if b.Namespace != baseNamespace && b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == secretsClusterRole {
			chapBinding = true
		}
	}
	if !chapBinding {
		t.Errorf("deploy/example-overlay has no RoleBinding of %s in another namespace (chapSecretNamespace)", secretsClusterRole)
	}
	checkRules(t, overlay)

	t.Run("legacy secrets", func(t *testing.T) {
		checkLegacySecrets(t, s, base, chart, chartRBAC)
	})
}

// checkLegacySecrets: the base has no cluster-wide Secret rule; the
// legacy-secrets Component adds one ClusterRole with one rule, delete on
// Secrets, bound to the base's ServiceAccount, and nothing else; the chart's
// legacy-secret-cleanup.yaml, off by default, renders the same rules.
func checkLegacySecrets(t *testing.T, s *framework.Stack, base, chart manifests, chartRBAC string) {
	t.Helper()
	if base.clusterRole(legacySecretsClusterRole) != nil {
		t.Errorf("the base defines %s: it must stay opt-in (a Component)", legacySecretsClusterRole)
	}
	checkRuleComments(t, filepath.Join(s.RepoRoot, legacySecretsComponent, "rbac.yaml"))
	withLegacy := kustomizeWithComponents(t, s, "deploy/kubernetes", legacySecretsComponent)
	checkRules(t, withLegacy)

	role := withLegacy.clusterRole(legacySecretsClusterRole)
	if role == nil {
		t.Fatalf("%s defines no ClusterRole %s", legacySecretsComponent, legacySecretsClusterRole)
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"delete"}}}
	if fmt.Sprint(role.Rules) != fmt.Sprint(want) {
		t.Errorf("ClusterRole %s rules = %+v, want only delete on Secrets %+v", role.Name, role.Rules, want)
	}
	var bound bool
	for _, b := range withLegacy.clusterRoleBindings {
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != legacySecretsClusterRole {
			continue
		}
		bound = true
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != rbacv1.ServiceAccountKind || b.Subjects[0].Name != serviceAccountName || b.Subjects[0].Namespace != baseNamespace {
			t.Errorf("ClusterRoleBinding %s binds %+v, want only ServiceAccount %s/%s", b.Name, b.Subjects, baseNamespace, serviceAccountName)
		}
	}
	if !bound {
		t.Errorf("%s does not bind ClusterRole %s", legacySecretsComponent, legacySecretsClusterRole)
	}
	// The Component adds its two objects and changes nothing of the base.
	if got, want := len(withLegacy.clusterRoles)+len(withLegacy.clusterRoleBindings), len(base.clusterRoles)+len(base.clusterRoleBindings)+2; got != want {
		t.Errorf("base with %s: %d ClusterRoles and bindings, want %d", legacySecretsComponent, got, want)
	}
	if got, want := ruleSet(withLegacy), ruleSet(merge(base, manifests{clusterRoles: []*rbacv1.ClusterRole{role}})); got != want {
		t.Errorf("the Component changes more than its own role:\ngot:\n%s\nwant:\n%s", got, want)
	}

	// The chart: off by default, the same rules when on.
	chartLegacy := filepath.Join(filepath.Dir(chartRBAC), "legacy-secret-cleanup.yaml")
	checkRuleComments(t, chartLegacy)
	src := readFile(t, chartLegacy)
	if first, _, _ := strings.Cut(string(src), "\n"); !strings.Contains(first, ".Values.rbac.legacySecretCleanup") {
		t.Errorf("%s is not guarded by .Values.rbac.legacySecretCleanup (first line %q)", chartLegacy, first)
	}
	values := string(readFile(t, filepath.Join(filepath.Dir(filepath.Dir(chartRBAC)), "values.yaml")))
	if !regexp.MustCompile(`(?m)^  legacySecretCleanup: false$`).MatchString(values) {
		t.Errorf("the chart's values.yaml does not default rbac.legacySecretCleanup to false")
	}
	off := helmTemplate(t, s, baseNamespace, "--set", "clusterID=rbac-test")
	if strings.Contains(string(off), legacySecretsClusterRole) {
		t.Errorf("the chart renders %s with the default values: it must be opt-in", legacySecretsClusterRole)
	}
	chartOn := merge(chart, decode(t, chartLegacy, helmTemplate(t, s, baseNamespace, "--set", "clusterID=rbac-test",
		"--set", "rbac.legacySecretCleanup=true", "--show-only", "templates/legacy-secret-cleanup.yaml")))
	if got, want := ruleSet(chartOn), ruleSet(withLegacy); got != want {
		t.Errorf("the chart's RBAC with rbac.legacySecretCleanup differs from the base with %s:\nchart:\n%s\nkustomize:\n%s", legacySecretsComponent, got, want)
	}
	for _, b := range chartOn.clusterRoleBindings {
		if b.Name == legacySecretsClusterRole && b.RoleRef.Name != legacySecretsClusterRole {
			t.Errorf("the chart's ClusterRoleBinding %s binds %s, want %s", b.Name, b.RoleRef.Name, legacySecretsClusterRole)
		}
	}
}

// ruleSet is every rule of the ClusterRoles and Roles, by role name, one
// line per rule, sorted: comparable across the base and the chart.
func ruleSet(m manifests) string {
	var lines []string
	add := func(kind, name string, rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			lines = append(lines, fmt.Sprintf("%s %s: groups=%v resources=%v names=%v verbs=%v",
				kind, name, r.APIGroups, r.Resources, r.ResourceNames, r.Verbs))
		}
	}
	for _, r := range m.clusterRoles {
		add("ClusterRole", r.Name, r.Rules)
	}
	for _, r := range m.roles {
		add("Role", r.Name, r.Rules)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// The ServiceAccount of deploy/kubernetes can run the provisioner: with a
// token of it, the real binary (leader election on) provisions two iSCSI
// claims on tgtfile (CHAP Secret in its own namespace, and in a
// chapSecretNamespace granted as deploy/example-overlay shows), reads the
// selected node of a WaitForFirstConsumer claim, records Events, and deletes
// everything again, with no "forbidden" in its log. And it can do nothing
// else: every grant and a list of plausible overreaches are asked of the API
// server, and a cluster-wide list of Secrets is refused.
func TestBaseRBACIsEnoughForTheProvisionerAndNoMore(t *testing.T) {
	s := framework.Get(t)
	start := time.Now()
	base := kustomize(t, s, "deploy/kubernetes")
	in := install(t, s, base)
	claimsNS := s.Namespace(t, "claims")
	chapNS := s.Namespace(t, "chap")
	otherNS := s.Namespace(t, "other")

	// chapSecretNamespace: the RoleBinding deploy/example-overlay shows.
	overlay := kustomize(t, s, "deploy/example-overlay")
	var chapBinding bool
	for _, b := range overlay.roleBindings {
		if b.Namespace == baseNamespace || b.RoleRef.Name != secretsClusterRole {
			continue
		}
		rb := in.roleBinding(t, b, chapNS)
		if _, err := s.Kube.RbacV1().RoleBindings(chapNS).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create RoleBinding %s/%s: %v", chapNS, rb.Name, err)
		}
		chapBinding = true
	}
	if !chapBinding {
		t.Fatalf("deploy/example-overlay has no RoleBinding of %s for a chapSecretNamespace", secretsClusterRole)
	}

	sa := in.serviceAccount(t, s)
	// The authorizer learns of new bindings from its informers: wait for
	// one grant of each binding before asking the rest.
	for _, a := range []access{
		{"list", "", "persistentvolumes", ""},
		{"create", "", "secrets", in.ns},
		{"create", "coordination.k8s.io", "leases", in.ns},
		{"create", "", "secrets", chapNS},
	} {
		framework.Eventually(t, rbacTimeout, "ServiceAccount never got "+a.String(), func(ctx context.Context) (bool, error) {
			return sa.can(ctx, a)
		})
	}
	t.Logf("installed %s with its RBAC, token minted (%s)", in.ns, time.Since(start).Round(time.Millisecond))

	t.Run("grants", func(t *testing.T) {
		checkAccess(t, sa, true, []access{
			// a live read before touching a volume an earlier attempt made
			{"get", "", "persistentvolumes", ""},
			{"list", "", "persistentvolumes", ""},
			{"watch", "", "persistentvolumes", ""},
			{"create", "", "persistentvolumes", ""},
			{"delete", "", "persistentvolumes", ""},
			{"patch", "", "persistentvolumes", ""},
			{"get", "", "persistentvolumeclaims", claimsNS},
			{"list", "", "persistentvolumeclaims", ""},
			{"watch", "", "persistentvolumeclaims", ""},
			{"update", "", "persistentvolumeclaims", claimsNS},
			// the resizer: a grown claim's status, its class
			{"update", "", "persistentvolumeclaims/status", claimsNS},
			{"get", "storage.k8s.io", "storageclasses", ""},
			{"list", "storage.k8s.io", "storageclasses", ""},
			{"watch", "storage.k8s.io", "storageclasses", ""},
			{"get", "", "nodes", ""},
			{"get", "snapshot.storage.k8s.io", "volumesnapshots", claimsNS},
			{"list", "snapshot.storage.k8s.io", "volumesnapshots", ""},
			{"watch", "snapshot.storage.k8s.io", "volumesnapshots", ""},
			{"watch", "snapshot.storage.k8s.io", "volumesnapshotclasses", ""},
			{"get", "snapshot.storage.k8s.io", "volumesnapshotcontents", ""},
			{"create", "snapshot.storage.k8s.io", "volumesnapshotcontents", ""},
			{"update", "snapshot.storage.k8s.io", "volumesnapshotcontents", ""},
			{"delete", "snapshot.storage.k8s.io", "volumesnapshotcontents", ""},
			{"update", "snapshot.storage.k8s.io", "volumesnapshotcontents/status", ""},
			{"create", "", "events", claimsNS},
			{"patch", "", "events", claimsNS},
			{"create", "", "events", "default"}, // Events on PVs
			{"get", "", "secrets", in.ns},
			{"create", "", "secrets", in.ns},
			{"update", "", "secrets", in.ns},
			{"delete", "", "secrets", in.ns},
			{"get", "coordination.k8s.io", "leases", in.ns},
			{"create", "coordination.k8s.io", "leases", in.ns},
			{"update", "coordination.k8s.io", "leases", in.ns},
		})
	})
	t.Run("refusals", func(t *testing.T) {
		checkAccess(t, sa, false, []access{
			// Secrets: by name, in its own namespace (and where an admin
			// binds them) only.
			{"list", "", "secrets", ""},
			{"get", "", "secrets", ""},
			{"get", "", "secrets", claimsNS},
			{"create", "", "secrets", claimsNS},
			{"get", "", "secrets", otherNS},
			{"get", "", "secrets", "kube-system"},
			{"list", "", "secrets", in.ns},
			{"watch", "", "secrets", in.ns},
			{"patch", "", "secrets", in.ns},
			// Nothing it does not call.
			{"update", "", "persistentvolumes", ""},
			{"create", "", "persistentvolumeclaims", claimsNS},
			{"delete", "", "persistentvolumeclaims", claimsNS},
			{"patch", "", "persistentvolumeclaims", claimsNS},
			{"patch", "", "persistentvolumeclaims/status", claimsNS},
			{"update", "", "persistentvolumes/status", ""},
			{"create", "storage.k8s.io", "storageclasses", ""},
			{"delete", "storage.k8s.io", "storageclasses", ""},
			{"list", "", "nodes", ""},
			{"patch", "", "nodes", ""},
			// VolumeSnapshots and classes: the snapshot-controller's
			{"update", "snapshot.storage.k8s.io", "volumesnapshots", claimsNS},
			{"update", "snapshot.storage.k8s.io", "volumesnapshots/status", claimsNS},
			{"delete", "snapshot.storage.k8s.io", "volumesnapshots", claimsNS},
			{"create", "snapshot.storage.k8s.io", "volumesnapshotclasses", ""},
			{"patch", "snapshot.storage.k8s.io", "volumesnapshotcontents", ""},
			{"update", "", "events", claimsNS},
			{"delete", "", "events", claimsNS},
			{"list", "", "events", claimsNS},
			{"create", "events.k8s.io", "events", claimsNS},
			{"create", "coordination.k8s.io", "leases", otherNS},
			{"delete", "coordination.k8s.io", "leases", in.ns},
			{"list", "", "pods", ""},
			{"get", "", "configmaps", in.ns},
			{"create", "", "serviceaccounts", in.ns},
			{"escalate", "rbac.authorization.k8s.io", "clusterroles", ""},
		})
		// And the API server says so, not only the review.
		_, err := sa.client.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("ServiceAccount lists Secrets cluster-wide: err = %v, want Forbidden", err)
		}
		_, err = sa.client.CoreV1().Secrets(claimsNS).Get(context.Background(), "anything", metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("ServiceAccount gets a Secret in the claims' namespace: err = %v, want Forbidden", err)
		}
	})
	if t.Failed() {
		return
	}

	// The real binary under the ServiceAccount's token.
	cinderClient := s.CinderClient(t)
	cinderClient.Microversion = "3.54"
	clusterID := in.id
	name := in.id + ".cinder.openstack.org/standalone-cinder"
	s.CleanupVolumesWithMetadata(t, cinderClient, metaClusterID, clusterID)
	t.Cleanup(func() { framework.DeleteProvisionedPVs(t, s.Kube, name, nil) })

	p := framework.Start(t, "provisioner", s.ProvisionerBinary(t),
		"--kubeconfig", sa.kubeconfig,
		"--cloud-config", s.CloudConf,
		"--provisioner-name", name,
		"--cluster-id", clusterID,
		"--secret-namespace", in.ns,
		"--metrics-address", "",
		"--leader-elect=true",
		"--leader-elect-namespace", in.ns,
		"--leader-elect-lease-duration", "4s",
		"--leader-elect-renew-deadline", "3s",
		"--leader-elect-retry-period", "1s",
		"-v", "4",
	)
	leaseName := strings.ReplaceAll(name, "/", "-")
	leaderStart := time.Now()
	framework.Eventually(t, timeout, "provisioner never held Lease "+in.ns+"/"+leaseName, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("provisioner exited:\n%s", p.Log())
		}
		l, err := s.Kube.CoordinationV1().Leases(in.ns).Get(ctx, leaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
	t.Logf("leader in %s", time.Since(leaderStart).Round(time.Millisecond))

	immediate := storageClass(t, s, name, map[string]string{"type": "tgtfile"}, storagev1.VolumeBindingImmediate)
	otherNamespace := storageClass(t, s, name, map[string]string{"type": "tgtfile", "chapSecretNamespace": chapNS}, storagev1.VolumeBindingImmediate)
	// No scheduler here: the claim carries the annotation the scheduler
	// would set, naming a Node object made here; the provisioner's get of
	// it must be allowed (a 403 refuses the claim; a 404 would send it back
	// to the scheduler).
	delayed := storageClass(t, s, name, map[string]string{"type": "tgtfile"}, storagev1.VolumeBindingWaitForFirstConsumer)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + in.id}}
	if _, err := s.Kube.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	t.Cleanup(func() { _ = s.Kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })

	type want struct {
		class, secretNS string
		annotations     map[string]string
	}
	claims := map[string]want{
		"own-namespace":  {immediate, in.ns, nil},
		"chap-namespace": {otherNamespace, chapNS, nil},
		"selected-node":  {delayed, in.ns, map[string]string{annSelectedNode: "node-" + in.id}},
	}
	provisionStart := time.Now()
	for claimName, w := range claims {
		claim(t, s, claimsNS, claimName, w.class, w.annotations)
	}
	pvs := map[string]*corev1.PersistentVolume{}
	for claimName, w := range claims {
		pv := waitBound(t, s, claimsNS, claimName)
		pvs[claimName] = pv
		if pv.Spec.ISCSI == nil || pv.Spec.ISCSI.SecretRef == nil {
			t.Fatalf("PV %s of claim %s: no iSCSI source with a CHAP secretRef: %+v", pv.Name, claimName, pv.Spec.PersistentVolumeSource)
		}
		ref := pv.Spec.ISCSI.SecretRef
		if ref.Namespace != w.secretNS {
			t.Errorf("claim %s: CHAP Secret in namespace %s, want %s", claimName, ref.Namespace, w.secretNS)
		}
		if _, err := s.Kube.CoreV1().Secrets(ref.Namespace).Get(context.Background(), ref.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("claim %s: CHAP Secret %s/%s: %v", claimName, ref.Namespace, ref.Name, err)
		}
		if !slices.Contains(pv.Finalizers, pvFinalizer) {
			t.Errorf("PV %s lacks finalizer %s (finalizers %v)", pv.Name, pvFinalizer, pv.Finalizers)
		}
	}
	t.Logf("%d claims bound in %s", len(claims), time.Since(provisionStart).Round(time.Millisecond))
	vols, err := framework.VolumesWithMetadata(context.Background(), cinderClient, metaClusterID, clusterID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != len(claims) {
		t.Errorf("%d Cinder volumes of cluster %s, want %d", len(vols), clusterID, len(claims))
	}

	// Events were written: the library's on the claims, client-go's on the Lease.
	waitEvent(t, s, claimsNS, "own-namespace", "ProvisioningSucceeded")
	waitEvent(t, s, in.ns, leaseName, "LeaderElection")

	deleteStart := time.Now()
	for claimName := range claims {
		if err := s.Kube.CoreV1().PersistentVolumeClaims(claimsNS).Delete(context.Background(), claimName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete claim %s: %v", claimName, err)
		}
	}
	for claimName, pv := range pvs {
		ref := pv.Spec.ISCSI.SecretRef
		framework.Eventually(t, timeout, "PV "+pv.Name+" of claim "+claimName+" never deleted", func(ctx context.Context) (bool, error) {
			_, err := s.Kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), ignoreNotFound(err)
		})
		framework.Eventually(t, timeout, "CHAP Secret "+ref.Namespace+"/"+ref.Name+" never deleted", func(ctx context.Context) (bool, error) {
			_, err := s.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), ignoreNotFound(err)
		})
		volID := pv.Annotations[annVolumeID]
		framework.Eventually(t, timeout, "Cinder volume "+volID+" of PV "+pv.Name+" never deleted", func(ctx context.Context) (bool, error) {
			_, err := volumes.Get(ctx, cinderClient, volID).Extract()
			return gophercloud.ResponseCodeIs(err, 404), nil
		})
	}
	t.Logf("%d claims deleted with their PVs, Secrets and Cinder volumes in %s", len(claims), time.Since(deleteStart).Round(time.Millisecond))

	if p.Exited() {
		t.Errorf("provisioner exited:\n%s", p.Log())
	}
	if lines := matchingLines(p.Log(), forbidden); len(lines) > 0 {
		t.Errorf("the provisioner was refused something with the base's RBAC:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// With the opt-in legacy-secrets Component, the ServiceAccount can delete a
// Secret in any namespace (the original provisioner's <pv>-secret in a
// claim's namespace) and still read, list, watch, create or change none
// outside its own namespace.
func TestLegacySecretsComponentGrantsOnlyDelete(t *testing.T) {
	s := framework.Get(t)
	m := kustomizeWithComponents(t, s, "deploy/kubernetes", legacySecretsComponent)
	in := install(t, s, m)
	claimsNS := s.Namespace(t, "legacy-claims")
	sa := in.serviceAccount(t, s)
	framework.Eventually(t, rbacTimeout, "ServiceAccount never got delete on Secrets in "+claimsNS, func(ctx context.Context) (bool, error) {
		return sa.can(ctx, access{"delete", "", "secrets", claimsNS})
	})
	checkAccess(t, sa, true, []access{
		{"delete", "", "secrets", claimsNS},
		{"delete", "", "secrets", "default"},
		{"delete", "", "secrets", in.ns},
		{"get", "", "secrets", in.ns}, // the base's own namespace grant, unchanged
	})
	checkAccess(t, sa, false, []access{
		{"get", "", "secrets", claimsNS},
		{"list", "", "secrets", claimsNS},
		{"watch", "", "secrets", claimsNS},
		{"create", "", "secrets", claimsNS},
		{"update", "", "secrets", claimsNS},
		{"patch", "", "secrets", claimsNS},
		{"deletecollection", "", "secrets", claimsNS},
		{"list", "", "secrets", ""},
		{"get", "", "secrets", "kube-system"},
	})

	// And a real DELETE of a legacy-style Secret goes through, a GET does not.
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + in.id + "-secret"},
		Type:       "kubernetes.io/iscsi-chap",
		StringData: map[string]string{"node.session.auth.username": "u", "node.session.auth.password": "p"},
	}
	if _, err := s.Kube.CoreV1().Secrets(claimsNS).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Secret: %v", err)
	}
	if _, err := sa.client.CoreV1().Secrets(claimsNS).Get(ctx, secret.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount gets Secret %s/%s: err = %v, want Forbidden", claimsNS, secret.Name, err)
	}
	if err := sa.client.CoreV1().Secrets(claimsNS).Delete(ctx, secret.Name, metav1.DeleteOptions{}); err != nil {
		t.Errorf("ServiceAccount deletes Secret %s/%s: %v", claimsNS, secret.Name, err)
	}
	if _, err := s.Kube.CoreV1().Secrets(claimsNS).Get(ctx, secret.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret %s/%s after the ServiceAccount's delete: err = %v, want NotFound", claimsNS, secret.Name, err)
	}
}

var forbidden = regexp.MustCompile(`(?i)forbidden|unauthorized`)

func matchingLines(log string, re *regexp.Regexp) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

func checkAccess(t *testing.T, sa serviceAccount, want bool, list []access) {
	t.Helper()
	for _, a := range list {
		got, err := sa.can(context.Background(), a)
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview %s: %v", a, err)
		}
		if got != want {
			if want {
				t.Errorf("ServiceAccount may not %s: the provisioner needs it", a)
			} else {
				t.Errorf("ServiceAccount may %s: more than the provisioner needs", a)
			}
		}
	}
}

func storageClass(t *testing.T, s *framework.Stack, provisioner string, params map[string]string, mode storagev1.VolumeBindingMode) string {
	t.Helper()
	return framework.CreateStorageClass(t, s.Kube, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: framework.UniqueName("it-rbac")},
		Provisioner:       provisioner,
		Parameters:        params,
		VolumeBindingMode: &mode,
	})
}

func claim(t *testing.T, s *framework.Stack, ns, name, class string, annotations map[string]string) {
	t.Helper()
	pvc := framework.Claim(ns, name, class, "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Annotations = annotations })
	if _, err := s.Kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create claim %s: %v", name, err)
	}
}

func waitBound(t *testing.T, s *framework.Stack, ns, name string) *corev1.PersistentVolume {
	t.Helper()
	pvName := framework.WaitBound(t, s.Kube, ns, name, timeout, false)
	pv, err := s.Kube.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get PV %s: %v", pvName, err)
	}
	return pv
}

func waitEvent(t *testing.T, s *framework.Stack, ns, object, reason string) {
	t.Helper()
	framework.WaitEvent(t, s.Kube, ns, object, "", reason, timeout)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}
