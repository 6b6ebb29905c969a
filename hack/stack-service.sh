#!/usr/bin/env bash
# stack-service.sh stop|start NAME - inject an outage into the local stack:
# stop one service by the PID in its pidfile (SIGKILL, its child processes
# too: a crash, as an outage looks to a client), or start it again. NAME:
#   cinder-api, cinder-scheduler, cinder-volume, tgtd: started again with the
#     command hack/local-cinder.sh uses, then waited for;
#   rabbitmq, keystone: started again by re-running hack/local-cinder.sh,
#     which starts what is not running and waits until Cinder answers;
#   kube-apiserver: started again by re-running hack/local-kube.sh;
#   ceph-mon, ceph-osd, ceph-mgr: started again by re-running hack/local-ceph.sh,
#     which starts what is not running and waits until the OSD is up.
set -euo pipefail
LOG_TAG=stack-service
source "$(dirname "$0")/lib.sh"
LAB=${CINDER_LAB:-/tmp/cinder-provisioner/cinder}
KLAB=${KUBE_LAB:-/tmp/cinder-provisioner/kube}
CEPH_LAB=${CEPH_LAB:-$(dirname "$LAB")/ceph}
HACK=$(cd "$(dirname "$0")" && pwd)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
action=${1:-} name=${2:-}
pidfile=$LAB/run/$name.pid
extra=() # more pidfiles of the same service
rerun=""  # the script that starts it again

case "$name" in
  cinder-api|cinder-scheduler|cinder-volume) cmd=(/usr/bin/$name --config-file "$LAB/etc/cinder.conf") ;;
  tgtd) cmd=(/usr/sbin/tgtd -f --iscsi portal=127.0.0.1:3260) ;;
  rabbitmq) extra=("$LAB/run/rabbitmq-beam.pid"); rerun=$HACK/local-cinder.sh ;;
  keystone) rerun=$HACK/local-cinder.sh ;;
  kube-apiserver) pidfile=$KLAB/run/kube-apiserver.pid; rerun=$HACK/local-kube.sh ;;
  ceph-mon|ceph-osd|ceph-mgr) pidfile=$CEPH_LAB/run/$name.pid; rerun=$HACK/local-ceph.sh ;;
  *) die "usage: $0 stop|start cinder-api|cinder-scheduler|cinder-volume|tgtd|rabbitmq|keystone|kube-apiserver|ceph-mon|ceph-osd|ceph-mgr" ;;
esac

case "$action" in
  stop)
    running "$pidfile" || die "$name is not running"
    pid=$(cat "$pidfile")
    for f in "${extra[@]}"; do [ -f "$f" ] && pid="$pid $(cat "$f")"; done
    # its worker processes (cinder-api forks osapi_volume_workers) go too
    children=$(for p in $pid; do ps -o pid= --ppid "$p" || true; done)
    kill -KILL $pid $children 2>/dev/null || true
    for p in $pid $children; do
      for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
      alive "$p" && die "$name (pid $p) survived SIGKILL"
    done
    rm -f "$pidfile" "${extra[@]}"
    log "killed $name (pid $pid)"
    ;;
  start)
    running "$pidfile" && { log "$name already running (pid $(cat "$pidfile"))"; exit 0; }
    if [ -n "$rerun" ]; then
      log "starting $name again: $(basename "$rerun") starts what is not running"
      out=$(mktemp)
      CEPH_LAB=$CEPH_LAB bash "$rerun" > "$out" 2>&1 || { tail -20 "$out" >&2; rm -f "$out"; die "$(basename "$rerun") failed"; }
      rm -f "$out"
      running "$pidfile" || die "$name did not start"
      log "$name answers"
      exit 0
    fi
    export PYTHONPATH=$LAB/lib
    start-stop-daemon --start --background --make-pidfile --pidfile "$pidfile" \
      --output "$LAB/log/$name.out" --exec "${cmd[0]}" -- "${cmd[@]:1}"
    log "started $name (pid $(cat "$pidfile"))"
    # local-cinder.sh restarts a cinder-volume whose "PID conf-sha" differs
    [ "$name" = cinder-volume ] && echo "$(cat "$pidfile") $(sha256sum < "$LAB/etc/cinder.conf" | cut -c1-64)" > "$LAB/run/cinder-volume.conf"
    case "$name" in
      cinder-api)
        set -a; source "$LAB/cinder.env"; set +a
        wait_for 60 cinder-api curl -sf -H "X-Auth-Token: admin:$CINDER_PROJECT_ID" "$CINDER_ENDPOINT/types" \
          || die "cinder-api did not answer within 60 s; see $LAB/log/"
        ;;
      tgtd)
        wait_for 30 tgtd tgtadm --lld iscsi --op show --mode target || die "tgtd did not answer within 30 s"
        # the second portal of the tgtfile-mp backend (local-cinder.sh)
        if grep -q '^enabled_backends = .*tgtfile-mp' "$LAB/etc/cinder.conf" 2>/dev/null; then
          tgtadm --lld iscsi --op new --mode portal --param portal=127.0.0.2:3260
        fi
        ;;
      *)
        # scheduler and volume report to the database; give them the time
        # local-cinder.sh gives them to report in
        wait_for 60 "$name" bash -c "ps -p \$(cat '$pidfile') >/dev/null"
        ;;
    esac
    log "$name answers"
    ;;
  *) die "usage: $0 stop|start NAME" ;;
esac
