package deploy

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	capacityComponent = "deploy/kubernetes/components/capacity"
	capacityRole      = "cinder-provisioner-capacity"
)

// The opt-in capacity Component (docs/capacity.md) is least privilege and
// commented, stays out of the base, adds --capacity, and the chart's
// capacity.yaml, off by default, grants the same rules.
func TestCapacityRBACIsOptInAndTheChartMatches(t *testing.T) {
	s := framework.Get(t)
	base := kustomize(t, s, "deploy/kubernetes")
	if base.clusterRole(capacityRole) != nil {
		t.Errorf("the base defines %s: it must stay opt-in (a Component)", capacityRole)
	}
	checkRuleComments(t, filepath.Join(s.RepoRoot, capacityComponent, "rbac.yaml"))
	with := kustomizeWithComponents(t, s, "deploy/kubernetes", capacityComponent)
	checkRules(t, with)
	if with.clusterRole(capacityRole) == nil {
		t.Fatalf("%s defines no ClusterRole %s", capacityComponent, capacityRole)
	}
	if rendered := string(renderOverlay(t, s, "", "deploy/kubernetes", capacityComponent)); !strings.Contains(rendered, "- --capacity\n") {
		t.Errorf("%s does not add --capacity to the Deployment", capacityComponent)
	}

	chartDir := filepath.Join(s.RepoRoot, "deploy", "helm", "cinder-provisioner")
	chartCapacity := filepath.Join(chartDir, "templates", "capacity.yaml")
	checkRuleComments(t, chartCapacity)
	values := string(readFile(t, filepath.Join(chartDir, "values.yaml")))
	if !regexp.MustCompile(`(?m)^capacity:\n  enabled: false$`).MatchString(values) {
		t.Errorf("the chart's values.yaml does not default capacity.enabled to false")
	}
	if off := helmTemplate(t, s, baseNamespace, "--set", "clusterID=rbac-test"); strings.Contains(string(off), capacityRole) {
		t.Errorf("the chart renders %s with the default values: it must be opt-in", capacityRole)
	}
	set := []string{"--set", "clusterID=rbac-test", "--set", "capacity.enabled=true", "--set", "provisionerName=cinder.openstack.org"}
	chart := decode(t, "chart rbac.yaml", helmTemplate(t, s, baseNamespace, append(set, "--show-only", "templates/rbac.yaml")...))
	chartOn := merge(chart, decode(t, chartCapacity, helmTemplate(t, s, baseNamespace, append(set, "--show-only", "templates/capacity.yaml")...)))
	if got, want := ruleSet(chartOn), ruleSet(with); got != want {
		t.Errorf("the chart's RBAC with capacity.enabled differs from the base with %s:\nchart:\n%s\nkustomize:\n%s", capacityComponent, got, want)
	}
}
