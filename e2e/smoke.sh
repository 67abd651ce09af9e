#!/bin/bash
# e2e harness self-test (run after start.sh): real Keystone tokens against the
# real Glance.  Exit 0 and "smoke.sh: N checks passed" when everything works.
#   - tokens for admin, gcn-service and demo (token.sh)
#   - token validation: GET /v3/auth/tokens, X-Auth-Token = service token,
#     X-Subject-Token = the token to check (admin's and demo's; bogus -> 404)
#   - admin and demo each create an image, upload 1 MiB, download it (same md5)
#   - visibility: demo cannot see admin's image, gcn-service (admin role) can
#   - glance CLI with --os-image-url + --os-auth-token, and with Keystone
#     password auth (endpoint from the catalog), each with its own HOME
# The images it creates are deleted at the end.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
[ -f "$BASE/env" ] || die "$BASE/env missing: run start.sh first"
set -a; . "$BASE/env"; set +a

TMP=$(mktemp -d); IMAGES=()
cleanup() {
  for id in "${IMAGES[@]}"; do
    curl -s -o /dev/null -X DELETE -H "X-Auth-Token: $ADMIN_TOKEN" "$GLANCE_URL/v2/images/$id" || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
N=0
ok() { N=$((N + 1)); echo "  ok  $*"; }
fail() { echo "  FAIL $*" >&2; exit 1; }
jget() {  # jget FILE PYEXPR  (d = parsed JSON)
  clean_env $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# req METHOD URL TOKEN OUTFILE [curl args...] -> prints the HTTP status
req() {
  local m=$1 u=$2 t=$3 o=$4; shift 4
  curl -s -X "$m" -o "$o" -w '%{http_code}' --max-time 60 -H "X-Auth-Token: $t" "$@" "$u"
}

echo "tokens"
ADMIN_TOKEN=$("$E2E_DIR/token.sh" "$ADMIN_USER" "$ADMIN_PASSWORD" "$ADMIN_PROJECT"); ok "admin token"
SERVICE_TOKEN=$("$E2E_DIR/token.sh" "$SERVICE_USER" "$SERVICE_PASSWORD" "$SERVICE_PROJECT"); ok "$SERVICE_USER token"
DEMO_TOKEN=$("$E2E_DIR/token.sh" "$DEMO_USER" "$DEMO_PASSWORD" "$DEMO_PROJECT"); ok "demo token"
if "$E2E_DIR/token.sh" "$DEMO_USER" wrong-password "$DEMO_PROJECT" 2>/dev/null; then fail "wrong password got a token"; fi
ok "wrong password refused"

echo "token validation (GET /v3/auth/tokens with the $SERVICE_USER token)"
for who in admin demo; do
  tok=ADMIN_TOKEN; [ $who = demo ] && tok=DEMO_TOKEN
  code=$(req GET "$KEYSTONE_URL/auth/tokens" "$SERVICE_TOKEN" "$TMP/v.json" -H "X-Subject-Token: ${!tok}")
  [ "$code" = 200 ] || fail "validate $who token: $code $(cat "$TMP/v.json")"
  got="$(jget "$TMP/v.json" "d['token']['user']['name'] + ' ' + d['token']['project']['name'] + ' ' + ','.join(sorted(r['name'] for r in d['token']['roles'])) + ' catalog:' + ','.join(sorted(s['type'] for s in d['token'].get('catalog', [])))")"
  case "$who:$got" in
    "admin:$ADMIN_USER $ADMIN_PROJECT admin,member,reader catalog:identity,image") ;;
    "demo:$DEMO_USER $DEMO_PROJECT member,reader catalog:identity,image") ;;
    *) fail "validate $who token: unexpected '$got'" ;;
  esac
  ok "$who token valid: $got"
done
code=$(req GET "$KEYSTONE_URL/auth/tokens" "$SERVICE_TOKEN" "$TMP/v.json" -H "X-Subject-Token: bogus")
[ "$code" = 404 ] || fail "bogus subject token: $code"; ok "bogus subject token -> 404"
code=$(req GET "$KEYSTONE_URL/auth/tokens" "$DEMO_TOKEN" "$TMP/v.json" -H "X-Subject-Token: $ADMIN_TOKEN")
[ "$code" = 403 ] || fail "demo validating admin's token: $code"; ok "demo may not validate others' tokens -> 403"

