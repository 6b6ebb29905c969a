#!/usr/bin/env bash
# release.sh - `make release`: everything a release publishes, stamped with
# VERSION (git describe), in RELEASE_DIR (default _output/release), replaced:
#   cinder-provisioner-$VERSION-image-oci.tar          OCI image layout, every platform (skopeo copy oci-archive:...)
#   cinder-provisioner-$VERSION-linux-ARCH.image.tar   per platform, for docker/podman load, ctr import, kind load
#   cinder-provisioner-$VERSION-linux-ARCH             the static binaries (check, orphans, or a run outside a cluster)
#   cinder-provisioner-CHART_VERSION.tgz               the Helm chart (helm package), appVersion and image tag $VERSION
#   cinder-provisioner-$VERSION.yaml                   the kustomize base rendered with image tag $VERSION
#   SHA256SUMS                                         sha256sum of all of the above
# Helm and kustomize are pinned (HELM_VERSION, KUSTOMIZE_VERSION: the
# Makefile) and run through `go run module@version`.
set -euo pipefail
LOG_TAG=release
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
export VERSION
RELEASE_DIR=${RELEASE_DIR:-_output/release}
IMAGE_DIR=${IMAGE_DIR:-_output/image}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/cinder-provisioner/cinder-provisioner}
HELM_VERSION=${HELM_VERSION:?set HELM_VERSION (the Makefile pins it)}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:?set KUSTOMIZE_VERSION (the Makefile pins it)}
GO=${GO:-go}
CHART=deploy/helm/cinder-provisioner
helm() { "$GO" run "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$@"; }
kustomize() { "$GO" run "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" "$@"; }

case "$VERSION" in
  *-dirty) log "WARNING: version $VERSION: the work tree has uncommitted changes; tag a clean commit for a real release" ;;
esac

# the chart's version must be SemVer: vX.Y.Z[-pre] -> X.Y.Z[-pre]; anything
# else (an untagged commit) -> the chart's own version with the describe
# output as a pre-release: 0.1.1-a5d8e94-dirty
chart_base=$(sed -n 's/^version: *//p' "$CHART/Chart.yaml")
if [[ $VERSION =~ ^v?([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?)$ ]]; then
  CHART_VERSION=${BASH_REMATCH[1]}
else
  CHART_VERSION=$chart_base-$(echo "$VERSION" | tr -c '0-9A-Za-z.\n-' '-')
fi

rm -rf "$RELEASE_DIR"
mkdir -p "$RELEASE_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log "1/4 image $IMAGE_REPO:$VERSION (make image)"
IMAGE_DIR=$IMAGE_DIR bash hack/image.sh
# a reproducible archive of the layout: sorted, numeric root owner, fixed time
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}" \
  -C "$IMAGE_DIR/oci" -cf "$RELEASE_DIR/cinder-provisioner-$VERSION-image-oci.tar" .
for t in "$IMAGE_DIR"/cinder-provisioner-"$VERSION"-linux-*.tar; do
  arch=${t##*-linux-}; arch=${arch%.tar}
  cp "$t" "$RELEASE_DIR/cinder-provisioner-$VERSION-linux-$arch.image.tar"
  cp "$IMAGE_DIR/bin/linux_$arch/cinder-provisioner" "$RELEASE_DIR/cinder-provisioner-$VERSION-linux-$arch"
done

log "2/4 Helm chart $CHART_VERSION (appVersion $VERSION)"
: > "$tmp/helm.log"
progress_run "helm $HELM_VERSION (go run; built on first use)" "$tmp/helm.log" helm version --short \
  || { tail -20 "$tmp/helm.log" >&2; die "cannot build helm $HELM_VERSION"; }
helm lint --strict "$CHART" --set clusterID=release-check >/dev/null
helm package "$CHART" --version "$CHART_VERSION" --app-version "$VERSION" --destination "$RELEASE_DIR" >/dev/null
[ -f "$RELEASE_DIR/cinder-provisioner-$CHART_VERSION.tgz" ] || die "helm package made no cinder-provisioner-$CHART_VERSION.tgz"

log "3/4 manifests: the kustomize base with image tag $VERSION"
cat > "$tmp/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$tmp" deploy/kubernetes)
images:
  - name: $IMAGE_REPO
    newTag: "$VERSION"
EOF
: > "$tmp/kustomize.log"
progress_run "kustomize $KUSTOMIZE_VERSION (go run; built on first use)" "$tmp/kustomize.log" kustomize version \
  || { tail -20 "$tmp/kustomize.log" >&2; die "cannot build kustomize $KUSTOMIZE_VERSION"; }
{
  echo "# cinder-provisioner $VERSION: the kustomize base (deploy/kubernetes), image $IMAGE_REPO:$VERSION."
  echo "# Set cluster-id in ConfigMap cinder-provisioner-config and create Secret cinder-cloud-config first: deploy/README.md"
  kustomize build "$tmp"
} > "$RELEASE_DIR/cinder-provisioner-$VERSION.yaml"
grep -q "image: $IMAGE_REPO:$VERSION\$" "$RELEASE_DIR/cinder-provisioner-$VERSION.yaml" \
  || die "the rendered manifests do not run image $IMAGE_REPO:$VERSION"

log "4/4 checksums"
(cd "$RELEASE_DIR" && sha256sum -- * > SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
log "done: $RELEASE_DIR"
(cd "$RELEASE_DIR" && ls -l --time-style=+ | awk 'NR > 1 {printf "  %10d  %s\n", $5, $NF}')
