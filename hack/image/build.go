package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is, shared with the Dockerfile (build_test.go holds the
// Dockerfile to the same values).
const (
	// BinaryPath is the provisioner in the image and its entrypoint.
	BinaryPath = "/cinder-provisioner"
	// User is the numeric nonroot user and group (65532, as distroless's
	// "nonroot"); deploy/ runs the pod with runAsNonRoot and this uid.
	User = "65532:65532"
	// CACertsPath is where Go's crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// MetricsPort serves /metrics and /healthz (--metrics-address=:8080).
	MetricsPort = "8080/tcp"

	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
	// RefName names the image in an OCI layout's index.json.
	RefName = "org.opencontainers.image.ref.name"
)

// rootfs holds /etc/passwd and /etc/group with the nonroot user; the
// Dockerfile copies the same files.
//
//go:embed rootfs/etc/passwd rootfs/etc/group
var rootfs embed.FS

// Options says what goes into the image.
type Options struct {
	// Binaries: one static linux binary per platform, in index order.
	Binaries []PlatformBinary
	// CACerts is the CA bundle file to ship (the machine's Debian bundle).
	CACerts string
	// Version, Source and Revision become the image's labels; Version also
	// is its tag.
	Version  string
	Source   string
	Revision string
	// Created stamps the config, the history and every file: the commit's
	// time makes the build reproducible.
	Created time.Time
}

// PlatformBinary is the provisioner binary built for one platform.
type PlatformBinary struct {
	Platform v1.Platform
	Path     string
}

// Validate checks the options without reading any file.
func (o Options) Validate() error {
	if len(o.Binaries) == 0 {
		return errors.New("no binary given")
	}
	seen := map[string]bool{}
	for _, b := range o.Binaries {
		p := b.Platform.String()
		if b.Platform.OS != "linux" {
			return fmt.Errorf("platform %s: only linux images are built", p)
		}
		if seen[p] {
			return fmt.Errorf("platform %s given twice", p)
		}
		seen[p] = true
	}
	if o.CACerts == "" {
		return errors.New("no CA certificates file given")
	}
	if o.Version == "" {
		return errors.New("no version given")
	}
	if _, err := name.NewTag("example.com/x:"+o.Version, name.StrictValidation); err != nil {
		return fmt.Errorf("version %q cannot be an image tag: %w", o.Version, err)
	}
	if o.Created.IsZero() {
		return errors.New("no creation time given")
	}
	return nil
}

// Built is the multi-platform index and its images, in the order given.
type Built struct {
	Index  v1.ImageIndex
	Images []PlatformImage
}

// PlatformImage is the image of one platform.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// Build assembles one image per platform from an empty base (the shared
// base layer: CA certificates, /etc/passwd, /etc/group, /tmp, the user's
// home; then a layer with the binary) and the OCI index of them all.
func Build(o Options) (*Built, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	if !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it", o.CACerts)
	}
	base, err := baseLayer(certs, o.Created)
	if err != nil {
		return nil, err
	}
	out := &Built{}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range o.Binaries {
		img, err := platformImage(o, b, base)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", b.Platform.String(), err)
		}
		p := b.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
		out.Images = append(out.Images, PlatformImage{Platform: p, Image: img})
	}
	out.Index = idx
	return out, nil
}

func platformImage(o Options, b PlatformBinary, base v1.Layer) (v1.Image, error) {
	bin, err := os.ReadFile(b.Path)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	if err := checkStaticBinary(bin, b.Platform); err != nil {
		return nil, fmt.Errorf("binary %s: %w", b.Path, err)
	}
	binLayer, err := layer([]file{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: bin}}, o.Created)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "hack/image: CA certificates, /etc/passwd and /etc/group (nonroot 65532), /tmp",
		}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "hack/image: " + BinaryPath + " (static, CGO_ENABLED=0)",
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = b.Platform.OS, b.Platform.Architecture, b.Platform.Variant
	cf.Created = created
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{BinaryPath},
		WorkingDir:   "/",
		Env:          []string{"SSL_CERT_FILE=" + CACertsPath},
		ExposedPorts: map[string]struct{}{MetricsPort: {}},
		Labels:       Labels(o),
	}
	return mutate.ConfigFile(img, cf)
}

// Labels are the image's OCI labels.
func Labels(o Options) map[string]string {
	l := map[string]string{
		LabelTitle:   "cinder-provisioner",
		LabelVersion: o.Version,
		LabelCreated: o.Created.UTC().Format(time.RFC3339),
	}
	if o.Source != "" {
		l[LabelSource] = o.Source
	}
	if o.Revision != "" {
		l[LabelRevision] = o.Revision
	}
	return l
}

// elfMachines is the ELF machine of each architecture built.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// checkStaticBinary refuses what would not run on an empty base: not an
// ELF executable, another architecture, or a dynamically linked binary
// (built with cgo: there is no libc in the image).
func checkStaticBinary(data []byte, p v1.Platform) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer func() { _ = f.Close() }() // a reader over bytes: nothing to close
	want, ok := elfMachines[p.Architecture]
	if !ok {
		return fmt.Errorf("architecture %q unknown", p.Architecture)
	}
	if f.Machine != want {
		return fmt.Errorf("built for %s, want %s (%s)", f.Machine, want, p.Architecture)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has an ELF interpreter): build it with CGO_ENABLED=0")
		}
	}
	return nil
}

type file struct {
	name string // relative, no leading slash; a trailing slash: directory
	mode int64
	uid  int
	data []byte
}

func baseLayer(certs []byte, created time.Time) (v1.Layer, error) {
	passwd, err := rootfs.ReadFile("rootfs/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := rootfs.ReadFile("rootfs/etc/group")
	if err != nil {
		return nil, err
	}
	return layer([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: group},
		{name: "etc/passwd", mode: 0o644, data: passwd},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: 65532},
		{name: "tmp/", mode: 0o1777},
	}, created)
}

// layer makes a gzip-compressed OCI layer of files, sorted, owned by root
// (or uid), every time set to created: the same input, the same digest.
func layer(files []file, created time.Time) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: created.UTC(),
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if f.uid != 0 {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", path.Clean(f.name), err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", path.Clean(f.name), err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes the index as an OCI image layout in dir (replacing
// what was there), named by tag in index.json.
func WriteLayout(dir string, idx v1.ImageIndex, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: tag})); err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a tarball that `docker load`, `podman load`,
// `ctr images import` and `kind load image-archive` read, tagged ref.
func WriteTarball(file string, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
