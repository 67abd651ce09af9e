#!/bin/bash
# token.sh USER PASSWORD PROJECT -> prints a project-scoped Keystone token
# (POST /v3/auth/tokens, password method, user and project in domain
# Default; the token is the X-Subject-Token response header).
# Keystone: $KEYSTONE_URL from the environment if set (root or …/v3, e.g.
# after ". $E2E_BASE/env"), else the harness default.
set -euo pipefail
given_url=${KEYSTONE_URL:-}
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
given_url=${given_url%/}; given_url=${given_url%/v3}; KEYSTONE_ROOT_URL=${given_url:-$KEYSTONE_ROOT_URL}
[ $# -eq 3 ] || { echo "usage: $0 USER PASSWORD PROJECT" >&2; exit 2; }
json_str() {  # JSON string literal of $1
  local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"
}
body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%s,"domain":{"name":%s},"password":%s}}},"scope":{"project":{"name":%s,"domain":{"name":%s}}}}}' \
  "$(json_str "$1")" "$(json_str "$DOMAIN")" "$(json_str "$2")" "$(json_str "$3")" "$(json_str "$DOMAIN")")
hdrs=$(mktemp); trap 'rm -f "$hdrs"' EXIT
code=$(curl -s -o /dev/null -D "$hdrs" -w '%{http_code}' --max-time 30 \
  -H 'Content-Type: application/json' -d "$body" "$KEYSTONE_ROOT_URL/v3/auth/tokens") || true
[ "$code" = 201 ] || { echo "token.sh: POST $KEYSTONE_ROOT_URL/v3/auth/tokens for $1 in $3 answered ${code:-nothing}" >&2; exit 1; }
tr -d '\r' < "$hdrs" | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p'
