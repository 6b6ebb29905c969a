// Package deploy tests the deployment artifacts on the real local stack: the
// kustomize base in deploy/kubernetes grants the provisioner binary enough to
// provision and delete volumes under its own ServiceAccount, and no more; its
// Deployment passes the API server's validation and the "restricted" Pod
// Security Standard; the Helm chart, rendered by the pinned Helm, grants the
// same rules.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// Names in the base that the test rewrites to names of its own.
const (
	baseNamespace      = "cinder-provisioner"
	serviceAccountName = "cinder-provisioner"
	secretsClusterRole = "cinder-provisioner-secrets"
)

// The opt-in kustomize Component for the CHAP Secrets of the original
// standalone-cinder provisioner's PVs, and its ClusterRole: the one role
// allowed Secrets cluster-wide, and only delete.
const (
	legacySecretsComponent   = "deploy/kubernetes/components/legacy-secrets"
	legacySecretsClusterRole = "cinder-provisioner-legacy-secrets"
)

// manifests are the objects of a rendered kustomization, by kind.
type manifests struct {
	namespaces          []*corev1.Namespace
	serviceAccounts     []*corev1.ServiceAccount
	configMaps          []*corev1.ConfigMap
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	roles               []*rbacv1.Role
	roleBindings        []*rbacv1.RoleBinding
	deployments         []*appsv1.Deployment
}

// kustomize renders dir (relative to the repository) with the stack's
// pinned kubectl.
func kustomize(t *testing.T, s *framework.Stack, dir string) manifests {
	t.Helper()
	kubectl := s.Env["KUBECTL"]
	if kubectl == "" {
		kubectl = filepath.Join(s.OutDir, "kubectl")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(s.RepoRoot, dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return decode(t, dir, out)
}

// kustomizeWithComponents renders the base dir (relative to the repository)
// with components (idem) added, as an overlay of the user's would: the
// overlay is written to a temporary directory, with relative paths, which
// is all kustomize accepts.
func kustomizeWithComponents(t *testing.T, s *framework.Stack, dir string, components ...string) manifests {
	t.Helper()
	return decode(t, dir+" with "+strings.Join(components, ", "), renderOverlay(t, s, "", dir, components...))
}

// renderOverlay renders an overlay of dir (relative to the repository) with
// components and, unless "", a namespace, as a user's overlay would: written
// to a temporary directory with relative paths, which is all kustomize
// accepts. It uses the stack's pinned kubectl.
func renderOverlay(t *testing.T, s *framework.Stack, namespace, dir string, components ...string) []byte {
	t.Helper()
	tmp := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(tmp, filepath.Join(s.RepoRoot, p))
		if err != nil {
			t.Fatalf("relative path to %s: %v", p, err)
		}
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
	if namespace != "" {
		k += "namespace: " + namespace + "\n"
	}
	k += "resources:\n  - " + rel(dir) + "\n"
	if len(components) > 0 {
		k += "components:\n"
		for _, c := range components {
			k += "  - " + rel(c) + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl := s.Env["KUBECTL"]
	if kubectl == "" {
		kubectl = filepath.Join(s.OutDir, "kubectl")
	}
	cmd := exec.Command(kubectl, "kustomize", tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s with %v: %v\n%s", dir, components, err, stderr.String())
	}
	return out
}

// merge is the objects of both.
func merge(a, b manifests) manifests {
	a.namespaces = append(a.namespaces, b.namespaces...)
	a.serviceAccounts = append(a.serviceAccounts, b.serviceAccounts...)
	a.configMaps = append(a.configMaps, b.configMaps...)
	a.clusterRoles = append(a.clusterRoles, b.clusterRoles...)
	a.clusterRoleBindings = append(a.clusterRoleBindings, b.clusterRoleBindings...)
	a.roles = append(a.roles, b.roles...)
	a.roleBindings = append(a.roleBindings, b.roleBindings...)
	a.deployments = append(a.deployments, b.deployments...)
	return a
}

// decode parses a multi-document YAML stream into typed objects; a kind the
// test does not know fails it, so a new object in the base is noticed here.
func decode(t *testing.T, what string, data []byte) manifests {
	t.Helper()
	var m manifests
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: read YAML: %v", what, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: decode: %v\n%s", what, err, doc)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		case *corev1.ServiceAccount:
			m.serviceAccounts = append(m.serviceAccounts, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *rbacv1.ClusterRole:
			m.clusterRoles = append(m.clusterRoles, o)
		case *rbacv1.ClusterRoleBinding:
			m.clusterRoleBindings = append(m.clusterRoleBindings, o)
		case *rbacv1.Role:
			m.roles = append(m.roles, o)
		case *rbacv1.RoleBinding:
			m.roleBindings = append(m.roleBindings, o)
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		default:
			t.Fatalf("%s: unexpected object %s: teach the test what to do with it", what, gvk)
		}
	}
	return m
}

func (m manifests) clusterRole(name string) *rbacv1.ClusterRole {
	for _, r := range m.clusterRoles {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// checkRules fails on a wildcard anywhere and on Secrets in a ClusterRole
// bound cluster-wide: Secrets are granted per namespace only. The one
// exception is the opt-in legacy-secrets ClusterRole, and only for a rule
// granting nothing but delete on Secrets, by any name.
func checkRules(t *testing.T, m manifests) {
	t.Helper()
	all := map[string][]rbacv1.PolicyRule{}
	for _, r := range m.clusterRoles {
		all["ClusterRole "+r.Name] = r.Rules
	}
	for _, r := range m.roles {
		all["Role "+r.Name] = r.Rules
	}
	for who, rules := range all {
		for _, rule := range rules {
			for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
				for _, v := range list {
					if strings.Contains(v, "*") {
						t.Errorf("%s: wildcard %q in rule %+v", who, v, rule)
					}
				}
			}
			if len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s: non-resource URLs %v: the provisioner needs none", who, rule.NonResourceURLs)
			}
		}
	}
	for _, b := range m.clusterRoleBindings {
		role := m.clusterRole(b.RoleRef.Name)
		if role == nil {
			t.Errorf("ClusterRoleBinding %s refers to ClusterRole %s, which the base does not define", b.Name, b.RoleRef.Name)
			continue
		}
		for _, rule := range role.Rules {
			for _, res := range rule.Resources {
				if res != "secrets" {
					continue
				}
				if role.Name == legacySecretsClusterRole && slices.Equal(rule.Verbs, []string{"delete"}) {
					continue
				}
				t.Errorf("ClusterRole %s grants Secrets (%v) and is bound cluster-wide by %s", role.Name, rule.Verbs, b.Name)
			}
		}
	}
}

var ruleStart = regexp.MustCompile(`^\s*- apiGroups:`)

// checkRuleComments fails for a rule in a manifest source file without a
// comment right above it saying why it is there.
func checkRuleComments(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	lines := strings.Split(string(data), "\n")
	rules := 0
	for i, line := range lines {
		if !ruleStart.MatchString(line) {
			continue
		}
		rules++
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("%s:%d: rule without a comment saying why it is needed", path, i+1)
		}
	}
	if rules == 0 {
		t.Errorf("%s: no rules found (a rule starts with \"- apiGroups:\")", path)
	}
}
