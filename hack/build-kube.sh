#!/usr/bin/env bash
# build-kube.sh - build etcd, kube-apiserver, kube-controller-manager, kubectl
# and kube-scheduler (for the capacity test) from the Go module proxy at the
# pinned versions (hack/versions.sh) and cache them per version under
# $CACHE/bin/. Prints the bin directory on stdout.
# A cached build is reused: a second run takes well under a second.
set -euo pipefail
LOG_TAG=build-kube
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/versions.sh"

KUBE_BIN=$CACHE/bin/kubernetes-$KUBE_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
mkdir -p "$CACHE/build"

build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && return 0
  log "building etcd $ETCD_VERSION (first time only, ~30 s)" >&2
  local w=$CACHE/build/etcd-$ETCD_VERSION
  rm -rf "$w"; mkdir -p "$w"
  # etcd's own go.mod has replace directives, so `go install pkg@version` cannot
  # build it; a throw-away module that requires it can.
  cat > "$w/go.mod" <<MOD
module local/etcd-build

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  # -v: the ticker shows the package being compiled (go build says nothing else)
  progress_run "building etcd $ETCD_VERSION" "$w/build.log" bash -c "cd '$w' \
    && GOFLAGS=-mod=mod go get go.etcd.io/etcd/server/v3@$ETCD_VERSION \
    && GOFLAGS=-mod=mod go build -v -trimpath -ldflags='-s -w' -o '$w/etcd' go.etcd.io/etcd/server/v3" \
    || { tail -30 "$w/build.log" >&2; die "building etcd $ETCD_VERSION failed; log: $w/build.log"; }
  mkdir -p "$ETCD_BIN"; mv "$w/etcd" "$ETCD_BIN/etcd"; rm -rf "$w"
}

KUBE_BINARIES=(kube-apiserver kube-controller-manager kubectl kube-scheduler)

build_kube() {
  # only what is missing: a cache made before kube-scheduler was added gets
  # just that one
  local missing=() b
  for b in "${KUBE_BINARIES[@]}"; do
    [ -x "$KUBE_BIN/$b" ] || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "building Kubernetes $KUBE_VERSION: ${missing[*]} (first time only: 10 to 17 min on 2 cores with an empty Go build cache)" >&2
  local w=$CACHE/build/kubernetes-$KUBE_VERSION minor=${KUBE_VERSION#v1.}
  rm -rf "$w"; mkdir -p "$w"
  local kmod
  progress_run "downloading k8s.io/kubernetes@$KUBE_VERSION" "$w/download.log" \
    go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" || true
  kmod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' "$w/download.log")
  [ -f "$kmod" ] || die "cannot download k8s.io/kubernetes@$KUBE_VERSION"
  {
    echo "module local/kubernetes-build"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    # k8s.io/kubernetes replaces each staging module with ./staging/...; outside
    # its repository those are the published k8s.io/<name> v0.<minor> modules.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"$minor"'#p' "$kmod"
  } > "$w/go.mod"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
  local major=1 mnr=${minor%%.*}
  local ld="-s -w"
  for p in $pkg $cpkg; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$mnr -X $p.gitTreeState=clean"
  done
  cat > "$w/tools.go" <<'GO'
//go:build tools

package tools
GO
  (cd "$w" && GOFLAGS=-mod=mod go mod download k8s.io/kubernetes >/dev/null 2>&1) || true
  # -v: the ticker shows the package being compiled; ~2,000 packages cold
  progress_run "building Kubernetes $KUBE_VERSION" "$w/build.log" bash -c "cd '$w' \
    && GOFLAGS=-mod=mod go build -v -trimpath -ldflags='$ld' -o '$w/' \
      ${missing[*]/#/k8s.io/kubernetes/cmd/}" \
    || { tail -30 "$w/build.log" >&2; die "building Kubernetes $KUBE_VERSION failed; log: $w/build.log"; }
  mkdir -p "$KUBE_BIN"
  for b in "${missing[@]}"; do mv "$w/$b" "$KUBE_BIN/"; done
  rm -rf "$w"
}

build_etcd
build_kube
log "binaries ready: $KUBE_BIN, $ETCD_BIN" >&2
echo "$KUBE_BIN:$ETCD_BIN"
