package deploy

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// warnings collects the API server's warnings (Pod Security admission
// answers a workload that breaks the namespace's "warn" level with one).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// The base's Deployment is accepted by the API server (server-side dry run)
// in the base's Namespace, which warns at the "restricted" Pod Security
// level, without a warning; its flags exist in the binary; its probe, port,
// Secret mount and identity fit together.
func TestBaseDeploymentIsValidRestrictedAndMatchesTheBinary(t *testing.T) {
	s := framework.Get(t)
	base := kustomize(t, s, "deploy/kubernetes")
	if len(base.deployments) != 1 || len(base.configMaps) != 1 {
		t.Fatalf("the base should make one Deployment and one ConfigMap, got %d and %d", len(base.deployments), len(base.configMaps))
	}
	d := base.deployments[0].DeepCopy()
	cm := base.configMaps[0].DeepCopy()
	if ns := base.namespaces[0]; ns.Labels["pod-security.kubernetes.io/warn"] != "restricted" ||
		ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v: want Pod Security enforce and warn at restricted", ns.Name, ns.Labels)
	}
	in := install(t, s, base)

	w := &warnings{}
	cfg := rest.CopyConfig(s.RESTConfig)
	cfg.WarningHandlerWithContext = w
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	ctx := context.Background()
	cm.Namespace, d.Namespace = in.ns, in.ns
	if _, err := admin.CoreV1().ConfigMaps(in.ns).Create(ctx, cm, dryRun); err != nil {
		t.Errorf("server-side dry run of ConfigMap %s: %v", cm.Name, err)
	}
	if _, err := admin.AppsV1().Deployments(in.ns).Create(ctx, d, dryRun); err != nil {
		t.Errorf("server-side dry run of Deployment %s: %v", d.Name, err)
	}
	w.mu.Lock()
	for _, msg := range w.list {
		t.Errorf("API server warning for the base's objects: %s", msg)
	}
	w.mu.Unlock()

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want at least 2 (leader election with a standby)", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != serviceAccountName {
		t.Errorf("serviceAccountName = %q, want %s", pod.ServiceAccountName, serviceAccountName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/cinder-provisioner/cinder-provisioner:") {
		t.Errorf("image %q: want ghcr.io/cinder-provisioner/cinder-provisioner:<tag> (kustomization images)", c.Image)
	}

	args := map[string]string{}
	for _, a := range c.Args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		args[name] = value
	}
	help, _ := exec.Command(s.ProvisionerBinary(t), "--help").CombinedOutput()
	for name := range args {
		if !strings.Contains(string(help), "--"+name+" ") && !strings.Contains(string(help), "--"+name+"[") {
			t.Errorf("Deployment passes --%s, which cinder-provisioner --help does not list", name)
		}
	}
	for name, want := range map[string]string{
		"leader-elect":    "true",
		"metrics-address": ":8080",
		"cloud-config":    "/etc/cinder/cloud.conf",
		"cluster-id":      "$(CLUSTER_ID)",
	} {
		if args[name] != want {
			t.Errorf("--%s=%q, want %q", name, args[name], want)
		}
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_NAMESPACE"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE = %+v, want the downward API's metadata.namespace", e)
	}
	if e := env["CLUSTER_ID"]; e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Name != cm.Name {
		t.Errorf("CLUSTER_ID = %+v, want a key of ConfigMap %s", e, cm.Name)
	}
	// The placeholder must stop the provisioner, not name a cluster.
	out, err := exec.Command(s.ProvisionerBinary(t), "--cluster-id="+cm.Data["cluster-id"], "--secret-namespace=x", "--leader-elect=false").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--cluster-id") {
		t.Errorf("cinder-provisioner accepted the base's placeholder cluster id %q (err %v):\n%s", cm.Data["cluster-id"], err, out)
	}

	var metricsPort int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	if metricsPort != 8080 {
		t.Errorf("container port named metrics = %d, want 8080 (--metrics-address=:8080)", metricsPort)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
		t.Errorf("livenessProbe = %+v, want GET /healthz on port metrics", p)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources = %+v, want CPU and memory requests and a memory limit", c.Resources)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext %+v: want readOnlyRootFilesystem", sc)
	}

	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/cinder" && m.ReadOnly {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == "cinder-cloud-config" {
					mounted = true
				}
			}
		}
	}
	if !mounted {
		t.Errorf("Secret cinder-cloud-config is not mounted read-only at /etc/cinder")
	}
}
