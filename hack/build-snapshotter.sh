#!/usr/bin/env bash
# build-snapshotter.sh - build external-snapshotter's snapshot-controller from
# the Go module proxy at the pinned version (hack/versions.sh) and cache it per
# version under $CACHE/bin/, like build-kube.sh does for Kubernetes. Prints
# "BIN_DIR:CRD_DIR" on stdout: the binary's directory and the client/v8
# module's config/crd (the CRDs of the same release).
set -euo pipefail
LOG_TAG=build-snapshotter
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/versions.sh"

SNAP_BIN=$CACHE/bin/external-snapshotter-$SNAPSHOTTER_VERSION
mkdir -p "$CACHE/build"

crd_dir() {
  local w=$CACHE/build/snapshotter-crds-$SNAPSHOTTER_VERSION dir
  mkdir -p "$w"
  go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" > "$w/download.json" 2>&1 \
    || { cat "$w/download.json" >&2; die "cannot download external-snapshotter client/v8 $SNAPSHOTTER_VERSION"; }
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' "$w/download.json")
  [ -d "$dir/config/crd" ] || die "no config/crd in external-snapshotter client/v8 $SNAPSHOTTER_VERSION ($dir)"
  echo "$dir/config/crd"
}

build() {
  [ -x "$SNAP_BIN/snapshot-controller" ] && return 0
  log "building snapshot-controller $SNAPSHOTTER_VERSION (first time only, a few minutes)" >&2
  local w=$CACHE/build/external-snapshotter-$SNAPSHOTTER_VERSION
  rm -rf "$w"; mkdir -p "$w"
  # external-snapshotter's go.mod replaces its client module with ./client,
  # so `go install pkg@version` cannot build it; a throw-away module that
  # requires both at the same version can.
  cat > "$w/go.mod" <<MOD
module local/snapshotter-build

go 1.26

require (
	github.com/kubernetes-csi/external-snapshotter/v8 $SNAPSHOTTER_VERSION
	github.com/kubernetes-csi/external-snapshotter/client/v8 $SNAPSHOTTER_VERSION
)
MOD
  local ld="-s -w -X main.version=$SNAPSHOTTER_VERSION"
  progress_run "building snapshot-controller $SNAPSHOTTER_VERSION" "$w/build.log" bash -c "cd '$w' \
    && GOFLAGS=-mod=mod go get github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller@$SNAPSHOTTER_VERSION \
    && GOFLAGS=-mod=mod go build -v -trimpath -ldflags='$ld' -o '$w/snapshot-controller' github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller" \
    || { tail -30 "$w/build.log" >&2; die "building snapshot-controller $SNAPSHOTTER_VERSION failed; log: $w/build.log"; }
  mkdir -p "$SNAP_BIN"; mv "$w/snapshot-controller" "$SNAP_BIN/"; rm -rf "$w"
}

build
crds=$(crd_dir)
log "snapshot-controller ready: $SNAP_BIN; CRDs: $crds" >&2
echo "$SNAP_BIN:$crds"
