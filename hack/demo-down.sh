#!/usr/bin/env bash
# demo-down.sh - `make demo-down`: stop the demo's provisioner (by its PID),
# then the local stack.
set -uo pipefail
LOG_TAG=demo
source "$(dirname "$0")/lib.sh"
DEMO=${DEMO_LAB:-/tmp/cinder-provisioner/demo}
stop_pidfile "$DEMO/provisioner.pid" cinder-provisioner 20
bash "$(dirname "$0")/local-down.sh" "$@"
