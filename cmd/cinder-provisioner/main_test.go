package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	cinderfake "github.com/cinder-provisioner/cinder-provisioner/internal/cinder/fake"
)

const secret = "s3cret"

func TestMain(m *testing.M) {
	// run applies the (same default) logging configuration in several tests.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	os.Exit(m.Run())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keystoneUnreachable is a complete Keystone config whose auth-url refuses
// connections.
const keystoneUnreachable = `[Global]
auth-url = http://127.0.0.1:1/v3
username = admin
password = ` + secret + `
tenant-name = admin
domain-name = Default
region = RegionOne
`

func TestSetupErrorsNameTheProblemWithoutSecrets(t *testing.T) {
	tests := []struct {
		name string
		// opts adjusts valid options; vars is the environment.
		opts func(o *Options, dir string)
		vars map[string]string
		want []string
	}{
		{
			name: "missing cloud config",
			opts: func(o *Options, dir string) { o.CloudConfig = filepath.Join(dir, "nope.conf") },
			want: []string{"--cloud-config", "nope.conf", "no such file or directory"},
		},
		{
			name: "garbled cloud config",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global\npassword = "+secret+"\nauth-url = http://127.0.0.1:1/v3\n")
			},
			want: []string{"load Cinder configuration from --cloud-config", "parse cloud config"},
		},
		{
			name: "garbled value in cloud config",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global]\npassword = "+secret+"\ntls-insecure = maybe\n")
			},
			want: []string{"load Cinder configuration from --cloud-config", "tls-insecure"},
		},
		{
			name: "unterminated quote in the password",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global]\nauth-url = http://127.0.0.1:1/v3\npassword = \""+secret+"\n")
			},
			want: []string{"load Cinder configuration from --cloud-config", "parse cloud config"},
		},
		{
			name: "password line without =",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global]\nauth-url = http://127.0.0.1:1/v3\npassword "+secret+"\n")
			},
			want: []string{"load Cinder configuration from --cloud-config", "parse cloud config"},
		},
		{
			name: "cloud config without a password",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global]\nauth-url = http://127.0.0.1:1/v3\nusername = admin\ntenant-id = p1\nuser-domain-name = Default\n")
			},
			want: []string{"invalid Cinder configuration in --cloud-config", "password is required"},
		},
		{
			name: "unreachable keystone",
			opts: func(o *Options, dir string) { o.CloudConfig = writeFile(t, "cloud.conf", keystoneUnreachable) },
			want: []string{"connect to Cinder (keystone from --cloud-config", "authenticate", "127.0.0.1:1"},
		},
		{
			name: "unreachable standalone cinder",
			opts: func(o *Options, dir string) {
				o.CloudConfig = writeFile(t, "cloud.conf", "[Global]\ncinder-endpoint = http://127.0.0.1:1/v3/\nusername = admin\npassword = "+secret+"\ntenant-name = p1\n")
			},
			want: []string{"connect to Cinder (noauth from --cloud-config", "127.0.0.1:1"},
		},
		{
			name: "unreachable keystone from the environment",
			vars: map[string]string{
				"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "admin", "OS_PASSWORD": secret,
				"OS_PROJECT_ID": "p1", "OS_USER_DOMAIN_NAME": "Default",
			},
			want: []string{"connect to Cinder (keystone from OS_* environment variables)", "127.0.0.1:1"},
		},
		{
			name: "no configuration at all",
			want: []string{"no Cinder configuration: set --cloud-config (INI file), --cloud (clouds.yaml) or OS_AUTH_URL / OS_CINDER_ENDPOINT"},
		},
		{
			name: "unreachable keystone from clouds.yaml",
			opts: func(o *Options, dir string) {
				o.Cloud = "test"
				o.CloudsFile = writeFile(t, "clouds.yaml", `clouds:
  test:
    auth:
      auth_url: http://127.0.0.1:1/v3
      username: admin
      password: `+secret+`
      project_id: p1
      user_domain_name: Default
`)
			},
			want: []string{`cloud "test" in clouds.yaml`, "127.0.0.1:1"},
		},
		{
			name: "unknown cloud in clouds.yaml",
			opts: func(o *Options, dir string) {
				o.Cloud = "other"
				o.CloudsFile = writeFile(t, "clouds.yaml", "clouds:\n  test:\n    auth:\n      password: "+secret+"\n")
			},
			want: []string{`cloud "other" in clouds.yaml`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			o.ClusterID, o.SecretNamespace, o.MetricsAddress = "c1", "default", ""
			if tt.opts != nil {
				tt.opts(o, t.TempDir())
			}
			e := fakeEnv(tt.vars, "")
			o.Complete(e)
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			ctx := klog.NewContext(t.Context(), klog.Background())
			a, err := setup(ctx, o, e)
			if err == nil {
				a.broadcaster.Shutdown()
				t.Fatal("setup succeeded, want an error")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q contains the password", msg)
			}
		})
	}
}

