package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

const testCerts = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// fakeELF is the smallest 64-bit little-endian ELF executable header for
// machine, with a PT_INTERP program header when dynamic: enough for
// debug/elf, which is all checkStaticBinary reads.
func fakeELF(machine elf.Machine, dynamic bool) []byte {
	var b bytes.Buffer
	phnum := uint16(0)
	if dynamic {
		phnum = 1
	}
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	hdr := elf.Header64{
		Ident:     ident,
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     phnum,
		Shentsize: 64,
	}
	_ = binary.Write(&b, binary.LittleEndian, hdr)
	if dynamic {
		_ = binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP), Off: 120, Filesz: 1, Memsz: 1})
		b.WriteByte(0)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testOptions(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Binaries: []PlatformBinary{
			{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Path: writeFile(t, dir, "amd64", fakeELF(elf.EM_X86_64, false))},
			{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Path: writeFile(t, dir, "arm64", fakeELF(elf.EM_AARCH64, false))},
		},
		CACerts:  writeFile(t, dir, "ca.crt", []byte(testCerts)),
		Version:  "v1.2.3-4-gabcdef0",
		Source:   "https://github.com/cinder-provisioner/cinder-provisioner",
		Revision: "abcdef0123456789abcdef0123456789abcdef01",
		Created:  created,
	}
}

// entry is a file of an image's flattened filesystem.
type entry struct {
	hdr  *tar.Header
	data []byte
}

func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = entry{hdr: h, data: data}
	}
	return files
}

func TestBuildMakesOneNonrootStaticImagePerPlatformOnAnEmptyBase(t *testing.T) {
	o := testOptions(t)
	b, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	im, err := b.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	if len(im.Manifests) != 2 || len(b.Images) != 2 {
		t.Fatalf("index has %d manifests (%d images), want 2", len(im.Manifests), len(b.Images))
	}
	var baseDigests []v1.Hash
	for i, desc := range im.Manifests {
		want := o.Binaries[i].Platform
		if desc.Platform == nil || desc.Platform.OS != want.OS || desc.Platform.Architecture != want.Architecture {
			t.Errorf("manifest %d platform %v, want %s", i, desc.Platform, want.String())
		}
		img, err := b.Index.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s", want.String(), mt)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != want.OS || cf.Architecture != want.Architecture {
			t.Errorf("%s: config says %s/%s", want.String(), cf.OS, cf.Architecture)
		}
		c := cf.Config
		if c.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", want.String(), c.User)
		}
		if !slices.Equal(c.Entrypoint, []string{"/cinder-provisioner"}) || len(c.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q", want.String(), c.Entrypoint, c.Cmd)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
			t.Errorf("%s: exposed ports %v, want 8080/tcp", want.String(), c.ExposedPorts)
		}
		for k, v := range map[string]string{
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.revision": o.Revision,
			"org.opencontainers.image.created":  "2026-11-02T10:00:00Z",
		} {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", want.String(), k, c.Labels[k], v)
			}
		}
		if !cf.Created.Equal(created) {
			t.Errorf("%s: created %s, want %s", want.String(), cf.Created, created)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 2 || len(cf.RootFS.DiffIDs) != 2 || len(cf.History) != 2 {
			t.Fatalf("%s: %d layers, %d diff ids, %d history entries; want 2 each", want.String(), len(layers), len(cf.RootFS.DiffIDs), len(cf.History))
		}
		d, _ := layers[0].Digest()
		baseDigests = append(baseDigests, d)

		files := extract(t, img)
		bin := files["cinder-provisioner"]
		binary, _ := os.ReadFile(o.Binaries[i].Path)
		if bin.hdr == nil || !bytes.Equal(bin.data, binary) || bin.hdr.Mode&0o777 != 0o755 {
			t.Errorf("%s: /cinder-provisioner missing, different from the binary or not 0755: %+v", want.String(), bin.hdr)
		}
		if ca := files["etc/ssl/certs/ca-certificates.crt"]; string(ca.data) != testCerts || ca.hdr.Mode&0o777 != 0o644 {
			t.Errorf("%s: CA certificates not shipped as given (0644)", want.String())
		}
		if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd lacks the nonroot user:\n%s", want.String(), files["etc/passwd"].data)
		}
		if !strings.Contains(string(files["etc/group"].data), "nonroot:x:65532:") {
			t.Errorf("%s: /etc/group lacks the nonroot group", want.String())
		}
		if tmp := files["tmp"]; tmp.hdr == nil || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode&0o7777 != 0o1777 {
			t.Errorf("%s: /tmp is not a 1777 directory: %+v", want.String(), tmp.hdr)
		}
		if home := files["home/nonroot"]; home.hdr == nil || home.hdr.Uid != 65532 || home.hdr.Mode&0o777 != 0o700 {
			t.Errorf("%s: /home/nonroot not 0700 owned by 65532: %+v", want.String(), home.hdr)
		}
		var names []string
		for n, f := range files {
			names = append(names, n)
			if n != "home/nonroot" && (f.hdr.Uid != 0 || f.hdr.Gid != 0) {
				t.Errorf("%s: %s owned by %d:%d, want root", want.String(), n, f.hdr.Uid, f.hdr.Gid)
			}
			if !f.hdr.ModTime.Equal(created) {
				t.Errorf("%s: %s mtime %s, want %s", want.String(), n, f.hdr.ModTime, created)
			}
		}
		slices.Sort(names)
		wantNames := []string{"cinder-provisioner", "etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs",
			"etc/ssl/certs/ca-certificates.crt", "home", "home/nonroot", "tmp"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s: files %v, want exactly %v (an empty base: no shell, no package manager)", want.String(), names, wantNames)
		}
	}
	if baseDigests[0] != baseDigests[1] {
		t.Errorf("base layers differ between platforms (%s, %s): they should be one shared blob", baseDigests[0], baseDigests[1])
	}
}

