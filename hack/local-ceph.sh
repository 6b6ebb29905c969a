#!/usr/bin/env bash
# local-ceph.sh - install (if needed), create and start a one-node Ceph
# cluster (Debian bookworm packages, 16.2 Pacific) on 127.0.0.1 only, without
# systemd, the way Ceph's own src/vstart.sh makes one: one monitor, one manager
# (the monitor's "df" needs its PG statistics: Cinder's RBD driver reports
# capacity from it), one OSD whose BlueStore lives in a sparse file under
# $CEPH_LAB (no block device, no kernel module). cephx on; pool size 1.
# Idempotent: re-running only starts what is not running.
# Stop: local-ceph-down.sh.  Every process it starts has its PID in $CEPH_LAB/run/*.pid.
#
#   monitor   v2:127.0.0.1:3300 v1:127.0.0.1:6789 (CEPH_MON_V2_PORT, CEPH_MON_PORT)
#   pool      volumes (rbd application, size 1)
#   users     client.admin (everything), client.cinder (profile rbd on the pool)
#   files     $CEPH_LAB/ceph.conf, ceph.client.admin.keyring, ceph.client.cinder.keyring
#             $CEPH_LAB/ceph.env (CEPH_CONF, CEPH_FSID, CEPH_MONITORS, CEPH_POOL, CEPH_USER, CEPH_KEY)
#
# Knobs (environment):
#   CEPH_LAB=/tmp/cinder-provisioner/ceph   state, logs, pidfiles
#   CEPH_POOL=volumes                       the pool Cinder uses
#   CEPH_OSD_SIZE_GB=20                     size of the OSD's sparse BlueStore file
#   CEPH_WAIT=120                           seconds to wait for each daemon
#   CEPH_MON_PORT=6789 CEPH_MON_V2_PORT=3300  the monitor's ports (v1, v2)
set -euo pipefail

LOG_TAG=local-ceph
source "$(dirname "$0")/lib.sh"
LAB=${CEPH_LAB:-/tmp/cinder-provisioner/ceph}
POOL=${CEPH_POOL:-volumes}
OSD_GB=${CEPH_OSD_SIZE_GB:-20}
WAIT=${CEPH_WAIT:-120}
MON_V1=${CEPH_MON_PORT:-6789}
MON_V2=${CEPH_MON_V2_PORT:-3300}
MON_ADDRS="[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export DEBIAN_FRONTEND=noninteractive
CONF=$LAB/ceph.conf
ADMIN=(ceph --conf "$CONF" --name client.admin --keyring "$LAB/ceph.client.admin.keyring" --connect-timeout 10)

ssd_start() { # name exe args...   (pidfile run/NAME.pid, output log/NAME.out)
  local name=$1; shift
  if running "$LAB/run/$name.pid"; then log "$name already running (pid $(cat "$LAB/run/$name.pid"))"; return; fi
  start-stop-daemon --start --background --make-pidfile --pidfile "$LAB/run/$name.pid" \
    --output "$LAB/log/$name.out" --exec "$1" -- "${@:2}"
  log "started $name (pid $(cat "$LAB/run/$name.pid"))"
}

mkdir -p "$LAB"/{run,log}