# upload_download WHO TOKEN -> sets IMG
upload_download() {
  local who=$1 t=$2 code id md5 got
  head -c 1048576 /dev/urandom > "$TMP/$who.img"
  md5=$(md5sum < "$TMP/$who.img" | cut -d' ' -f1)
  code=$(req POST "$GLANCE_URL/v2/images" "$t" "$TMP/c.json" -H 'Content-Type: application/json' \
    -d "{\"name\":\"e2e-smoke-$who\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}")
  [ "$code" = 201 ] || fail "$who POST /v2/images: $code $(cat "$TMP/c.json")"
  id=$(jget "$TMP/c.json" "d['id']"); IMAGES+=("$id")
  code=$(req PUT "$GLANCE_URL/v2/images/$id/file" "$t" "$TMP/p.out" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/$who.img")
  [ "$code" = 204 ] || fail "$who PUT file: $code $(cat "$TMP/p.out")"
  code=$(req GET "$GLANCE_URL/v2/images/$id" "$t" "$TMP/g.json")
  got=$(jget "$TMP/g.json" "d['status'] + ' ' + str(d['size']) + ' ' + d['checksum'] + ' ' + d['owner']")
  case "$got" in "active 1048576 $md5 "*) ;; *) fail "$who image after upload: $got" ;; esac
  code=$(req GET "$GLANCE_URL/v2/images/$id/file" "$t" "$TMP/$who.down")
  [ "$code" = 200 ] || fail "$who GET file: $code"
  [ "$(md5sum < "$TMP/$who.down" | cut -d' ' -f1)" = "$md5" ] || fail "$who download md5 differs"
  ok "$who: image $id created, 1 MiB uploaded and downloaded, md5 $md5"
  IMG=$id
}
echo "glance with keystone tokens"
upload_download admin "$ADMIN_TOKEN"; ADMIN_IMG=$IMG
upload_download demo "$DEMO_TOKEN"; DEMO_IMG=$IMG
code=$(req GET "$GLANCE_URL/v2/images/$ADMIN_IMG" "$DEMO_TOKEN" /dev/null)
[ "$code" = 404 ] || fail "demo GET admin's image: $code"; ok "demo cannot see admin's image (404)"
code=$(req GET "$GLANCE_URL/v2/images/$DEMO_IMG/file" "$SERVICE_TOKEN" "$TMP/s.down")
[ "$code" = 200 ] && cmp -s "$TMP/s.down" "$TMP/demo.img" || fail "$SERVICE_USER GET demo's image file: $code"
ok "$SERVICE_USER (admin role) downloads demo's image"
code=$(req GET "$GLANCE_URL/v2/images" "bogus-token" /dev/null)
[ "$code" = 401 ] || fail "bogus token: $code"; ok "bogus token -> 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GLANCE_URL/v2/images")
[ "$code" = 401 ] || fail "no token: $code"; ok "no token -> 401"

echo "glance CLI (/usr/bin/glance, fresh HOME per call)"
glance_cli() { local h; h=$(mktemp -d "$TMP/home.XXXX"); clean_env HOME="$h" /usr/bin/glance "$@" < /dev/null; }
glance_cli --os-image-url "$GLANCE_URL" --os-auth-token "$ADMIN_TOKEN" image-list > "$TMP/l1" \
  || fail "glance image-list (token): $(cat "$TMP/l1")"
grep -q "$ADMIN_IMG" "$TMP/l1" && grep -q "$DEMO_IMG" "$TMP/l1" || fail "admin image-list misses images"
ok "glance --os-image-url --os-auth-token <admin> image-list lists both images"
glance_cli --os-image-url "$GLANCE_URL" --os-auth-token "$DEMO_TOKEN" image-list > "$TMP/l2" \
  || fail "glance image-list (demo token)"
grep -q "$DEMO_IMG" "$TMP/l2" && ! grep -q "$ADMIN_IMG" "$TMP/l2" || fail "demo image-list wrong: $(cat "$TMP/l2")"
ok "glance ... <demo token> image-list lists only demo's image"
glance_cli --os-auth-url "$KEYSTONE_URL" --os-username "$DEMO_USER" --os-password "$DEMO_PASSWORD" \
  --os-project-name "$DEMO_PROJECT" --os-user-domain-name "$DOMAIN" --os-project-domain-name "$DOMAIN" \
  --os-region-name "$REGION" image-download --file "$TMP/cli.down" "$DEMO_IMG" > "$TMP/l3" 2>&1 \
  || fail "glance with keystone password auth: $(cat "$TMP/l3")"
cmp -s "$TMP/cli.down" "$TMP/demo.img" || fail "CLI download differs"
ok "glance --os-auth-url ... (password auth, image endpoint from the catalog) image-download"

echo "smoke.sh: $N checks passed"