func TestBuildIsReproducibleAndStampsTheVersion(t *testing.T) {
	o := testOptions(t)
	digest := func(o Options) v1.Hash {
		b, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := b.Index.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first, again := digest(o), digest(o)
	if first != again {
		t.Errorf("two builds of the same input: index %s, then %s", first, again)
	}
	o2 := o
	o2.Version = "v1.2.4"
	if digest(o2) == first {
		t.Errorf("another version gave the same index digest %s", first)
	}
}

func TestBuildRefusesWhatCannotRunOnAnEmptyBase(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"dynamically linked binary", func(o *Options) {
			o.Binaries[0].Path = writeFile(t, dir, "dyn", fakeELF(elf.EM_X86_64, true))
		}, "CGO_ENABLED=0"},
		{"binary of another architecture", func(o *Options) {
			o.Binaries[1].Path = writeFile(t, dir, "x86", fakeELF(elf.EM_X86_64, false))
		}, "want EM_AARCH64"},
		{"not an ELF file", func(o *Options) {
			o.Binaries[0].Path = writeFile(t, dir, "script", []byte("#!/bin/sh\necho hi\n"))
		}, "not an ELF executable"},
		{"missing binary", func(o *Options) { o.Binaries[0].Path = filepath.Join(dir, "absent") }, "read binary"},
		{"no binary", func(o *Options) { o.Binaries = nil }, "no binary"},
		{"platform twice", func(o *Options) { o.Binaries[1] = o.Binaries[0] }, "given twice"},
		{"not linux", func(o *Options) { o.Binaries[0].Platform.OS = "windows" }, "only linux"},
		{"unknown architecture", func(o *Options) { o.Binaries[0].Platform.Architecture = "mips" }, `architecture "mips" unknown`},
		{"missing CA file", func(o *Options) { o.CACerts = filepath.Join(dir, "none.crt") }, "read CA certificates"},
		{"CA file without a certificate", func(o *Options) { o.CACerts = writeFile(t, dir, "empty.crt", []byte("\n")) }, "no PEM certificate"},
		{"version that is no tag", func(o *Options) { o.Version = "v1.0+build/1" }, "cannot be an image tag"},
		{"no version", func(o *Options) { o.Version = "" }, "no version"},
		{"no time", func(o *Options) { o.Created = time.Time{} }, "no creation time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t)
			tc.change(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLayoutAndTarballReadBack(t *testing.T) {
	o := testOptions(t)
	b, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	// a stale file from an earlier build must not survive
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "stale", []byte("x"))
	if err := WriteLayout(dir, b.Index, o.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Errorf("stale file survived WriteLayout: %v", err)
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations[RefName] != o.Version || tm.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json = %+v, want one image index named %s", tm.Manifests, o.Version)
	}
	want, _ := b.Index.Digest()
	if tm.Manifests[0].Digest != want {
		t.Errorf("index.json names %s, want %s", tm.Manifests[0].Digest, want)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("layout index has %d manifests, want 2", len(im.Manifests))
	}
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if files := extract(t, img); files["cinder-provisioner"].hdr == nil {
			t.Errorf("%s: no /cinder-provisioner read back from the layout", desc.Platform)
		}
	}

	file := filepath.Join(t.TempDir(), "img.tar")
	ref := "ghcr.io/cinder-provisioner/cinder-provisioner:" + o.Version
	if err := WriteTarball(file, ref, b.Images[0].Image); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := img.ConfigName()
	wantCfg, _ := b.Images[0].Image.ConfigName()
	if got != wantCfg {
		t.Errorf("tarball config %s, want %s", got, wantCfg)
	}
}

func TestRunFlags(t *testing.T) {
	o := testOptions(t)
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"binary without platform", []string{"--binary", "x", "--version", "v1"}, 2, "want OS/ARCH=PATH"},
		{"binary with bad platform", []string{"--binary", "linux=x", "--version", "v1"}, 2, "want OS/ARCH"},
		{"bad created", []string{"--binary", "linux/amd64=" + o.Binaries[0].Path, "--version", "v1", "--created", "yesterday"}, 2, "Unix seconds"},
		{"nothing to write", []string{"--binary", "linux/amd64=" + o.Binaries[0].Path, "--version", "v1", "--ca-certs", o.CACerts}, 2, "nothing to write"},
		{"writes both", []string{"--binary", "linux/amd64=" + o.Binaries[0].Path, "--binary", "linux/arm64=" + o.Binaries[1].Path,
			"--version", "v1", "--ca-certs", o.CACerts, "--created", "1790000000",
			"--oci-layout", filepath.Join(out, "oci"), "--tarball-dir", out}, 0, "cinder-provisioner-v1-linux-arm64.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Fatalf("run = %d, want %d with %q in\n%s%s", code, tc.code, tc.want, stdout.String(), stderr.String())
			}
		})
	}
	for _, f := range []string{"oci/index.json", "oci/oci-layout", "cinder-provisioner-v1-linux-amd64.tar", "cinder-provisioner-v1-linux-arm64.tar"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run wrote no %s: %v", f, err)
		}
	}
}

