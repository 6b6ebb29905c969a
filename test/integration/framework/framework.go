// Package framework hands integration tests the real local stack: a
// kube-apiserver, kube-controller-manager and etcd, and a real OpenStack
// Cinder (noauth and Keystone), all on 127.0.0.1. The first test that asks for
// the stack brings it up with hack/local-up.sh (a no-op in seconds when it
// already runs); every object and volume a test makes is removed when it ends.
//
// Integration tests never skip silently: without -short they fail when the
// stack cannot start; with -short they skip and say so.
package framework

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// upTimeout bounds hack/local-up.sh: a cold first run builds Kubernetes from
// source (~5 min on 2 cores) and installs Cinder from Debian's packages.
const upTimeout = 30 * time.Minute

// NoAuth is how to reach the noauth cinder-api: token "user:project".
type NoAuth struct {
	Endpoint  string // http://127.0.0.1:8776/v3/<project>
	ProjectID string
	Token     string
}

// BaseEndpoint is the endpoint without the project, as noauth clients take it
// (gophercloud appends the token's project).
func (n NoAuth) BaseEndpoint() string {
	return strings.TrimSuffix(n.Endpoint, n.ProjectID)
}

// Keystone is how to reach Cinder through Keystone's catalog.
type Keystone struct {
	AuthURL     string
	Username    string
	Password    string
	ProjectName string
	ProjectID   string
	DomainName  string
	Region      string
}

// Stack is the running local stack.
type Stack struct {
	RepoRoot   string
	OutDir     string // _output/local: kubeconfig, cloud.conf, env
	Kubeconfig string
	CloudConf  string // noauth cloud config in the original provisioner's format
	RESTConfig *rest.Config
	Kube       kubernetes.Interface
	Cinder     NoAuth
	Keystone   Keystone // zero when the stack runs without Keystone
	Env        map[string]string
}

var (
	once     sync.Once
	theStack *Stack
	upErr    error
)

// Get returns the local stack, bringing it up on first use. Under -short it
// skips the calling test; when the stack cannot start it fails the test.
func Get(t testing.TB) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped: -short given (it needs the local stack: make local-up)")
	}
	once.Do(func() { theStack, upErr = up() })
	if upErr != nil {
		t.Fatalf("local stack unavailable: %v", upErr)
	}
	return theStack
}

// Up returns the local stack for a program that is not a test (the
// benchmark), bringing it up on first use like Get.
func Up() (*Stack, error) {
	once.Do(func() { theStack, upErr = up() })
	return theStack, upErr
}

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the framework source")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func up() (*Stack, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "local-up.sh"))
	cmd.Dir = root
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("hack/local-up.sh: %w\n%s", err, tail(string(out), 40))
	}
	s := &Stack{RepoRoot: root, OutDir: filepath.Join(root, "_output", "local")}
	if d := os.Getenv("LOCAL_OUT"); d != "" {
		s.OutDir = d
	}
	s.Env, err = readEnv(filepath.Join(s.OutDir, "env"))
	if err != nil {
		return nil, err
	}
	s.Kubeconfig = filepath.Join(s.OutDir, "kubeconfig")
	s.CloudConf = filepath.Join(s.OutDir, "cloud.conf")
	s.RESTConfig, err = clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", s.Kubeconfig, err)
	}
	s.RESTConfig.QPS, s.RESTConfig.Burst = 100, 200
	s.Kube, err = kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	s.Cinder = NoAuth{Endpoint: s.Env["CINDER_ENDPOINT"], ProjectID: s.Env["CINDER_PROJECT_ID"], Token: s.Env["CINDER_TOKEN"]}
	if s.Cinder.Endpoint == "" || s.Cinder.ProjectID == "" {
		return nil, fmt.Errorf("%s/env lacks CINDER_ENDPOINT or CINDER_PROJECT_ID", s.OutDir)
	}
	s.Keystone = Keystone{
		AuthURL:     s.Env["KEYSTONE_AUTH_URL"],
		Username:    s.Env["KEYSTONE_USERNAME"],
		Password:    s.Env["KEYSTONE_PASSWORD"],
		ProjectName: s.Env["KEYSTONE_PROJECT_NAME"],
		ProjectID:   s.Env["KEYSTONE_PROJECT_ID"],
		DomainName:  s.Env["KEYSTONE_DOMAIN_NAME"],
		Region:      s.Env["KEYSTONE_REGION"],
	}
	return s, nil
}

// readEnv reads a KEY=VALUE file as written by hack/local-up.sh.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read stack env: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	return env, sc.Err()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
