#!/usr/bin/env bash
# local-kube.sh - a real Kubernetes control plane on 127.0.0.1 only: etcd,
# kube-apiserver and kube-controller-manager (PV binder, expander, protection
# controllers) built from the Go module proxy at pinned versions
# (hack/build-kube.sh, cached per version), and external-snapshotter's
# snapshot-controller with the snapshot CRDs (hack/local-snapshot.sh). No
# kubelet, scheduler or runtime:
# Pods never run. Idempotent: re-running only starts what is not running.
# Writes $LOCAL_OUT/kubeconfig (admin). Stop: local-kube-down.sh
#
#   etcd            127.0.0.1:2379 (peer 127.0.0.1:2380)
#   kube-apiserver  https://127.0.0.1:6443
set -euo pipefail
LOG_TAG=local-kube
source "$(dirname "$0")/lib.sh"

KLAB=${KUBE_LAB:-/tmp/cinder-provisioner/kube}
APISERVER_PORT=${APISERVER_PORT:-6443}
WAIT=${KUBE_WAIT:-120}
mkdir -p "$KLAB"/{run,log,pki,etcd} "$OUT"

command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
bins=$(bash "$(dirname "$0")/build-kube.sh")
KUBE_BIN=${bins%%:*}
ETCD_BIN=${bins##*:}
ln -sf "$KUBE_BIN/kubectl" "$OUT/kubectl"

# ------------------------------------------------------------ credentials
PKI=$KLAB/pki
if [ ! -f "$PKI/serving.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cinder-provisioner-local-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$PKI/serving.key" -out "$PKI/serving.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc\n' > "$PKI/san.ext"
  openssl x509 -req -in "$PKI/serving.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/san.ext" -out "$PKI/serving.crt" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)" > "$PKI/tokens.csv"
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
  log "generated CA, serving certificate, service-account key and admin token"
fi
TOKEN=$(cut -d, -f1 "$PKI/tokens.csv")

write_kubeconfig() { # file
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
KC
  chmod 600 "$1"
}
write_kubeconfig "$KLAB/kubeconfig"

start() { # name exe args...   (pid in run/NAME.pid, output in log/NAME.log)
  local name=$1; shift
  if running "$KLAB/run/$name.pid"; then log "$name already running (pid $(cat "$KLAB/run/$name.pid"))"; return; fi
  # close_fds: no inherited lock stays held by the daemon; the subshell
  # execs setsid, which execs the daemon: $! is the daemon's PID
  ( close_fds; exec setsid "$@" ) > "$KLAB/log/$name.log" 2>&1 < /dev/null &
  echo $! > "$KLAB/run/$name.pid"
  log "started $name (pid $!)"
}

# ------------------------------------------------------------ etcd
start etcd "$ETCD_BIN/etcd" --name local --data-dir "$KLAB/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster local=http://127.0.0.1:2380 --log-level warn \
  --quota-backend-bytes 2147483648
wait_for 30 etcd curl -sf http://127.0.0.1:2379/health || die "etcd not healthy; see $KLAB/log/etcd.log"

# ------------------------------------------------------------ kube-apiserver
start kube-apiserver "$KUBE_BIN/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
  --endpoint-reconciler-type none \
  --tls-cert-file "$PKI/serving.crt" --tls-private-key-file "$PKI/serving.key" \
  --client-ca-file "$PKI/ca.crt" \
  --token-auth-file "$PKI/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --enable-priority-and-fairness=false --profiling=false --v=1
# Kubernetes >= 1.37 refuses a loopback advertise address for the endpoint
# reconciler; nothing here needs the kubernetes Service endpoints, so: none.
ready() {
  running "$KLAB/run/kube-apiserver.pid" || die "kube-apiserver exited: $(tail -1 "$KLAB/log/kube-apiserver.log")"
  curl -sf --cacert "$PKI/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$APISERVER_PORT/readyz"
}
wait_for "$WAIT" kube-apiserver ready || die "kube-apiserver not ready after ${WAIT}s; see $KLAB/log/kube-apiserver.log"
log "kube-apiserver ready"

# ------------------------------------------------------------ kube-controller-manager
# the PV binder sets volume.kubernetes.io/storage-provisioner on claims: without
# it the provisioner library never sees a claim as its own
start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
  --kubeconfig "$KLAB/kubeconfig" --secure-port 0 --leader-elect=false \
  --controllers persistentvolume-binder-controller,persistentvolume-expander-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --pvclaimbinder-sync-period 2s --v=1
sleep 0.5
running "$KLAB/run/kube-controller-manager.pid" || die "kube-controller-manager exited; see $KLAB/log/kube-controller-manager.log"

# ------------------------------------------------------------ snapshots
# external-snapshotter's snapshot-controller and CRDs (LOCAL_SNAPSHOTS=0: not)
if [ "${LOCAL_SNAPSHOTS:-1}" != 0 ]; then
  KUBE_LAB=$KLAB bash "$(dirname "$0")/local-snapshot.sh"
fi

cp "$KLAB/kubeconfig" "$OUT/kubeconfig"
log "READY: https://127.0.0.1:$APISERVER_PORT (kubeconfig $OUT/kubeconfig, kubectl $OUT/kubectl)"
