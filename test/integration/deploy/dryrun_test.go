package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const chartPath = "deploy/helm/cinder-provisioner"

// pinned reads `NAME ?= value` from the Makefile, or NAME=${NAME:-value}
// from hack/versions.sh: the tests use the versions `make lint` uses.
func pinned(t *testing.T, s *framework.Stack, file, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.RepoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + name + `(?: \?= |=\$\{` + name + `:-)([^\s}]+)`)
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s pins no %s", file, name)
	}
	return string(m[1])
}

// helmTemplate renders the chart with the Makefile's pinned Helm, through
// go run as make lint does, for the local stack's Kubernetes version.
func helmTemplate(t *testing.T, s *framework.Stack, namespace string, args ...string) []byte {
	t.Helper()
	helm := "helm.sh/helm/v3/cmd/helm@" + pinned(t, s, "Makefile", "HELM_VERSION")
	kube := pinned(t, s, "hack/versions.sh", "KUBE_VERSION")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a first go run builds Helm
	defer cancel()
	full := append([]string{"run", helm, "template", "cinder-provisioner", filepath.Join(s.RepoRoot, chartPath),
		"--namespace", namespace, "--kube-version", kube}, args...)
	cmd := exec.CommandContext(ctx, "go", full...)
	cmd.Dir = s.RepoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// kustomizeInto renders the kustomize base (plus components) into namespace
// with the stack's kubectl, through an overlay like a user's.
func kustomizeInto(t *testing.T, s *framework.Stack, namespace string, components ...string) []byte {
	t.Helper()
	return renderOverlay(t, s, namespace, "deploy/kubernetes", components...)
}

// objects parses a multi-document YAML stream.
func objects(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		j, err := utilyaml.ToJSON(doc)
		if err != nil {
			t.Fatalf("YAML to JSON: %v\n%s", err, doc)
		}
		if len(bytes.TrimSpace(j)) == 0 || string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("decode: %v\n%s", err, doc)
		}
		out = append(out, u)
	}
	return out
}

// dryRunner applies objects to the API server with server-side apply in
// dry-run mode, strict field validation (an unknown or duplicate field is an
// error), collecting the server's warnings (Pod Security among them).
type dryRunner struct {
	client   dynamic.Interface
	mapper   meta.RESTMapper
	warnings *warnings
}

func newDryRunner(t *testing.T, s *framework.Stack) *dryRunner {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(s.RESTConfig)
	cfg.WarningHandlerWithContext = w
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{client: client, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warnings: w}
}

// apply dry-runs one object and returns what the server would store.
func (d *dryRunner) apply(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: no such resource on the API server: %w", gvk, err)
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	var ri dynamic.ResourceInterface = d.client.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s: namespaced, but the manifest names no namespace", gvk.Kind, obj.GetName())
		}
		ri = d.client.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	force := true
	return ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		DryRun:          []string{metav1.DryRunAll},
		Force:           &force,
		FieldManager:    "cinder-provisioner-dry-run-test",
		FieldValidation: metav1.FieldValidationStrict,
	})
}

// applyAll dry-runs every object, failing the test for each refusal and
// for any warning; it returns the kinds the server accepted.
func (d *dryRunner) applyAll(t *testing.T, what string, objs []*unstructured.Unstructured) map[string]int {
	t.Helper()
	if len(objs) == 0 {
		t.Fatalf("%s: no objects rendered", what)
	}
	ctx := context.Background()
	kinds := map[string]int{}
	for _, o := range objs {
		got, err := d.apply(ctx, o)
		if err != nil {
			t.Errorf("%s: server-side dry run of %s %s/%s: %v", what, o.GetKind(), o.GetNamespace(), o.GetName(), err)
			continue
		}
		if got.GetName() != o.GetName() || got.GetKind() != o.GetKind() {
			t.Errorf("%s: dry run of %s %s answered %s %s", what, o.GetKind(), o.GetName(), got.GetKind(), got.GetName())
		}
		kinds[o.GetKind()]++
	}
	d.warnings.mu.Lock()
	for _, msg := range d.warnings.list {
		t.Errorf("%s: API server warning: %s", what, msg)
	}
	d.warnings.list = nil
	d.warnings.mu.Unlock()
	return kinds
}

// restrictedNamespace creates a namespace that warns (and enforces, for
// pods) at the "restricted" Pod Security level, deleted when the test ends.
func restrictedNamespace(t *testing.T, s *framework.Stack, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: framework.UniqueName(prefix),
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		},
	}}
	ctx := context.Background()
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		if err := s.Kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("cleanup: delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func wantKinds(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: the API server accepted %d %s, want %d (accepted: %v)", what, got[k], k, n, got)
		}
	}
}

