// Command image builds the cinder-provisioner container image without a
// container engine (`make image` runs it through hack/image.sh): from an
// empty base, one image per platform with a static binary, the machine's CA
// certificates and a nonroot user, and the OCI index of them, written as an
// OCI image layout and, per platform, a tarball that `docker load` reads.
//
//	go run ./hack/image --version v1.2.3 --ca-certs /etc/ssl/certs/ca-certificates.crt \
//	  --binary linux/amd64=_output/image/bin/linux_amd64/cinder-provisioner \
//	  --binary linux/arm64=_output/image/bin/linux_arm64/cinder-provisioner \
//	  --oci-layout _output/image/oci --tarball-dir _output/image
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"
)

type flags struct {
	binaries   []string
	caCerts    string
	version    string
	source     string
	revision   string
	created    string
	repository string
	layoutDir  string
	tarballDir string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var f flags
	fs := pflag.NewFlagSet("image", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringArrayVar(&f.binaries, "binary", nil, "OS/ARCH=PATH: the static provisioner binary for a platform (repeat per platform)")
	fs.StringVar(&f.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle to ship at "+CACertsPath)
	fs.StringVar(&f.version, "version", "", "version: label "+LabelVersion+" and the image tag")
	fs.StringVar(&f.source, "source", "", "source repository URL: label "+LabelSource)
	fs.StringVar(&f.revision, "revision", "", "source revision (commit): label "+LabelRevision)
	fs.StringVar(&f.created, "created", "", "creation time, Unix seconds (the commit time makes builds reproducible); empty: now")
	fs.StringVar(&f.repository, "repository", "ghcr.io/cinder-provisioner/cinder-provisioner", "repository the tarballs are tagged with")
	fs.StringVar(&f.layoutDir, "oci-layout", "", "write the multi-platform OCI image layout to this directory (replaced)")
	fs.StringVar(&f.tarballDir, "tarball-dir", "", "write cinder-provisioner-<version>-<os>-<arch>.tar per platform to this directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	o, err := f.options()
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 2
	}
	if f.layoutDir == "" && f.tarballDir == "" {
		fmt.Fprintln(stderr, "image: nothing to write: give --oci-layout and/or --tarball-dir")
		return 2
	}
	if err := build(f, o, stdout); err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	return 0
}

func (f flags) options() (Options, error) {
	o := Options{CACerts: f.caCerts, Version: f.version, Source: f.source, Revision: f.revision}
	for _, b := range f.binaries {
		plat, file, ok := strings.Cut(b, "=")
		if !ok || file == "" {
			return o, fmt.Errorf("--binary %q: want OS/ARCH=PATH", b)
		}
		p, err := v1.ParsePlatform(plat)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return o, fmt.Errorf("--binary %q: platform %q: want OS/ARCH", b, plat)
		}
		o.Binaries = append(o.Binaries, PlatformBinary{Platform: *p, Path: file})
	}
	o.Created = time.Now().UTC().Truncate(time.Second)
	if f.created != "" {
		sec, err := strconv.ParseInt(f.created, 10, 64)
		if err != nil {
			return o, fmt.Errorf("--created %q: want Unix seconds", f.created)
		}
		o.Created = time.Unix(sec, 0).UTC()
	}
	return o, o.Validate()
}

func build(f flags, o Options, stdout io.Writer) error {
	b, err := Build(o)
	if err != nil {
		return err
	}
	if f.layoutDir != "" {
		if err := WriteLayout(f.layoutDir, b.Index, o.Version); err != nil {
			return err
		}
		d, err := b.Index.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "OCI layout  %s  index %s  tag %s\n", f.layoutDir, d, o.Version)
	}
	for _, pi := range b.Images {
		d, err := pi.Image.Digest()
		if err != nil {
			return err
		}
		size, err := compressedSize(pi.Image)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%-12s manifest %s  %.1f MiB compressed", pi.Platform.String(), d, float64(size)/(1<<20))
		if f.tarballDir != "" {
			name := filepath.Join(f.tarballDir, fmt.Sprintf("cinder-provisioner-%s-%s-%s.tar", o.Version, pi.Platform.OS, pi.Platform.Architecture))
			if err := os.MkdirAll(f.tarballDir, 0o755); err != nil {
				return err
			}
			if err := WriteTarball(name, f.repository+":"+o.Version, pi.Image); err != nil {
				return err
			}
			line += "  " + name
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// compressedSize is what a registry stores and a node pulls: the layers,
// compressed, plus config and manifest.
func compressedSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += s
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	return total + m.Config.Size + int64(len(raw)), nil
}
