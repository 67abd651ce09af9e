#!/bin/bash
# Installs what bench/compare.ts measures against and with, if missing: nginx (the sendfile reference),
# Glance 25.1 (glance-api; bench/glance/ configures and runs it), curl and openssl. Uses the e2e
# harness's install helpers (e2e/lib.sh: no service starts during apt-get). Needs root when
# something is missing; run it once before the benchmark (compare.ts installs nothing itself).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../e2e/lib.sh"

mapfile -t need < <(missing_packages glance-api curl openssl)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  # glance-api's debconf questions: never let the package touch a DB or register an endpoint.
  debconf-set-selections <<'SEL'
glance-common glance/configure_db boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
SEL
  apt_install "${TMPDIR:-/tmp}/gcn-bench-apt.log" "${need[@]}"
fi
log "ready: $(/usr/sbin/nginx -v 2>&1), glance-api $(dpkg-query -W -f='${Version}' glance-api), $(openssl version)"
