package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// makeImage runs `make image` into dir with version, as a user would from a
// clone (the Makefile's platforms: every one is built).
func makeImage(t *testing.T, s *framework.Stack, dir, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // cold: a cross build per platform
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "image", "IMAGE_DIR="+dir, "VERSION="+version)
	cmd.Dir = s.RepoRoot
	out, err := cmd.CombinedOutput()
	t.Logf("make image:\n%s", out)
	if err != nil {
		t.Fatalf("make image: %v", err)
	}
}

// extractImage writes the image's flattened filesystem under root, with
// the modes and owners of its tar entries.
func extractImage(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			t.Fatalf("image entry %q escapes the root", h.Name)
		}
		p := filepath.Join(root, name)
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("image entry %s: type %q; the image should hold only files and directories", h.Name, h.Typeflag)
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			t.Fatalf("chown %s: %v (the test runs as root, like the rest of the integration tests)", p, err)
		}
		if err := os.Chmod(p, mode&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
			t.Fatal(err)
		}
	}
}

// runInImage runs the image's entrypoint with args the way a container
// runtime would, minus namespaces: chrooted into the image's filesystem, as
// the image's user, with the image's environment and nothing else.
func runInImage(t *testing.T, root string, cfg v1.Config, args ...string) (string, string, error) {
	t.Helper()
	uid, gid, ok := strings.Cut(cfg.User, ":")
	if !ok {
		t.Fatalf("image user %q: want UID:GID", cfg.User)
	}
	u, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		t.Fatalf("image user %q is not numeric (runAsNonRoot needs a numeric user): %v", cfg.User, err)
	}
	g, err := strconv.ParseUint(gid, 10, 32)
	if err != nil {
		t.Fatalf("image group %q is not numeric: %v", cfg.User, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = cfg.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g), Groups: []uint32{uint32(g)}},
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("in the image: %s\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), stdout.String(), stderr.String())
	return stdout.String(), stderr.String(), err
}

// checkELF fails unless data is a static executable for arch.
func checkELF(t *testing.T, what string, data []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not an ELF executable: %v", what, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s: built for %s, want %s", what, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked; the image has no libc", what)
		}
	}
}

func fileFromImage(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("no %s in the image", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

// From a clone, `make image` builds an OCI image (every platform of the
// Makefile) whose binary, run from the image's own filesystem as its
// nonroot user, prints the version it was stamped with and passes `check`
// against the local Cinder using nothing but what the image ships.
func TestMakeImageBuildsAnImageWhoseBinaryRuns(t *testing.T) {
	s := framework.Get(t)
	cloudConf, err := os.ReadFile(s.CloudConf)
	if err != nil {
		t.Fatalf("the local stack's cloud config: %v (hack/local-up.sh writes it)", err)
	}

	dir := t.TempDir()
	version := framework.UniqueName("v0.0.0-it")
	makeImage(t, s, dir, version)

	top, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatalf("read the OCI layout: %v", err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Fatalf("index.json: %+v, want one index named %s", tm.Manifests, version)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	platforms := map[string]v1.Hash{}
	for _, m := range im.Manifests {
		if m.Platform != nil {
			platforms[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
		}
	}
	if len(platforms) != 2 || platforms["linux/amd64"] == (v1.Hash{}) || platforms["linux/arm64"] == (v1.Hash{}) {
		t.Fatalf("index platforms %v, want linux/amd64 and linux/arm64", platforms)
	}

	revision, err := exec.Command("git", "-C", s.RepoRoot, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	here := "linux/" + runtime.GOARCH
	var hereImage v1.Image
	var hereConfig v1.Config
	for p, digest := range platforms {
		img, err := idx.Image(digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.OS + "/" + cf.Architecture; got != p {
			t.Errorf("%s: config platform %s", p, got)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.revision": strings.TrimSpace(string(revision)),
			"org.opencontainers.image.source":   "https://github.com/cinder-provisioner/cinder-provisioner",
		} {
			if cf.Config.Labels[k] != want {
				t.Errorf("%s: label %s = %q, want %q", p, k, cf.Config.Labels[k], want)
			}
		}
		if cf.Config.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", p, cf.Config.User)
		}
		arch := strings.TrimPrefix(p, "linux/")
		checkELF(t, p+" /cinder-provisioner", fileFromImage(t, img, "cinder-provisioner"), arch)
		tarball := filepath.Join(dir, fmt.Sprintf("cinder-provisioner-%s-linux-%s.tar", version, arch))
		if st, err := os.Stat(tarball); err != nil || st.Size() == 0 {
			t.Errorf("%s: no tarball %s: %v", p, tarball, err)
		}
		if p == here {
			hereImage, hereConfig = img, cf.Config
		}
	}
	if hereImage == nil {
		t.Fatalf("the image has no %s variant to run here", here)
	}

	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	extractImage(t, hereImage, root)
	// the cloud config as the Deployment mounts it: a Secret volume at
	// /etc/cinder, mode 0440, group fsGroup 65532
	if err := os.MkdirAll(filepath.Join(root, "etc", "cinder"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc", "cinder", "cloud.conf")
	if err := os.WriteFile(conf, cloudConf, 0o440); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(conf, 0, 65532); err != nil {
		t.Fatal(err)
	}

	stdout, _, err := runInImage(t, root, hereConfig, "--version")
	if err != nil {
		t.Fatalf("--version in the image: %v", err)
	}
	if want := "cinder-provisioner " + version + "\n"; stdout != want {
		t.Errorf("--version printed %q, want %q", stdout, want)
	}

	stdout, stderr, err := runInImage(t, root, hereConfig, "check", "--cloud-config", "/etc/cinder/cloud.conf")
	if err != nil {
		t.Fatalf("check against the local Cinder, in the image: %v\n%s", err, stderr)
	}
	for _, re := range []string{`Auth mode: +noauth`, `Microversions: +min 3\.0, max 3\.\d+`, `Volume types: .*tgtfile`} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("check output lacks /%s/:\n%s", re, stdout)
		}
	}
	// and without the cloud config the binary fails, as it should: the run
	// above proves something
	if _, _, err := runInImage(t, root, hereConfig, "check", "--cloud-config", "/etc/cinder/missing.conf"); err == nil {
		t.Errorf("check with a missing cloud config succeeded in the image")
	}
}
