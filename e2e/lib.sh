# shellcheck shell=bash disable=SC2034,SC2209
# Shared settings of the e2e harness (sourced by setup.sh, start.sh, stop.sh,
# token.sh, smoke.sh).  Everything is overridable from the environment.
#
#   E2E_BASE            state dir (configs, DBs, keys, image store, logs, pids)   /tmp/gcn-e2e
#   E2E_KEYSTONE_PORT   Keystone v3 on 127.0.0.1                                  15000
#   E2E_GLANCE_PORT     glance-api on 127.0.0.1                                   19393
#   E2E_ADMIN_PASSWORD / E2E_SERVICE_PASSWORD / E2E_DEMO_PASSWORD / E2E_GLANCE_PASSWORD
#   E2E_DEBUG           true: debug logging in keystone and glance                false

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="${E2E_BASE:-/tmp/gcn-e2e}"
case "$BASE" in /*) ;; *) BASE="$PWD/$BASE" ;; esac
BASE="${BASE%/}"
HOST=127.0.0.1
KEYSTONE_PORT="${E2E_KEYSTONE_PORT:-15000}"
GLANCE_PORT="${E2E_GLANCE_PORT:-19393}"
KEYSTONE_ROOT_URL="http://$HOST:$KEYSTONE_PORT"
KEYSTONE_URL="$KEYSTONE_ROOT_URL/v3"                  # the v3 API: what OS_AUTH_URL / auth_url hold
GLANCE_URL="http://$HOST:$GLANCE_PORT"
DEBUG="${E2E_DEBUG:-false}"

DOMAIN=Default
REGION=RegionOne
ADMIN_USER=admin
ADMIN_PROJECT=admin
ADMIN_PASSWORD="${E2E_ADMIN_PASSWORD:-gcn-e2e-admin-pw}"
SERVICE_USER=gcn-service
SERVICE_PROJECT=service
SERVICE_PASSWORD="${E2E_SERVICE_PASSWORD:-gcn-e2e-service-pw}"
DEMO_USER=demo
DEMO_PROJECT=demo
DEMO_PASSWORD="${E2E_DEMO_PASSWORD:-gcn-e2e-demo-pw}"
# keystonemiddleware's own service user inside glance-api
GLANCE_USER=glance
GLANCE_PASSWORD="${E2E_GLANCE_PASSWORD:-gcn-e2e-glance-pw}"

# Debian's interpreter: the first python3 on PATH may be a pyenv one
# without the OpenStack libraries.
PY=/usr/bin/python3

KS_DIR="$BASE/keystone"
GL_DIR="$BASE/glance"
LOG_DIR="$BASE/log"
RUN_DIR="$BASE/run"
KEYSTONE_PIDFILE="$RUN_DIR/keystone.pid"
GLANCE_PIDFILE="$RUN_DIR/glance-api.pid"

# A clean environment for the OpenStack processes: no pyenv/virtualenv
# leaking in, no OS_* variables confusing the clients.  An argv prefix (env
# execs the command, so "setsid $CLEAN_ENV cmd &" keeps cmd's pid in $!).
# shellcheck disable=SC2207  # OS_* names never contain blanks
CLEAN_ENV=(env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV
           $(env | sed -n 's/^\(OS_[A-Za-z0-9_]*\)=.*/-u \1/p')
           PATH=/usr/sbin:/usr/bin:/sbin:/bin)
clean_env() { "${CLEAN_ENV[@]}" "$@"; }

# pid_alive PIDFILE DIR -> 0 if the recorded process runs AND is ours: its
# working directory is DIR (start.sh starts keystone in $KS_DIR and glance-api
# in $GL_DIR), so a stale pid file whose pid was reused by an unrelated
# process is never taken for ours (nor signalled by stop.sh).
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$2")" ]
}

children_of() {  # children_of PID: its direct children, from /proc (procps may be absent)
  local parent=$1 f st fields
  for f in /proc/[0-9]*/stat; do
    st=$(cat "$f" 2>/dev/null) || continue
    read -r -a fields <<< "${st##*) }"  # after "pid (comm) ": state ppid ...; comm may hold spaces
    [ "${fields[1]:-}" = "$parent" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
  done
  return 0
}

log() { echo "$(basename "$0"): $*"; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# missing_packages PKG...: prints those of the Debian packages not installed, one a line.
missing_packages() {
  local installed p
  installed=" $(dpkg-query -W -f='${Package}:${Status}\n' "$@" 2>/dev/null \
                 | sed -n 's/:install ok installed$//p' | tr '\n' ' ' || true)"
  for p in "$@"; do
    case "$installed" in *" $p "*) ;; *) echo "$p" ;; esac
  done
}

# apt_install LOGFILE PKG...: apt-get install without recommends, services kept from starting.
# Needs root. policy-rc.d keeps the packages (keystone on :5000, glance-api on :9292, nginx on :80)
# from starting as system services; removed again if we created it.  Lock::Timeout: wait for a
# concurrent apt/dpkg instead of failing; --force-unsafe-io: no fsync per file (throw-away machine).
apt_install() {
  local logfile=$1 ours=false t0
  shift
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $*"
  log "installing $*"
  t0=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    ours=true
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  mkdir -p "$(dirname "$logfile")"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-unsafe-io \
      install -y -qq --no-install-recommends "$@" > "$logfile" 2>&1 \
    || { tail -40 "$logfile" >&2; die "apt-get install failed (log: $logfile)"; }
  if $ours; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  log "apt-get took $(( $(date +%s) - t0 )) s"
}
