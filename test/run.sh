#!/usr/bin/env bash
# Runs every test file under Node (tsx) and under Deno, then prints one line: "N passed, N failed".
# Usage: test/run.sh [node|deno|all] [file...]
# Without files it runs every test/**/*.test.ts (test/unit, test/http, test/fleet, test/e2e: see test/README.md).
#
# A test file that needs more than npm packages says so in a comment among its first 30 lines:
#   // test-needs: e2e glanceclient
# (names: see need_missing below). A file whose needs this machine lacks is skipped, and named with
# the reason before the summary line; with TEST_REQUIRE_ALL=1 (test/all.sh, .ci/run) it fails instead.
set -uo pipefail
cd "$(dirname "$0")/.."

E2E_ENV="${E2E_BASE:-/tmp/gcn-e2e}/env"
# need_missing NAME: prints why the need is not met (nothing when it is).
need_missing() {
  case "$1" in
    e2e)  # the real Keystone and Glance of e2e/start.sh, answering on loopback
      if [ ! -f "$E2E_ENV" ]; then echo "Keystone and Glance not started ($E2E_ENV missing; run e2e/start.sh)"; return; fi
      command -v curl >/dev/null || { echo "curl missing"; return; }
      local urls; urls=$(set -a; . "$E2E_ENV" >/dev/null 2>&1; echo "$KEYSTONE_URL $GLANCE_URL/versions")
      for u in $urls; do
        curl -s -o /dev/null --max-time 5 "$u" || { echo "Keystone or Glance not answering ($u; run e2e/start.sh)"; return; }
      done ;;
    glanceclient) [ -x /usr/bin/glance ] || echo "python-glanceclient missing (Debian package python3-glanceclient)" ;;
    root) [ "$(id -u)" = 0 ] || echo "needs root (mounts a tmpfs)" ;;
    curl) command -v curl >/dev/null || echo "curl missing (Debian package curl)" ;;
    chromium) command -v chromium >/dev/null || echo "chromium missing (Debian package chromium)" ;;
    systemd-analyze) command -v systemd-analyze >/dev/null || echo "systemd-analyze missing (Debian package systemd)" ;;
    tmux) command -v tmux >/dev/null || echo "tmux missing (Debian package tmux)" ;;
    openssl) command -v openssl >/dev/null || echo "openssl missing (Debian package openssl)" ;;
    mariadb) { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || echo "MariaDB missing (Debian package mariadb-server)" ;;
    qemu-img) { command -v qemu-img >/dev/null && ls /usr/lib/*/qemu/block-curl.so >/dev/null 2>&1; } || echo "qemu-img or its curl driver missing (Debian packages qemu-utils and qemu-block-extra)" ;;
    galera) { [ -f /usr/lib/galera/libgalera_smm.so ] && command -v rsync >/dev/null && id mysql >/dev/null 2>&1; } || echo "Galera missing (Debian packages galera-4, rsync and mariadb-server's mysql user)" ;;
    memcached) { command -v memcached >/dev/null || [ -x /usr/bin/memcached ]; } || echo "memcached missing (Debian package memcached)" ;;
    nginx) { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || echo "nginx missing (Debian package nginx-light)" ;;
    *) echo "unknown test-needs name: $1" ;;
  esac
}

# file_missing FILE: why FILE cannot run here (one line per unmet need), nothing when it can.
file_missing() {
  local need
  for need in $(sed -n '1,30s#^// test-needs:##p' "$1"); do
    local why; why=$(need_missing "$need")
    [ -z "$why" ] || echo "$need: $why"
  done
}
which_runtimes=${1:-all}
shift || true
files=("$@")
# every group folder's suites (helpers/ holds none), sorted so every run lists them in the same order
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find test -name '*.test.ts' -not -path 'test/helpers/*' | LC_ALL=C sort)
runtimes=()
[ "$which_runtimes" != deno ] && runtimes+=(node)
[ "$which_runtimes" != node ] && runtimes+=(deno)

# a file that hangs is stopped and counted as failed, so a run always ends with its summary line
FILE_TIMEOUT=${FILE_TIMEOUT:-600}
passed=0
failed=0
declare -A cannot=()
for f in "${files[@]}"; do
  why=$(file_missing "$f")
  [ -z "$why" ] || cannot[$f]=$(printf '%s\n' "$why" | awk 'NR > 1 { printf " + " } { printf "%s", $0 }')
done
skipped=()
for rt in "${runtimes[@]}"; do
  for f in "${files[@]}"; do
    echo "=== $rt $f"
    if [ -n "${cannot[$f]:-}" ]; then
      if [ "${TEST_REQUIRE_ALL:-0}" = 1 ]; then
        echo "FAILED: $f cannot run here: ${cannot[$f]}"
        failed=$((failed + 1))
      else
        echo "skipped: ${cannot[$f]}"
        skipped+=("$rt $f: ${cannot[$f]}")
      fi
      continue
    fi
    if [ "$rt" = node ]; then
      out=$(NO_COLOR=1 timeout "$FILE_TIMEOUT" node --import tsx "$f" 2>&1); rc=$?
    else
      out=$(NO_COLOR=1 timeout "$FILE_TIMEOUT" npx --no-install deno run -A "$f" 2>&1); rc=$?
    fi
    printf '%s\n' "$out"
    # uvu's summary: "Total: N" and "Passed: N"
    total=$(printf '%s\n' "$out" | sed -n 's/.*Total: *\([0-9]*\).*/\1/p' | tail -1)
    ok=$(printf '%s\n' "$out" | sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' | tail -1)
    total=${total:-0}; ok=${ok:-0}
    bad=$((total - ok))
    # a file that crashed or reported nothing counts as one failure
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$total" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok)); failed=$((failed + bad))
  done
done
if [ ${#skipped[@]} -gt 0 ]; then
  echo
  echo "SKIPPED ${#skipped[@]} suite run(s): this machine lacks what they need (npm run test:all sets it all up and runs them):"
  printf '  %s\n' "${skipped[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
