#!/bin/bash
# Stops the glance-api that start.sh started: SIGTERM to the PID in the pid file (the parent stops its
# worker), SIGKILL to it and its recorded children if they linger. Touches no other process.
set -uo pipefail
BASE="${GCN_GLANCE_BASE:-/tmp/gcn-bench-glance}"
PIDFILE="$BASE/glance-api.pid"
[ -f "$PIDFILE" ] || exit 0
PID=$(cat "$PIDFILE")
if ! kill -0 "$PID" 2>/dev/null; then rm -f "$PIDFILE"; exit 0; fi
CHILDREN=$(pgrep -P "$PID" || true)
kill -TERM "$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
for c in $CHILDREN; do
  for _ in $(seq 1 50); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$c" 2>/dev/null && kill -KILL "$c" 2>/dev/null
done
rm -f "$PIDFILE"
echo "stop.sh: stopped pid $PID${CHILDREN:+ (children: $(echo $CHILDREN))}" >&2
