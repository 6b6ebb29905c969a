#!/usr/bin/env bash
# cinder-service.sh stop|start NAME - inject an outage into the local Cinder
# (hack/local-cinder.sh): stop one of its services by the PID in its pidfile
# (SIGKILL: a crash, as an outage looks to a client), or start it again with
# the command local-cinder.sh uses. NAME: cinder-api, cinder-scheduler,
# cinder-volume, tgtd. Starting waits until the service answers.
set -euo pipefail
LOG_TAG=cinder-service
source "$(dirname "$0")/lib.sh"
LAB=${CINDER_LAB:-/tmp/cinder-provisioner/cinder}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
action=${1:-} name=${2:-}
pidfile=$LAB/run/$name.pid

case "$name" in
  cinder-api|cinder-scheduler|cinder-volume) cmd=(/usr/bin/$name --config-file "$LAB/etc/cinder.conf") ;;
  tgtd) cmd=(/usr/sbin/tgtd -f --iscsi portal=127.0.0.1:3260) ;;
  *) die "usage: $0 stop|start cinder-api|cinder-scheduler|cinder-volume|tgtd" ;;
esac

case "$action" in
  stop)
    running "$pidfile" || die "$name is not running"
    pid=$(cat "$pidfile")
    # its worker processes (cinder-api forks osapi_volume_workers) go too
    children=$(ps -o pid= --ppid "$pid" || true)
    kill -KILL "$pid" $children 2>/dev/null || true
    for p in $pid $children; do
      for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
      alive "$p" && die "$name (pid $p) survived SIGKILL"
    done
    rm -f "$pidfile"
    log "killed $name (pid $pid)"
    ;;
  start)
    running "$pidfile" && { log "$name already running (pid $(cat "$pidfile"))"; exit 0; }
    export PYTHONPATH=$LAB/lib
    start-stop-daemon --start --background --make-pidfile --pidfile "$pidfile" \
      --output "$LAB/log/$name.out" --exec "${cmd[0]}" -- "${cmd[@]:1}"
    log "started $name (pid $(cat "$pidfile"))"
    case "$name" in
      cinder-api)
        set -a; source "$LAB/cinder.env"; set +a
        wait_for 60 cinder-api curl -sf -H "X-Auth-Token: admin:$CINDER_PROJECT_ID" "$CINDER_ENDPOINT/types" \
          || die "cinder-api did not answer within 60 s; see $LAB/log/"
        ;;
      tgtd)
        wait_for 30 tgtd tgtadm --lld iscsi --op show --mode target || die "tgtd did not answer within 30 s"
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
