#!/usr/bin/env bash
# local-snapshot.sh - external-snapshotter's snapshot-controller and the
# snapshot CRDs (VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotClass
# and the group-snapshot ones) on the local control plane, both from the
# pinned release (hack/versions.sh SNAPSHOTTER_VERSION; built and cached by
# build-snapshotter.sh). Called by local-kube.sh once kube-apiserver is
# ready; idempotent: re-running only starts what is not running. Stopped by
# local-kube-down.sh (by its PID).
set -euo pipefail
LOG_TAG=local-snapshot
source "$(dirname "$0")/lib.sh"

KLAB=${KUBE_LAB:-/tmp/cinder-provisioner/kube}
KUBECONFIG_FILE=${KUBECONFIG_FILE:-$KLAB/kubeconfig}
KUBECTL=${KUBECTL:-$OUT/kubectl}
mkdir -p "$KLAB"/{run,log}
[ -f "$KUBECONFIG_FILE" ] || die "no $KUBECONFIG_FILE: run hack/local-kube.sh first"

out=$(bash "$(dirname "$0")/build-snapshotter.sh")
SNAP_BIN=${out%%:*}
CRDS=${out##*:}

# ------------------------------------------------------------ CRDs
# server-side apply: the CRDs are large (client-side apply's annotation
# would exceed 256 KiB) and a CRD someone installed earlier is taken over
n=0
for f in "$CRDS"/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply --server-side --force-conflicts --field-manager cinder-provisioner-local -f "$f" >/dev/null \
    || die "cannot apply $(basename "$f")"
  n=$((n + 1))
done
for crd in volumesnapshots volumesnapshotcontents volumesnapshotclasses; do
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for condition=established --timeout=60s "crd/$crd.snapshot.storage.k8s.io" >/dev/null \
    || die "CRD $crd.snapshot.storage.k8s.io not established"
done
log "snapshot CRDs applied ($n files from $CRDS)"

# ------------------------------------------------------------ snapshot-controller
pidfile=$KLAB/run/snapshot-controller.pid
if running "$pidfile"; then
  log "snapshot-controller already running (pid $(cat "$pidfile"))"
else
  # close_fds: no inherited lock stays held; setsid: its own session
  ( close_fds; exec setsid "$SNAP_BIN/snapshot-controller" --kubeconfig "$KUBECONFIG_FILE" \
      --leader-election=false --worker-threads 4 --v=2 ) > "$KLAB/log/snapshot-controller.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  log "started snapshot-controller $(basename "$SNAP_BIN") (pid $!)"
  # it lists the CRDs, then its informers sync: give it a moment, then
  # check it did not exit
  ok() { running "$pidfile" && grep -q "Starting snapshot controller\|Started snapshot controller\|caches populated\|Caches are synced" "$KLAB/log/snapshot-controller.log"; }
  wait_for 60 snapshot-controller ok || { running "$pidfile" || die "snapshot-controller exited: $(tail -3 "$KLAB/log/snapshot-controller.log")"; log "snapshot-controller running (no sync line seen yet; log $KLAB/log/snapshot-controller.log)"; }
fi
log "READY: snapshot-controller (log $KLAB/log/snapshot-controller.log)"