// The chart, rendered by the pinned Helm with its default values and with
// every option on, is accepted object by object by the real API server
// (server-side apply, dry run, strict field validation) in a namespace at
// the "restricted" Pod Security level, without a warning.
func TestHelmChartPassesServerSideDryRun(t *testing.T) {
	s := framework.Get(t)
	ns := restrictedNamespace(t, s, "dryrun-helm")
	// the namespaces the all-options values grant CHAP and Ceph Secrets in
	chapNS := s.Namespace(t, "dryrun-chap")
	cephNS := s.Namespace(t, "dryrun-ceph")
	d := newDryRunner(t, s)

	defaults := objects(t, helmTemplate(t, s, ns, "--set", "clusterID=dry-run"))
	wantKinds(t, "chart, default values", d.applyAll(t, "chart, default values", defaults), map[string]int{
		"ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 2, "Deployment": 1, "Secret": 0,
	})

	all := objects(t, helmTemplate(t, s, ns,
		"-f", filepath.Join(s.RepoRoot, chartPath, "ci", "all-options-values.yaml"),
		"--set", "rbac.chapSecretNamespaces[0]="+chapNS,
		"--set", "rbac.cephSecrets[0].namespace="+cephNS))
	wantKinds(t, "chart, every option on", d.applyAll(t, "chart, every option on", all), map[string]int{
		// capacity.enabled adds a ClusterRole, a Role and their bindings
		"ServiceAccount": 1, "Secret": 1, "ClusterRole": 4, "ClusterRoleBinding": 3, "Role": 3, "RoleBinding": 5, "Deployment": 1,
	})
}

// The kustomize base, alone and with the legacy-secrets Component, rendered
// into a namespace of the test's, is accepted by the API server the same way.
func TestKustomizeBasePassesServerSideDryRun(t *testing.T) {
	s := framework.Get(t)
	ns := restrictedNamespace(t, s, "dryrun-kustomize")
	d := newDryRunner(t, s)

	base := objects(t, kustomizeInto(t, s, ns))
	for _, o := range base {
		if o.GetKind() == "Namespace" && o.GetName() != ns {
			t.Fatalf("the overlay's namespace %s did not rename the base's Namespace %s", ns, o.GetName())
		}
	}
	wantKinds(t, "kustomize base", d.applyAll(t, "kustomize base", base), map[string]int{
		"Namespace": 1, "ServiceAccount": 1, "ConfigMap": 1, "ClusterRole": 2, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 2, "Deployment": 1,
	})
	withLegacy := objects(t, kustomizeInto(t, s, ns, legacySecretsComponent))
	wantKinds(t, "kustomize base + legacy-secrets", d.applyAll(t, "kustomize base + legacy-secrets", withLegacy), map[string]int{
		"ClusterRole": 3, "ClusterRoleBinding": 2,
	})
	withCapacity := objects(t, kustomizeInto(t, s, ns, capacityComponent))
	wantKinds(t, "kustomize base + capacity", d.applyAll(t, "kustomize base + capacity", withCapacity), map[string]int{
		"ClusterRole": 3, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 3,
	})
}

// The dry run is strict enough to fail: a Deployment with a misspelt field
// is refused, and one that breaks the restricted level is warned about.
func TestServerSideDryRunCatchesBadManifests(t *testing.T) {
	s := framework.Get(t)
	ns := restrictedNamespace(t, s, "dryrun-bad")
	d := newDryRunner(t, s)
	base := objects(t, kustomizeInto(t, s, ns))
	var dep *unstructured.Unstructured
	for _, o := range base {
		if o.GetKind() == "Deployment" {
			dep = o
		}
	}
	if dep == nil {
		t.Fatal("the base renders no Deployment")
	}
	ctx := context.Background()

	typo := dep.DeepCopy()
	if err := unstructured.SetNestedField(typo.Object, int64(2), "spec", "replica"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.apply(ctx, typo); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a Deployment with spec.replica (for replicas) passed the dry run: %v", err)
	}

	root := dep.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(root.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	sc, _ := c["securityContext"].(map[string]any)
	sc["allowPrivilegeEscalation"] = true
	if err := unstructured.SetNestedSlice(root.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.apply(ctx, root); err != nil {
		t.Fatalf("dry run of a Deployment allowing privilege escalation: %v", err)
	}
	d.warnings.mu.Lock()
	got := strings.Join(d.warnings.list, "\n")
	d.warnings.list = nil
	d.warnings.mu.Unlock()
	if !strings.Contains(got, "restricted") || !strings.Contains(got, "allowPrivilegeEscalation") {
		t.Errorf("a Deployment allowing privilege escalation in a restricted namespace drew no Pod Security warning (warnings: %q)", got)
	}
}
