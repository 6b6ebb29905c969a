#!/usr/bin/env bash
# demo.sh - `make demo`: provision real Cinder volumes for real PVCs on the
# local stack, show what came out, then show a deletion. Re-runnable: it
# reuses the stack and the provisioner when they already run and starts the
# demo's claims afresh. `make demo-down` stops everything it started.
set -euo pipefail
LOG_TAG=demo
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/demo-rbd.sh"
cd "$REPO_ROOT"

DEMO=${DEMO_LAB:-/tmp/cinder-provisioner/demo}
mkdir -p "$DEMO"
step_log=""
trap 'rc=$?; [ $rc = 0 ] || log "FAILED (exit $rc)${step_log:+; log: $step_log}"' EXIT

log "1/7 building the provisioner"
step_log=$DEMO/build.log
: > "$step_log"
progress_run "1/7 building the provisioner" "$step_log" make -s build || die "build failed; see $step_log"

log "2/7 bringing up the local stack (Cinder + Kubernetes on 127.0.0.1; the first run installs Cinder and builds Kubernetes: 10 to 20 min)"
step_log=$DEMO/local-up.log
: > "$step_log"
# the ticker repeats local-up.sh's latest line (which package is being
# installed, which Kubernetes package compiled) at least every 15 s
progress_run "2/7 local stack" "$step_log" bash hack/local-up.sh || die "local stack failed; see $step_log"
set -a; source "$OUT/env"; set +a
K() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
cinder() { curl -sf -H "X-Auth-Token: $CINDER_TOKEN" -H "OpenStack-API-Version: volume 3.54" "$CINDER_ENDPOINT/$1"; }

log "3/7 starting cinder-provisioner (log: $DEMO/provisioner.log)"
step_log=$DEMO/provisioner.log
K create namespace cinder-provisioner --dry-run=client -o yaml | K apply -f - >/dev/null
if running "$DEMO/provisioner.pid"; then
  log "cinder-provisioner already running (pid $(cat "$DEMO/provisioner.pid"))"
else
  # close_fds: the provisioner outlives this script and must not hold a lock
  # the caller took (flock LOCK make demo); $! stays its PID through the execs
  ( close_fds; exec setsid _output/bin/cinder-provisioner --kubeconfig "$KUBECONFIG" --cloud-config "$CLOUD_CONFIG" \
    --cluster-id local-demo --secret-namespace cinder-provisioner \
    --iscsi-initiator-name iqn.2026-11.org.cinder-provisioner:demo \
    --leader-elect=false --metrics-address 127.0.0.1:18080 -v 2 ) \
    >> "$DEMO/provisioner.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/provisioner.pid"
  wait_for 30 "provisioner /healthz" curl -sf http://127.0.0.1:18080/healthz \
    || die "cinder-provisioner did not become healthy; see $DEMO/provisioner.log"
  log "cinder-provisioner started (pid $(cat "$DEMO/provisioner.pid")), metrics on http://127.0.0.1:18080/metrics"
fi

log "4/7 applying examples/local (StorageClasses and claims, one of them raw block)"
step_log=$DEMO/apply.log
if K get namespace cinder-demo >/dev/null 2>&1; then
  log "removing the previous run's claims first"
  progress_run "removing namespace cinder-demo" "$step_log" K delete namespace cinder-demo --wait=true --timeout=120s \
    || die "could not remove the previous demo namespace; see $step_log"
  no_demo_pvs() { [ -z "$(K get pv -o jsonpath='{range .items[?(@.spec.claimRef.namespace=="cinder-demo")]}{.metadata.name}{"\n"}{end}')" ]; }
  wait_for 120 "the previous run's PVs to be deleted" no_demo_pvs || true
fi
K apply -f examples/local/storageclasses.yaml -f examples/local/claims.yaml >> "$step_log" 2>&1 || die "kubectl apply failed; see $step_log"
# and one claim on Cinder's rbd backend (the stack's Ceph), with what a Ceph admin deploys for ceph-csi
demo_rbd_apply >> "$step_log" 2>&1 || die "kubectl apply (RBD) failed; see $step_log"
t0=$(date +%s%N)

log "5/7 waiting for the iSCSI and RBD claims to be Bound"
step_log=$DEMO/provisioner.log
bound() { [ "$(K -n cinder-demo get pvc "$1" -o jsonpath='{.status.phase}')" = Bound ]; }
for c in web-data db-data raw-block ceph-data; do
  wait_for 120 "claim $c" bound $c \
    || die "claim $c not Bound after 120 s: $(K -n cinder-demo describe pvc $c | tail -5)"
done
log "all iSCSI and RBD claims Bound $(( ($(date +%s%N) - t0) / 1000000 )) ms after they were created"
refused() { K -n cinder-demo get events --field-selector involvedObject.name=on-nfs,reason=UnsupportedTransport -o name | grep -q .; }
wait_for 60 "nfs refusal" refused \
  || die "no UnsupportedTransport event on claim on-nfs"

