#!/bin/bash
# e2e harness, step 2: start the real Keystone (v3, 127.0.0.1:$E2E_KEYSTONE_PORT,
# default 15000) and the real glance-api (127.0.0.1:$E2E_GLANCE_PORT, default
# 19393, keystone auth) in the background and wait until both work; seed
# Keystone's users/projects/roles/catalog; write $E2E_BASE/env.
# Runs setup.sh first (idempotent; installs packages only if missing).
# If a service is already running from a previous start.sh it is kept.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
T0=${EPOCHREALTIME/./}
elapsed() { local us=$(( ${EPOCHREALTIME/./} - T0 )); printf '%d.%d s' $((us / 1000000)) $((us / 100000 % 10)); }

"$E2E_DIR/setup.sh"

# On any failure after this point, stop both services (a failed start leaves
# nothing running; logs stay in $LOG_DIR).
STARTED_OK=
trap '[ -n "$STARTED_OK" ] || { echo "start.sh: failed; stopping the services (logs in $LOG_DIR)" >&2; "$E2E_DIR/stop.sh" >&2; }' EXIT

port_busy() { curl -s -o /dev/null --max-time 2 "http://$HOST:$1/"; }

# wait_http NAME PIDFILE URL SECONDS LOG: wait for a 200 from URL while the
# process is alive.
wait_http() {
  local name=$1 pidfile=$2 url=$3 secs=$4 logf=$5 code i pid
  pid=$(cat "$pidfile")
  for ((i = 0; i < secs * 5; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      tail -30 "$logf" >&2 || true
      die "$name exited during start; see $logf and $LOG_DIR/"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.2
  done
  tail -30 "$logf" >&2 || true
  die "$name did not answer 200 on $url within $secs s (pid $pid still running; stop.sh stops it)"
}

# ----------------------------- Keystone -------------------------------------
# uWSGI (Debian's uwsgi-core + python3 plugin, as Debian's own keystone
# service uses) serving /usr/bin/keystone-wsgi-public: a master and ONE
# worker process with ONE thread, on purpose:
#  * threads deadlock: oslo.log 5.0.1 (Debian 12) sees eventlet imported and
#    swaps logging's locks for eventlet green locks (oslo.log bug 1983863);
#    two native threads logging at once (every password auth logs a warning)
#    then hang the worker for good;
#  * one process keeps keystone's in-process cache (keystone.conf [cache])
#    coherent: it invalidates its own entries on every write.
# --http-socket answers HTTP/1.1 but closes the connection after every
# response without saying so: keep-alive clients (python-requests in
# keystonemiddleware/keystoneauth) then fail with ConnectionError when they
# reuse the socket.  Hence "Connection: close" on every response; it also
# keeps a keep-alive client from holding the single worker.
KS_STARTED=
if pid_alive "$KEYSTONE_PIDFILE" "$KS_DIR"; then
  log "keystone already running, pid $(cat "$KEYSTONE_PIDFILE")"
else
  port_busy "$KEYSTONE_PORT" && die "something already answers on port $KEYSTONE_PORT (not ours: no live pid file)"
  cd "$KS_DIR"
  : > "$LOG_DIR/keystone.stdout"
  setsid "${CLEAN_ENV[@]}" OS_KEYSTONE_CONFIG_DIR="$KS_DIR" OS_KEYSTONE_CONFIG_FILES=keystone.conf \
    /usr/bin/uwsgi_python3 \
      --http-socket "$HOST:$KEYSTONE_PORT" --add-header 'Connection: close' \
      --wsgi-file /usr/bin/keystone-wsgi-public --need-app \
      --master --processes 1 --enable-threads --die-on-term --no-orphans \
      --buffer-size 65535 --listen 100 --harakiri 120 --procname-prefix gcn-e2e- \
      >>"$LOG_DIR/keystone.stdout" 2>&1 < /dev/null &
  echo $! > "$KEYSTONE_PIDFILE"
  KS_STARTED=1
fi

# ----------------------------- Glance ---------------------------------------
# Started at the same time as keystone (its keystonemiddleware only talks to
# keystone on the first authenticated request).  glance-api's own eventlet
# server: a parent + workers=1 forked child.
GL_STARTED=
if pid_alive "$GLANCE_PIDFILE" "$GL_DIR"; then
  log "glance-api already running, pid $(cat "$GLANCE_PIDFILE")"
else
  port_busy "$GLANCE_PORT" && die "something already answers on port $GLANCE_PORT (not ours: no live pid file)"
  cd "$GL_DIR"    # never start from a dir containing a 'cmd' package etc.
  : > "$LOG_DIR/glance-api.stdout"
  setsid "${CLEAN_ENV[@]}" $PY /usr/bin/glance-api \
      --config-file "$GL_DIR/glance-api.conf" --config-dir "$GL_DIR/conf.d" \
      >>"$LOG_DIR/glance-api.stdout" 2>&1 < /dev/null &
  echo $! > "$GLANCE_PIDFILE"
  GL_STARTED=1
fi
cd "$BASE"

if [ -n "$KS_STARTED" ]; then
  wait_http keystone "$KEYSTONE_PIDFILE" "$KEYSTONE_URL" 120 "$LOG_DIR/keystone.stdout"
  log "keystone up on $KEYSTONE_URL, pid $(cat "$KEYSTONE_PIDFILE") ($(elapsed))"
fi

# users, projects, roles, image service/endpoints (idempotent)
clean_env KEYSTONE_URL="$KEYSTONE_URL" GLANCE_URL="$GLANCE_URL" REGION="$REGION" DOMAIN="$DOMAIN" \
  ADMIN_USER="$ADMIN_USER" ADMIN_PASSWORD="$ADMIN_PASSWORD" ADMIN_PROJECT="$ADMIN_PROJECT" \
  SERVICE_USER="$SERVICE_USER" SERVICE_PASSWORD="$SERVICE_PASSWORD" SERVICE_PROJECT="$SERVICE_PROJECT" \
  DEMO_USER="$DEMO_USER" DEMO_PASSWORD="$DEMO_PASSWORD" DEMO_PROJECT="$DEMO_PROJECT" \
  GLANCE_USER="$GLANCE_USER" GLANCE_PASSWORD="$GLANCE_PASSWORD" \
  $PY "$E2E_DIR/keystone_seed.py" || die "seeding keystone failed (see $LOG_DIR/keystone.log)"

if [ -n "$GL_STARTED" ]; then
  wait_http glance-api "$GLANCE_PIDFILE" "$GLANCE_URL/versions" 120 "$LOG_DIR/glance-api.stdout"
  log "glance-api up on $GLANCE_URL, pid $(cat "$GLANCE_PIDFILE") ($(elapsed))"
fi

# ----------------------------- env file -------------------------------------
umask 077
{
  echo "# written by $E2E_DIR/start.sh; shell-sourceable (set -a; . $BASE/env; set +a)"
  for kv in E2E_BASE="$BASE" \
      KEYSTONE_URL="$KEYSTONE_URL" KEYSTONE_ROOT_URL="$KEYSTONE_ROOT_URL" GLANCE_URL="$GLANCE_URL" \
      REGION="$REGION" DOMAIN="$DOMAIN" DOMAIN_ID=default \
      USER_DOMAIN_NAME="$DOMAIN" PROJECT_DOMAIN_NAME="$DOMAIN" \
      ADMIN_USER="$ADMIN_USER" ADMIN_PASSWORD="$ADMIN_PASSWORD" ADMIN_PROJECT="$ADMIN_PROJECT" \
      SERVICE_USER="$SERVICE_USER" SERVICE_PASSWORD="$SERVICE_PASSWORD" SERVICE_PROJECT="$SERVICE_PROJECT" \
      DEMO_USER="$DEMO_USER" DEMO_PASSWORD="$DEMO_PASSWORD" DEMO_PROJECT="$DEMO_PROJECT" \
      GLANCE_SERVICE_USER="$GLANCE_USER" GLANCE_SERVICE_PASSWORD="$GLANCE_PASSWORD" \
      KEYSTONE_PID="$(cat "$KEYSTONE_PIDFILE")" GLANCE_PID="$(cat "$GLANCE_PIDFILE")"; do
    printf '%s=%q\n' "${kv%%=*}" "${kv#*=}"
  done
} > "$BASE/env.tmp"
mv "$BASE/env.tmp" "$BASE/env"

# ----------------------------- end-to-end check -----------------------------
# A real token through glance's keystonemiddleware: proves the service user,
# the catalog and token validation work, not just that the ports are open.
TOKEN=$("$E2E_DIR/token.sh" "$DEMO_USER" "$DEMO_PASSWORD" "$DEMO_PROJECT") || die "no token for $DEMO_USER"
code=$(curl -s -o "$BASE/run/check.out" -w '%{http_code}' --max-time 30 \
       -H "X-Auth-Token: $TOKEN" "$GLANCE_URL/v2/images?limit=1" || true)
[ "$code" = 200 ] || { cat "$BASE/run/check.out" >&2; tail -20 "$LOG_DIR/glance-api.log" >&2;
                       die "GET /v2/images with a keystone token answered $code"; }
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "X-Auth-Token: not-a-token" \
       "$GLANCE_URL/v2/images?limit=1" || true)
[ "$code" = 401 ] || die "GET /v2/images with a bogus token answered $code, expected 401"

STARTED_OK=1
log "ready in $(elapsed): keystone $KEYSTONE_URL (pid $(cat "$KEYSTONE_PIDFILE")), glance $GLANCE_URL (pid $(cat "$GLANCE_PIDFILE")); env in $BASE/env"
