#!/bin/bash
# Starts glance-api in the background (own session) on 127.0.0.1:$GCN_GLANCE_PORT, parent PID in
# $GCN_GLANCE_BASE/glance-api.pid (its one forked child is the API worker), waits for GET /versions.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="${GCN_GLANCE_BASE:-/tmp/gcn-bench-glance}"
PORT="${GCN_GLANCE_PORT:-19292}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$BASE/glance-api.pid"

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "start.sh: already running, pid $(cat "$PIDFILE")" >&2
  exit 0
fi
"$HERE/setup.sh"
if curl -s -o /dev/null --max-time 2 "$URL/versions"; then
  echo "start.sh: something else already answers on $URL" >&2
  exit 1
fi
cd "$BASE"
export PYTHONPATH="$BASE/lib${PYTHONPATH:+:$PYTHONPATH}"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
setsid /usr/bin/python3 /usr/bin/glance-api --config-file "$BASE/glance-api.conf" --config-dir "$BASE/conf.d" \
  >>"$BASE/log/glance-api.stdout" 2>&1 </dev/null &
echo $! > "$PIDFILE"
PID=$!
for _ in $(seq 1 300); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "start.sh: glance-api exited during start; see $BASE/log/" >&2
    tail -20 "$BASE/log/glance-api.stdout" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/versions" || true)" = 200 ]; then
    echo "start.sh: glance-api up on $URL, pid $PID" >&2
    exit 0
  fi
  sleep 0.2
done
echo "start.sh: glance-api did not answer within 60 s" >&2
exit 1
