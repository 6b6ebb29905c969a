#!/usr/bin/env bash
# local-up.sh - bring up the whole local stack on 127.0.0.1: a real Kubernetes
# control plane (local-kube.sh) and a real Cinder (local-cinder.sh), reusing
# whatever already runs. Leaves in $LOCAL_OUT (default _output/local):
#   kubeconfig   admin kubeconfig of the local kube-apiserver
#   kubectl      the kubectl built at the pinned Kubernetes version
#   cloud.conf   noauth cloud config in the original provisioner's format
#   cloud-keystone.conf   the same Cinder reached through Keystone
#   env          KEY=VALUE settings to source (KUBECONFIG, CINDER_*, KEYSTONE_*)
# Concurrent callers (parallel test packages) are serialised with a lock.
set -euo pipefail
LOG_TAG=local-up
source "$(dirname "$0")/lib.sh"
HACK=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

exec 9> "$OUT/.up.lock"
flock -w 1800 9 || die "another local-up.sh holds $OUT/.up.lock"

log "bringing up Cinder and Kubernetes (logs: $OUT/local-cinder.log, $OUT/local-kube.log)"
# 9>&-: the daemons these start must not inherit (and hold) the lock
bash "$HACK/local-cinder.sh" > "$OUT/local-cinder.log" 2>&1 9>&- &
cinder_pid=$!
bash "$HACK/local-kube.sh" > "$OUT/local-kube.log" 2>&1 9>&- &
kube_pid=$!
# a line at least every PROGRESS_EVERY s from each while it runs (a cold run
# installs Debian packages and builds Kubernetes for minutes), with the last
# line of its log: what it is doing
progress_start "Cinder (local-cinder.sh)" $cinder_pid "$OUT/local-cinder.log" 9>&-
cinder_ticker=$PROGRESS_PID
progress_start "Kubernetes (local-kube.sh)" $kube_pid "$OUT/local-kube.log" 9>&-
kube_ticker=$PROGRESS_PID
rc=0
wait $cinder_pid || { rc=1; log "local-cinder.sh failed:"; tail -20 "$OUT/local-cinder.log" >&2; }
progress_stop $cinder_ticker
wait $kube_pid || { rc=1; log "local-kube.sh failed:"; tail -20 "$OUT/local-kube.log" >&2; }
progress_stop $kube_ticker
[ $rc = 0 ] || die "local stack did not come up"
log "$(grep -h 'READY' "$OUT/local-cinder.log" | tail -1 | sed 's/^\[[^]]*\] //')"
log "$(grep -h 'READY' "$OUT/local-kube.log" | tail -1 | sed 's/^\[[^]]*\] //')"

CLAB=${CINDER_LAB:-/tmp/cinder-provisioner/cinder}
set -a; source "$CLAB/cinder.env"; set +a

cat > "$OUT/cloud.conf" <<CONF
# A standalone Cinder reached directly (auth_strategy noauth), in the original
# standalone-cinder provisioner's format: the token is "username:tenant-name".
[Global]
cinder-endpoint = ${CINDER_ENDPOINT%$CINDER_PROJECT_ID}
username = admin
tenant-name = $CINDER_PROJECT_ID
CONF
if [ -n "${KEYSTONE_AUTH_URL:-}" ]; then
  cat > "$OUT/cloud-keystone.conf" <<CONF
# The same Cinder through Keystone: the catalog's volumev3 endpoint is the
# Keystone-authenticated cinder-api on 127.0.0.1:8777.
[Global]
auth-url = $KEYSTONE_AUTH_URL
username = $KEYSTONE_USERNAME
password = $KEYSTONE_PASSWORD
tenant-name = $KEYSTONE_PROJECT_NAME
domain-name = $KEYSTONE_DOMAIN_NAME
region = $KEYSTONE_REGION
CONF
  chmod 600 "$OUT/cloud-keystone.conf"
fi
{
  echo "# source me: the local stack (hack/local-up.sh)"
  echo "KUBECONFIG=$OUT/kubeconfig"
  echo "KUBECTL=$OUT/kubectl"
  echo "CLOUD_CONFIG=$OUT/cloud.conf"
  [ -n "${KEYSTONE_AUTH_URL:-}" ] && echo "CLOUD_CONFIG_KEYSTONE=$OUT/cloud-keystone.conf"
  grep -v '^#' "$CLAB/cinder.env"
} > "$OUT/env"
log "READY: source $OUT/env"
