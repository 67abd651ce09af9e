#!/usr/bin/env bash
# `npm run test:all`: every test on a fresh machine (Debian, root), end-to-end suites included. Installs what
# the tests need (Debian packages, npm packages), typechecks, starts the real Keystone and Glance on loopback,
# runs test/run.sh with TEST_REQUIRE_ALL=1 (a suite that cannot run fails instead of being skipped), stops
# the services it started, and ends with test/run.sh's line "N passed, N failed" and its exit status.
# Usage: npm run test:all [-- node|deno|all [file...]]
set -uo pipefail
cd "$(dirname "$0")/.."
. e2e/lib.sh

fail() { echo "test/all.sh: $1" >&2; echo "0 passed, 1 failed"; exit 1; }

# --- Debian packages the test files name in their test-needs lines (test/run.sh) ---------------------------
# e2e/setup.sh (run by e2e/start.sh below) installs Keystone, Glance and the OpenStack clients itself.
PKGS=(curl python3-glanceclient mariadb-server galera-4 rsync chromium nginx-light tmux systemd openssl qemu-utils qemu-block-extra memcached)
mapfile -t need < <(missing_packages "${PKGS[@]}")
if [ ${#need[@]} -gt 0 ]; then
  # in a subshell: apt_install dies on failure, and this script must still end with its "passed, failed" line
  ( apt_install /tmp/gcn-test-all-apt.log "${need[@]}" ) || fail "could not install ${need[*]}"
fi

# --- npm packages: as package-lock.json says (skipped when node_modules already holds them all) -------------
if [ ! -d node_modules ] || ! npm ls --all >/dev/null 2>&1; then
  npm ci --no-audit --no-fund || fail "npm ci failed"
fi
npx --no-install deno --version >/dev/null || fail "deno missing from node_modules"
npx --no-install tsc -p tsconfig.json || fail "typecheck failed"
npx --no-install deno fmt --check || fail "deno fmt --check: run npx deno fmt"
npx --no-install deno lint || fail "deno lint failed"

# --- Keystone and Glance on loopback (e2e/start.sh installs, configures and starts them) --------------------
# Services that already run (started by e2e/start.sh, seeded, env written) are used as they are and left
# running; those we start are stopped at the end.
if pid_alive "$KEYSTONE_PIDFILE" "$KS_DIR" && pid_alive "$GLANCE_PIDFILE" "$GL_DIR" && [ -f "$BASE/env" ]; then
  echo "test/all.sh: Keystone and Glance already running (pids $(cat "$KEYSTONE_PIDFILE") $(cat "$GLANCE_PIDFILE")): using them, leaving them running"
else
  trap 'bash e2e/stop.sh >/dev/null 2>&1' EXIT
  bash e2e/start.sh || fail "e2e/start.sh failed: Keystone or Glance did not start"
fi

TEST_REQUIRE_ALL=1 bash test/run.sh "$@"
