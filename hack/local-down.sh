#!/usr/bin/env bash
# local-down.sh - stop the local stack (Kubernetes, Cinder, then Ceph), by the PIDs
# the up scripts recorded. --purge: also delete all their state.
set -uo pipefail
LOG_TAG=local-down
source "$(dirname "$0")/lib.sh"
HACK=$(cd "$(dirname "$0")" && pwd)
bash "$HACK/local-kube-down.sh" "$@"
bash "$HACK/local-cinder-down.sh" "$@"
CEPH_LAB=${CEPH_LAB:-$(dirname "${CINDER_LAB:-/tmp/cinder-provisioner/cinder}")/ceph} bash "$HACK/local-ceph-down.sh" "$@"
log "local stack stopped"
