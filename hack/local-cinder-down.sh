#!/usr/bin/env bash
# local-cinder-down.sh - stop what local-cinder.sh started, by the PIDs in
# $CINDER_LAB/run/*.pid and nothing else.  --purge: also delete all state (DB,
# queues, volumes, logs, configs) so the next local-cinder.sh starts from scratch.
set -uo pipefail
LAB=${CINDER_LAB:-/tmp/cinder-provisioner/cinder}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# alive = exists and is not a zombie (pid 1 here reaps orphans only every ~2 s)
alive() { [ -r /proc/$1/status ] && ! grep -q '^State:[[:space:]]*Z' /proc/$1/status 2>/dev/null; }

stop() { # name [timeout-seconds]: TERM the pid in run/NAME.pid, KILL after timeout
  local f=$LAB/run/$1.pid
  [ -f $f ] || return 0
  local pid; pid=$(cat $f)
  if alive $pid; then
    local t0=$(date +%s%N) i
    kill -TERM $pid
    for i in $(seq 1 $(( ${2:-20} * 10 ))); do alive $pid || break; sleep 0.1; done
    alive $pid && { kill -KILL $pid; echo "  ($1 needed SIGKILL)"; }
    echo "stopped $1 (pid $pid) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  rm -f $f
}

# privsep-helper daemons started by cinder-volume (children of pid 1 once
# started): find them by our own config path, end them by PID
privsep_pids() {
  for p in /proc/[0-9]*; do
    tr '\0' ' ' < $p/cmdline 2>/dev/null | grep -q "^/usr/bin/python3 /usr/bin/privsep-helper --config-file $LAB/etc/cinder.conf " && echo ${p#/proc/}
  done
}

stop cinder-api 5 & stop cinder-api-keystone 5 & stop cinder-volume 5 & stop cinder-scheduler 5 & stop keystone 5 & wait
for p in $(privsep_pids); do kill $p 2>/dev/null && echo "stopped privsep-helper (pid $p)"; done
# tgtd did not exit on SIGTERM here (needed SIGKILL after 10 s); ask it to shut down instead
[ -f $LAB/run/tgtd.pid ] && tgtadm --lld iscsi --op delete --mode system >/dev/null 2>&1
stop tgtd 10
stop mariadbd 30
stop rabbitmq 30            # wrapper script; TERM makes it stop the beam node
if [ -f $LAB/run/rabbitmq-beam.pid ]; then
  pid=$(cat $LAB/run/rabbitmq-beam.pid)
  if alive $pid; then
    kill $pid; for i in $(seq 1 300); do alive $pid || break; sleep 0.1; done
    alive $pid && kill -9 $pid
    echo "stopped rabbitmq beam (pid $pid)"
  fi
  rm -f $LAB/run/rabbitmq-beam.pid
fi
stop epmd 5

# NFS stand-in bind mount
if [ -d $LAB/mnt ]; then
  for m in $LAB/mnt/*; do mountpoint -q "$m" 2>/dev/null && umount "$m" && echo "unmounted $m"; done
fi

if [ "${1:-}" = "--purge" ]; then
  rm -rf $LAB/{etc,lib,run,log,state,lock,mysql,rabbitmq,nfs-export,mnt,tgt-volumes,tgt-volumes-mp,keystone} $LAB/cinder.env
  rm -f /var/lib/cinder/volumes/volume-*      # tgt persistence files written for our volumes
  echo "purged state under $LAB"
fi
