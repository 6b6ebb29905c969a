#!/usr/bin/env bash
# local-kube-down.sh - stop what local-kube.sh started, by the PIDs in
# $KUBE_LAB/run/*.pid and nothing else. --purge: also delete etcd data and keys.
set -uo pipefail
LOG_TAG=local-kube
source "$(dirname "$0")/lib.sh"
KLAB=${KUBE_LAB:-/tmp/cinder-provisioner/kube}
stop_pidfile "$KLAB/run/snapshot-controller.pid" snapshot-controller 10
stop_pidfile "$KLAB/run/kube-controller-manager.pid" kube-controller-manager 10
stop_pidfile "$KLAB/run/kube-apiserver.pid" kube-apiserver 20
stop_pidfile "$KLAB/run/etcd.pid" etcd 10
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$KLAB"
  log "purged $KLAB"
fi
