#!/usr/bin/env bash
# image.sh - `make image`: the container image, built without a container
# engine. For each platform of IMAGE_PLATFORMS a static binary
# (CGO_ENABLED=0, -trimpath), then hack/image (go-containerregistry) puts
# each on an empty base with the machine's CA certificates and the nonroot
# user 65532, and writes:
#   $IMAGE_DIR/oci/                                     OCI image layout, multi-platform index, tag $VERSION
#   $IMAGE_DIR/cinder-provisioner-$VERSION-linux-ARCH.tar  per platform, for docker/podman load, ctr import, kind load
#   $IMAGE_DIR/bin/linux_ARCH/cinder-provisioner          the binaries
# Files and times are fixed (the commit's time): the same commit and CA bundle
# give the same digests. Environment (the Makefile passes them): VERSION,
# REVISION, SOURCE_URL, IMAGE_REPO, IMAGE_PLATFORMS, IMAGE_DIR, CA_CERTS,
# SOURCE_DATE_EPOCH.
set -euo pipefail
LOG_TAG=image
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || true)}
SOURCE_URL=${SOURCE_URL:-https://github.com/cinder-provisioner/cinder-provisioner}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/cinder-provisioner/cinder-provisioner}
IMAGE_PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64,linux/arm64}
IMAGE_DIR=${IMAGE_DIR:-_output/image}
CA_CERTS=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
GO=${GO:-go}

[ -s "$CA_CERTS" ] || die "no CA certificates at $CA_CERTS (apt-get install ca-certificates)"
mkdir -p "$IMAGE_DIR/bin"
logs=$IMAGE_DIR/logs
mkdir -p "$logs"

args=()
for p in ${IMAGE_PLATFORMS//,/ }; do
  os=${p%%/*} arch=${p#*/}
  out=$IMAGE_DIR/bin/${os}_$arch/cinder-provisioner
  : > "$logs/build-${os}_$arch.log"
  # -v: the ticker shows the package being compiled; a cold cross build of
  # every dependency takes minutes on 2 cores, a warm one seconds
  progress_run "building $p binary" "$logs/build-${os}_$arch.log" \
    env CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" "$GO" build -v -trimpath \
      -ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/cinder-provisioner \
    || { tail -20 "$logs/build-${os}_$arch.log" >&2; die "go build for $p failed; log: $logs/build-${os}_$arch.log"; }
  args+=(--binary "$p=$out")
done

: > "$logs/build-image-tool.log"
progress_run "building hack/image" "$logs/build-image-tool.log" \
  "$GO" build -o "$IMAGE_DIR/bin/image-build" ./hack/image \
  || { tail -20 "$logs/build-image-tool.log" >&2; die "building hack/image failed"; }
log "assembling the image $IMAGE_REPO:$VERSION ($IMAGE_PLATFORMS)"
"$IMAGE_DIR/bin/image-build" "${args[@]}" --ca-certs "$CA_CERTS" \
  --version "$VERSION" --revision "$REVISION" --source "$SOURCE_URL" --created "$SOURCE_DATE_EPOCH" \
  --repository "$IMAGE_REPO" --oci-layout "$IMAGE_DIR/oci" --tarball-dir "$IMAGE_DIR"
log "done: $IMAGE_DIR/oci (OCI layout; e.g. skopeo copy oci:$IMAGE_DIR/oci:$VERSION docker://$IMAGE_REPO:$VERSION)"