echo
refusals=()
printf '%-10s %-6s %-41s %-37s %-7s %-9s %-44s %s\n' CLAIM SIZE PV "CINDER VOLUME" STATUS TRANSPORT TARGET "iSCSI LOGIN / librbd I/O (PV fields only)"
for c in web-data db-data raw-block ceph-data on-nfs; do
  pv=$(K -n cinder-demo get pvc $c -o jsonpath='{.spec.volumeName}')
  if [ -z "$pv" ]; then
    reason=$(K -n cinder-demo get events --field-selector involvedObject.name=$c,type=Warning \
      -o jsonpath='{range .items[?(@.reason!="ProvisioningFailed")]}{.reason}{"\n"}{end}' | tail -1)
    msg=$(K -n cinder-demo get events --field-selector involvedObject.name=$c,reason=$reason -o jsonpath='{.items[-1:].message}')
    printf '%-10s %-6s %-41s %-37s %-7s %-9s %-44s %s\n' $c "-" "(refused: $reason)" "(created, then deleted)" "-" "-" "-" "-"
    refusals+=("$c: $reason: $msg")
    continue
  fi
  size=$(K get pv $pv -o jsonpath='{.spec.capacity.storage}')
  vol=$(K get pv $pv -o jsonpath='{.metadata.annotations.cinder\.openstack\.org/volume-id}')
  status=$(cinder volumes/$vol | python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["status"])')
  if [ -n "$(K get pv $pv -o jsonpath='{.spec.csi.volumeHandle}')" ]; then
    target="$(K get pv $pv -o jsonpath='{.spec.csi.volumeAttributes.pool}')/$(K get pv $pv -o jsonpath='{.spec.csi.volumeHandle}')"
    printf '%-10s %-6s %-41s %-37s %-7s %-9s %-44s %s\n' $c "$size" "$pv" "$vol" "$status" rbd "$target" "$(demo_rbd_read $pv)"
    continue
  fi
  portal=$(K get pv $pv -o jsonpath='{.spec.iscsi.targetPortal}')
  iqn=$(K get pv $pv -o jsonpath='{.spec.iscsi.iqn}')
  lun=$(K get pv $pv -o jsonpath='{.spec.iscsi.lun}')
  ini=$(K get pv $pv -o jsonpath='{.spec.iscsi.initiatorName}')
  sns=$(K get pv $pv -o jsonpath='{.spec.iscsi.secretRef.namespace}')
  sname=$(K get pv $pv -o jsonpath='{.spec.iscsi.secretRef.name}')
  user=$(K -n $sns get secret $sname -o jsonpath='{.data.node\.session\.auth\.username}' | base64 -d)
  pass=$(K -n $sns get secret $sname -o jsonpath='{.data.node\.session\.auth\.password}' | base64 -d)
  # the password goes through libiscsi's environment, never the command line
  if bytes=$(LIBISCSI_CHAP_PASSWORD=$pass iscsi-readcapacity16 -i "$ini" "iscsi://$user@$portal/$iqn/$lun" 2>/dev/null | sed -n 's/^Total size:\s*//p') && [ -n "$bytes" ]; then
    login="ok, read $((bytes / 1024 / 1024)) MiB LUN"
  else
    login="FAILED"
  fi
  printf '%-10s %-6s %-41s %-37s %-7s %-9s %-44s %s\n' $c "$size" "$pv" "$vol" "$status" iscsi "${portal} ...${iqn: -24}:$lun" "$login"
done
echo
for r in "${refusals[@]}"; do echo "  $r"; done
echo

log "6/7 snapshotting claim db-data and restoring it into claim db-restored (examples/local/snapshot.yaml)"
step_log=$DEMO/apply.log
if K get crd volumesnapshots.snapshot.storage.k8s.io >/dev/null 2>&1; then
  K apply -f examples/local/snapshot.yaml >> "$step_log" 2>&1 || die "kubectl apply failed; see $step_log"
  ready() { [ "$(K -n cinder-demo get volumesnapshot db-data-snap -o jsonpath='{.status.readyToUse}')" = true ]; }
  wait_for 120 "VolumeSnapshot db-data-snap readyToUse" ready \
    || die "VolumeSnapshot db-data-snap not ready: $(K -n cinder-demo describe volumesnapshot db-data-snap | tail -5)"
  content=$(K -n cinder-demo get volumesnapshot db-data-snap -o jsonpath='{.status.boundVolumeSnapshotContentName}')
  snap=$(K get volumesnapshotcontent "$content" -o jsonpath='{.status.snapshotHandle}')
  log "VolumeSnapshot db-data-snap is readyToUse: content $content, Cinder snapshot $snap ($(cinder snapshots/$snap | python3 -c 'import json,sys; s=json.load(sys.stdin)["snapshot"]; print(s["status"], str(s["size"]) + " GiB of volume", s["volume_id"])'))"
  wait_for 120 "claim db-restored" bound db-restored \
    || die "claim db-restored not Bound: $(K -n cinder-demo describe pvc db-restored | tail -5)"
  rvol=$(K get pv "$(K -n cinder-demo get pvc db-restored -o jsonpath='{.spec.volumeName}')" -o jsonpath='{.metadata.annotations.cinder\.openstack\.org/volume-id}')
  log "claim db-restored is Bound to Cinder volume $rvol, made from snapshot $(cinder volumes/$rvol | python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["snapshot_id"])')"
else
  log "skipped: the snapshot CRDs are not installed (LOCAL_SNAPSHOTS=0)"
fi

log "7/7 deleting claim web-data: its PV, export, CHAP Secret and Cinder volume go"
vol=$(K get pv "$(K -n cinder-demo get pvc web-data -o jsonpath='{.spec.volumeName}')" -o jsonpath='{.metadata.annotations.cinder\.openstack\.org/volume-id}')
K -n cinder-demo delete pvc web-data --wait=false >/dev/null
gone() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $CINDER_TOKEN" "$CINDER_ENDPOINT/volumes/$vol")" = 404 ]; }
wait_for 120 "volume $vol deleted" gone || die "Cinder volume $vol still exists; see $DEMO/provisioner.log"
log "Cinder volume $vol is gone (GET -> 404)"
log "DONE. Explore: source $OUT/env; \$KUBECTL get pvc -A; make demo-down stops everything"
