#!/bin/bash
# e2e harness, step 3: stop glance-api and keystone started by start.sh.
# Only the processes recorded in $E2E_BASE/run/*.pid (and the children they
# had at that moment) are signalled: SIGTERM, wait up to 10 s, then SIGKILL.
# State (DBs, keys, images, logs, env) is kept; setup.sh --reset wipes it.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

stop_one() {  # stop_one NAME PIDFILE DIR
  local name=$1 pidfile=$2 dir=$3 pid children c i
  if [ ! -f "$pidfile" ]; then log "$name: no pid file, nothing to stop"; return 0; fi
  pid=$(cat "$pidfile")
  if ! pid_alive "$pidfile" "$dir"; then
    log "$name: pid $pid not running (or not ours); removing $pidfile"; rm -f "$pidfile"; return 0
  fi
  children=$(children_of "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: pid $pid still alive after 10 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # children (uwsgi worker, glance-api worker) normally exit with the parent
  for c in $children; do
    for ((i = 0; i < 50; i++)); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$c" 2>/dev/null && [ "$(readlink "/proc/$c/cwd" 2>/dev/null)" = "$(readlink -f "$dir")" ]; then
      kill -KILL "$c" 2>/dev/null || true
    fi
  done
  rm -f "$pidfile"
  log "$name: stopped pid $pid${children:+ (children: ${children//$'\n'/ })}"
}

stop_one glance-api "$GLANCE_PIDFILE" "$GL_DIR"
stop_one keystone "$KEYSTONE_PIDFILE" "$KS_DIR"
exit 0