func TestKubeClientErrors(t *testing.T) {
	kubeconfig := writeFile(t, "kubeconfig", `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: `+secret+`}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`)
	tests := []struct {
		name, kubeconfig string
		want             []string
	}{
		{"missing kubeconfig", filepath.Join(t.TempDir(), "nope"), []string{"--kubeconfig", "no such file or directory"}},
		{"unreachable API server", kubeconfig, []string{"reach the Kubernetes API server at https://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			o.Kubeconfig = tt.kubeconfig
			_, err := newKubeClient(t.Context(), o)
			if err == nil {
				t.Fatal("newKubeClient succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	cloudConf := writeFile(t, "cloud.conf", keystoneUnreachable)
	valid := []string{"--cluster-id=c1", "--secret-namespace=default", "--metrics-address="}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"--version"}, wantCode: exitOK, wantStdout: "cinder-provisioner "},
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantStderr: "Usage: cinder-provisioner [flags]"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantCode: exitUsage, wantStderr: "cinder-provisioner: unknown flag: --no-such-flag (see --help)\n"},
		{name: "malformed value", args: []string{"--workers=many"}, wantCode: exitUsage, wantStderr: `cinder-provisioner: invalid argument "many" for "--workers"`},
		{name: "positional argument", args: append([]string{"extra"}, valid...), wantCode: exitUsage, wantStderr: "cinder-provisioner: unexpected argument \"extra\" (see --help)\n"},
		{name: "invalid options", args: []string{"--workers=0"}, wantCode: exitUsage, wantStderr: "cinder-provisioner: --cluster-id: is required"},
		{name: "setup error", args: append([]string{"--cloud-config=" + cloudConf}, valid...), wantCode: exitError, wantStderr: "cinder-provisioner: connect to Cinder (keystone from --cloud-config "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(tt.args, &stdout, &stderr, fakeEnv(nil, ""))
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode != exitOK && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q, want exactly one line", stderr.String())
			}
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("stderr %q contains the password", stderr.String())
			}
		})
	}
}

// testApp wires the controller to a fake Kubernetes and a fake Cinder.
func testApp(t *testing.T, ctx context.Context, leaderElect bool) (*app, *fake.Clientset) {
	t.Helper()
	o := NewOptions()
	o.ClusterID, o.SecretNamespace, o.LeaderElectNamespace = "c1", "default", "default"
	o.MetricsAddress = "127.0.0.1:0"
	o.LeaderElect = leaderElect
	o.LeaderElectLeaseDuration, o.LeaderElectRenewDeadline, o.LeaderElectRetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
	o.Complete(fakeEnv(nil, ""))
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset()
	a, err := newApp(ctx, o, cinderfake.New(), kube, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	return a, kube
}

const leaseName = "openstack.org-standalone-cinder"

func getLease(ctx context.Context, t *testing.T, kube *fake.Clientset) *coordinationv1.Lease {
	t.Helper()
	lease, err := kube.CoordinationV1().Leases("default").Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return lease
}

// waitForLeader polls until the app holds the Lease and runs the controller.
func waitForLeader(ctx context.Context, t *testing.T, a *app, kube *fake.Clientset) *coordinationv1.Lease {
	t.Helper()
	var lease *coordinationv1.Lease
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		lease = getLease(ctx, t, kube)
		return lease != nil && ptr.Deref(lease.Spec.HolderIdentity, "") != "" && a.controller.HasRun(), nil
	})
	if err != nil {
		t.Fatalf("never became leader: %v", err)
	}
	return lease
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRunStopsCleanlyAndReleasesTheLease(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	a, kube := testApp(t, ctx, true)
	base := "http://" + a.server.listener.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- a.run(ctx) }()

	waitForLeader(ctx, t, a, kube)
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, want 200 with the default registry's metrics:\n%s", code, body)
	}

	cancel() // SIGTERM
	if err := <-errc; err != nil {
		t.Fatalf("run = %v, want nil after a signal", err)
	}
	lease := getLease(context.Background(), t, kube)
	if holder := ptr.Deref(lease.Spec.HolderIdentity, ""); holder != "" {
		t.Errorf("Lease still held by %q after stop, want it released", holder)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("HTTP server still serving after stop")
	}
}

func TestRunReturnsErrorWhenTheLeaseIsLost(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	a, kube := testApp(t, ctx, true)
	// Once another replica has taken the Lease over, our stale updates
	// conflict. The fake clientset ignores resourceVersion, so a reactor
	// plays the API server's optimistic concurrency. (Reactors must be
	// installed before the fake is used concurrently.)
	var takenOver atomic.Bool
	kube.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !takenOver.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), leaseName, errors.New("the object has been modified"))
	})
	errc := make(chan error, 1)
	go func() { errc <- a.run(ctx) }()

	lease := waitForLeader(ctx, t, a, kube)
	takenOver.Store(true)
	lease.Spec.HolderIdentity = ptr.To("other-replica")
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if err := kube.Tracker().Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), lease, "default"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, errLeaseLost) {
		t.Fatalf("run = %v, want %v", err, errLeaseLost)
	}
	if holder := ptr.Deref(getLease(context.Background(), t, kube).Spec.HolderIdentity, ""); holder != "other-replica" {
		t.Errorf("Lease holder %q, want the new leader's to stay", holder)
	}
}

func TestRunWithoutLeaderElection(t *testing.T) {
	ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), klog.Background()))
	defer cancel()
	a, kube := testApp(t, ctx, false)
	errc := make(chan error, 1)
	go func() { errc <- a.run(ctx) }()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return a.controller.HasRun(), nil
	})
	if err != nil {
		t.Fatalf("controller never ran: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run = %v, want nil", err)
	}
	if getLease(context.Background(), t, kube) != nil {
		t.Error("a Lease was created without --leader-elect")
	}
}