// The Dockerfile is not built here (no container engine), so it is held to
// the same image as this program by reading it: empty base, the same
// passwd/group files, CA bundle path, user, entrypoint, port, environment,
// labels and build flags.
func TestDockerfileMakesTheSameImage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// instructions of the final stage, continuation lines joined
	src := strings.ReplaceAll(string(data), "\\\n", " ")
	var final []string
	var all []string
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		all = append(all, line)
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	has := func(lines []string, re string) bool {
		r := regexp.MustCompile(re)
		for _, l := range lines {
			if r.MatchString(l) {
				return true
			}
		}
		return false
	}
	q := regexp.QuoteMeta
	for _, want := range []struct{ what, re string }{
		{"final stage FROM scratch", `^FROM scratch$`},
		{"passwd from hack/image/rootfs", `^COPY hack/image/rootfs/etc/passwd hack/image/rootfs/etc/group /etc/$`},
		{"CA bundle at " + CACertsPath, `^COPY --from=build ` + q(CACertsPath) + ` ` + q(CACertsPath) + `$`},
		{"binary at " + BinaryPath, `^COPY --from=build /out/cinder-provisioner ` + q(BinaryPath) + `$`},
		{"USER " + User, `^USER ` + q(User) + `$`},
		{"ENTRYPOINT", `^ENTRYPOINT \["` + q(BinaryPath) + `"\]$`},
		{"EXPOSE", `^EXPOSE ` + q(MetricsPort) + `$`},
		{"ENV SSL_CERT_FILE", `^ENV SSL_CERT_FILE=` + q(CACertsPath) + `$`},
		{"label " + LabelVersion, `^LABEL .*` + q(LabelVersion) + `=`},
		{"label " + LabelSource, `^LABEL .*` + q(LabelSource) + `=`},
		{"label " + LabelRevision, `^LABEL .*` + q(LabelRevision) + `=`},
		{"/tmp 1777", `^COPY --from=build --chmod=1777 /out/tmp /tmp$`},
		{"home 65532", `^COPY --from=build --chown=65532:65532 --chmod=0700 /out/home/nonroot /home/nonroot$`},
	} {
		if !has(final, want.re) {
			t.Errorf("Dockerfile's final stage lacks %s (/%s/):\n%s", want.what, want.re, strings.Join(final, "\n"))
		}
	}
	if !has(all, `CGO_ENABLED=0 .*go build -trimpath -ldflags "-s -w -X main.version=\$\{VERSION\}"`) {
		t.Errorf("Dockerfile does not build the binary as hack/image.sh does (CGO_ENABLED=0, -trimpath, -s -w, main.version)")
	}
	if n := len(final); n > 0 && has(final, `^(RUN|ADD) `) {
		t.Errorf("Dockerfile's final stage runs or adds something: the image is only the copied files")
	}
}
