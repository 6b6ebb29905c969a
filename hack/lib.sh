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

# close_fds: close every file descriptor above 2 of the current shell. Call
# it in the subshell that execs a daemon: a daemon must not inherit (and so
# hold for its whole life) a lock its caller took, such as
# `flock LOCK make demo` without -o, or local-up.sh's own lock.
close_fds() {
  local fd
  for fd in $(ls "/proc/$BASHPID/fd" 2>/dev/null); do
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

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

# ---------------------------------------------------------------- progress
# A step that can take more than 30 s says what it is doing at least every
# PROGRESS_EVERY seconds (default 15), on stderr, so that a cold first run
# never looks hung: "<what>: still running after 2m15s; last: <log line>".

# fmt_secs SECONDS: 75 -> 1m15s, 9 -> 9s
fmt_secs() {
  if [ "$1" -ge 60 ]; then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%ds' "$1"; fi
}

# last_line FILE: FILE's last non-blank line, without a "[tag  1.2s] " log
# prefix, cut to 160 characters (what a step's log says it is doing). A
# nested ticker's line ("X: still running after 1m05s; last: Y") becomes
# "X > Y".
last_line() {
  [ -s "$1" ] || return 0
  tail -c 8192 "$1" | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -1 | sed \
    -e 's/^\[[^]]*\] //' -e 's/: still running after [0-9ms]*; last: / > /g' \
    -e 's/: still running after [0-9ms]*$//' | cut -c1-160
}

# progress_start WHAT PID [FILE]: start a ticker, a background subshell that,
# while PID lives, logs WHAT, the time since the ticker started and FILE's
# last line every PROGRESS_EVERY seconds; it ends by itself when PID ends.
# Its PID is left in PROGRESS_PID, for progress_stop.
progress_start() {
  local what=$1 pid=$2 file=${3:-} every=${PROGRESS_EVERY:-15}
  local start n msg line
  start=$(date +%s)
  (
    trap - EXIT
    n=0
    while alive "$pid"; do
      sleep 1
      n=$((n + 1))
      [ $((n % every)) = 0 ] && alive "$pid" || continue
      msg="$what: still running after $(fmt_secs $(($(date +%s) - start)))"
      if [ -n "$file" ]; then line=$(last_line "$file"); [ -z "$line" ] || msg="$msg; last: $line"; fi
      log "$msg" >&2
    done
  ) &
  PROGRESS_PID=$!
}

# progress_stop [PID]: stop the ticker PID (default: the last one started), by
# its PID, and reap it.
progress_stop() {
  local pid=${1:-${PROGRESS_PID:-}}
  [ -n "$pid" ] || return 0
  # its sleep too, or that would hold our stdout a second longer
  kill "$pid" $(ps -o pid= --ppid "$pid" 2>/dev/null) 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$pid" != "${PROGRESS_PID:-}" ] || PROGRESS_PID=
}

# progress_run WHAT LOG CMD...: run CMD (a command or a function) with its
# stdout and stderr appended to LOG, under a ticker that shows LOG's last
# line; log how long it took; return CMD's exit status.
progress_run() {
  local what=$1 file=$2 pid rc=0 start
  shift 2
  start=$(date +%s)
  "$@" >> "$file" 2>&1 &
  pid=$!
  progress_start "$what" "$pid" "$file"
  wait "$pid" || rc=$?
  progress_stop
  [ "$(($(date +%s) - start))" -lt 5 ] || log "$what: $( [ $rc = 0 ] && echo done || echo "FAILED (exit $rc)" ) in $(fmt_secs $(($(date +%s) - start)))" >&2
  return $rc
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds
# (its stdout is discarded; CMD should be quiet on stderr, e.g. curl -sf);
# says on stderr that it is still waiting every PROGRESS_EVERY seconds.
wait_for() {
  local t=$1 what=$2 i start next e every=${PROGRESS_EVERY:-15}
  shift 2
  start=$(date +%s)
  next=$every
  for i in $(seq 1 $((t * 5))); do
    "$@" >/dev/null && return 0
    sleep 0.2
    e=$(($(date +%s) - start))
    if [ "$e" -ge "$next" ]; then
      log "still waiting for $what ($(fmt_secs "$e") of at most ${t}s)" >&2
      next=$((next + every))
    fi
  done
  return 1
}
