#!/usr/bin/env bash
# local-ceph-down.sh - stop what local-ceph.sh started, by the PIDs in
# $CEPH_LAB/run/*.pid and nothing else (OSD, manager, then monitor).
# --purge: also delete the cluster (monitor store, OSD file, keys, logs).
set -uo pipefail
LOG_TAG=local-ceph-down
source "$(dirname "$0")/lib.sh"
LAB=${CEPH_LAB:-/tmp/cinder-provisioner/ceph}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
stop_pidfile "$LAB/run/ceph-osd.pid" ceph-osd 30
stop_pidfile "$LAB/run/ceph-mgr.pid" ceph-mgr 15
stop_pidfile "$LAB/run/ceph-mon.pid" ceph-mon 15
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$LAB"
  log "purged $LAB"
fi
