# hack/lib.sh - shared helpers for the local-stack scripts; source it.
# Progress lines carry seconds elapsed since the calling script started.

HACK_T0=${HACK_T0:-$(date +%s%N)}
export HACK_T0
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${LOCAL_OUT:-$REPO_ROOT/_output/local}
# binaries built from the module proxy survive clones: keep them per user
CACHE=${CINDER_PROVISIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cinder-provisioner}

log() {
  local d=$(( ($(date +%s%N) - HACK_T0) / 100000000 ))
  printf '[%s %4d.%ds] %s\n' "${LOG_TAG:-hack}" $((d / 10)) $((d % 10)) "$*"
}
die() { log "ERROR: $*" >&2; exit 1; }

# alive PID: the process exists and is not a zombie
alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
running() { [ -f "$1" ] && alive "$(cat "$1")"; }

# stop_pidfile FILE NAME [SECONDS]: TERM the PID in FILE, KILL after SECONDS.
stop_pidfile() {
  local f=$1 name=$2 t=${3:-20} pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 $((t * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; log "$name needed SIGKILL"; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds
# (its stdout is discarded; CMD should be quiet on stderr, e.g. curl -sf).
wait_for() {
  local t=$1 what=$2 i; shift 2
  for i in $(seq 1 $((t * 5))); do "$@" >/dev/null && return 0; sleep 0.2; done
  return 1
}