# ---------------------------------------------------------------- 1. packages
# (local-cinder.sh installs these in its own apt-get run when the rbd backend
# is on; this is for running local-ceph.sh alone)
PKGS="ceph-mon ceph-osd ceph-mgr ceph-common python3-rbd uuid-runtime"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -q '^install ok installed$' || echo $p; done)
if [ -n "$missing" ]; then
  log "installing:" $missing
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1; fi
  : > "$LAB/log/apt.log"
  progress_run "apt-get update" "$LAB/log/apt.log" apt-get update -q || { tail -20 "$LAB/log/apt.log"; die "apt-get update failed"; }
  progress_run "apt-get install (Ceph)" "$LAB/log/apt.log" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing \
    || { tail -20 "$LAB/log/apt.log"; die "apt-get install failed"; }
  [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
fi

# ---------------------------------------------------------------- 2. config
[ -f "$LAB/fsid" ] || uuidgen > "$LAB/fsid"
FSID=$(cat "$LAB/fsid")
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon_host = $MON_ADDRS
public_addr = 127.0.0.1
ms_bind_ipv4 = true
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
run_dir = $LAB/run
log_file = $LAB/log/\$name.log
crash_dir = $LAB/crash
# one OSD: every pool has one replica, and placement picks among OSDs, not hosts
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[client.admin]
keyring = $LAB/ceph.client.admin.keyring
[client.cinder]
keyring = $LAB/ceph.client.cinder.keyring

[mon]
admin_socket = $LAB/run/\$name.asok
mon_data = $LAB/mon.\$id
mon_cluster_log_file = $LAB/log/cluster.log

[mgr]
admin_socket = $LAB/run/\$name.asok
mgr_data = $LAB/mgr.\$id
keyring = $LAB/mgr.\$id/keyring

[osd]
admin_socket = $LAB/run/\$name.asok
osd_data = $LAB/osd.\$id
keyring = $LAB/osd.\$id/keyring
osd_objectstore = bluestore
# BlueStore in a sparse file osd.N/block (what vstart.sh does): no block device needed
bluestore_block_create = true
bluestore_block_size = $((OSD_GB * 1024 * 1024 * 1024))
bluestore_block_db_create = false
bluestore_block_wal_create = false
bluestore_fsck_on_mount = false
# small machine: a fixed, small cache instead of the 4 GiB memory target
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 134217728
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1
EOF

# ---------------------------------------------------------------- 3. monitor
if [ ! -f "$LAB/mon.a/done" ]; then
  rm -rf "$LAB/mon.a"
  ceph-authtool --create-keyring "$LAB/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$LAB/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$LAB/mon.keyring" --import-keyring "$LAB/ceph.client.admin.keyring" >/dev/null
  monmaptool --create --clobber --fsid "$FSID" --addv a "$MON_ADDRS" "$LAB/monmap" >/dev/null
  ceph-mon --conf "$CONF" --mkfs -i a --monmap "$LAB/monmap" --keyring "$LAB/mon.keyring" > "$LAB/log/mon-mkfs.out" 2>&1 \
    || { tail -20 "$LAB/log/mon-mkfs.out"; die "ceph-mon --mkfs failed"; }
  touch "$LAB/mon.a/done"
  log "monitor created (fsid $FSID)"
fi
ssd_start ceph-mon /usr/bin/ceph-mon --conf "$CONF" -i a -f
wait_for "$WAIT" "the monitor" "${ADMIN[@]}" mon stat || die "the monitor did not answer within ${WAIT}s; see $LAB/log/"
log "monitor answers"
# (mon_allow_pool_size_one in the file is read at mkfs; setting it is idempotent)
"${ADMIN[@]}" config set global mon_allow_pool_size_one true >/dev/null

# ---------------------------------------------------------------- 4. manager
if [ ! -f "$LAB/mgr.x/keyring" ]; then
  mkdir -p "$LAB/mgr.x"
  "${ADMIN[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    -o "$LAB/mgr.x/keyring" >/dev/null
fi
ssd_start ceph-mgr /usr/bin/ceph-mgr --conf "$CONF" -i x -f

# ---------------------------------------------------------------- 5. OSD
if [ ! -f "$LAB/osd.0/done" ]; then
  rm -rf "$LAB/osd.0"; mkdir -p "$LAB/osd.0"
  # a half-made OSD 0 of an interrupted run: forget it, make it again
  "${ADMIN[@]}" osd purge 0 --yes-i-really-mean-it >/dev/null 2>&1 || true
  uuid=$(uuidgen)
  key=$(ceph-authtool --gen-print-key)
  echo "{\"cephx_secret\": \"$key\"}" > "$LAB/osd.0/new.json"
  id=$("${ADMIN[@]}" osd new "$uuid" -i "$LAB/osd.0/new.json")
  rm -f "$LAB/osd.0/new.json"
  [ "$id" = 0 ] || die "expected OSD id 0, the monitor gave $id"
  printf '[osd.0]\n\tkey = %s\n' "$key" > "$LAB/osd.0/keyring"
  progress_run "ceph-osd --mkfs (BlueStore in a ${OSD_GB} GiB sparse file)" "$LAB/log/osd-mkfs.out" \
    ceph-osd --conf "$CONF" -i 0 --mkfs --key "$key" --osd-uuid "$uuid" \
    || { tail -20 "$LAB/log/osd-mkfs.out"; die "ceph-osd --mkfs failed"; }
  touch "$LAB/osd.0/done"
  log "OSD 0 created"
fi
ssd_start ceph-osd /usr/bin/ceph-osd --conf "$CONF" -i 0 -f
# up in the OSD map, and this very process answers (after a kill -9 the map
# says up until the monitor notices; tell reaches only the live daemon)
wait_for "$WAIT" "OSD 0 up" bash -c "${ADMIN[*]} osd dump --format json | grep -q '\"osd\":0,\"uuid\":\"[^\"]*\",\"up\":1' &&
  timeout 10 ${ADMIN[*]} tell osd.0 version" \
  || die "OSD 0 not up within ${WAIT}s; see $LAB/log/ceph-osd.out, $LAB/log/osd.0.log"
log "OSD 0 up"

# ---------------------------------------------------------------- 6. pool, user
if ! "${ADMIN[@]}" osd pool ls | grep -qx "$POOL"; then
  "${ADMIN[@]}" osd pool create "$POOL" 8 8 replicated >/dev/null 2>&1
  "${ADMIN[@]}" osd pool set "$POOL" size 1 --yes-i-really-mean-it >/dev/null 2>&1
  "${ADMIN[@]}" osd pool application enable "$POOL" rbd >/dev/null 2>&1
  log "pool $POOL created"
fi
# the caps Ceph documents for Cinder: rbd profiles, on its pool only
"${ADMIN[@]}" auth get-or-create client.cinder mon 'profile rbd' osd "profile rbd pool=$POOL" \
  mgr "profile rbd pool=$POOL" -o "$LAB/ceph.client.cinder.keyring" >/dev/null
wait_for "$WAIT" "the pool's placement groups" bash -c \
  "${ADMIN[*]} pg ls-by-pool $POOL --format json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); s=d[\"pg_stats\"] if isinstance(d,dict) else d; sys.exit(0 if s and all(\"active\" in p[\"state\"] for p in s) else 1)'" \
  || die "the placement groups of $POOL are not active within ${WAIT}s"

CINDER_KEY=$(ceph-authtool "$LAB/ceph.client.cinder.keyring" -n client.cinder -p)
{
  echo "# source me: the local Ceph cluster (hack/local-ceph.sh)"
  echo "CEPH_CONF=$CONF"
  echo "CEPH_FSID=$FSID"
  echo "CEPH_MONITORS=127.0.0.1:$MON_V1"
  echo "CEPH_POOL=$POOL"
  echo "CEPH_USER=cinder"
  echo "CEPH_KEY=$CINDER_KEY"
  echo "CEPH_ADMIN_KEYRING=$LAB/ceph.client.admin.keyring"
} > "$LAB/ceph.env"
chmod 600 "$LAB/ceph.env"
log "READY: Ceph $FSID, monitor 127.0.0.1:$MON_V1, pool $POOL, user client.cinder; env in $LAB/ceph.env"
