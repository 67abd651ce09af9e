"""Seed the e2e Keystone through its v3 REST API (stdlib only; idempotent).

Run by start.sh with Debian's /usr/bin/python3 once Keystone answers.
Everything comes from the environment (see lib.sh):

  KEYSTONE_URL (…/v3), GLANCE_URL, REGION, DOMAIN,
  ADMIN_USER/ADMIN_PASSWORD/ADMIN_PROJECT         (made by keystone-manage bootstrap)
  SERVICE_USER/SERVICE_PASSWORD/SERVICE_PROJECT   gcn-service: admin + service on "service"
  DEMO_USER/DEMO_PASSWORD/DEMO_PROJECT            demo: member on "demo"
  GLANCE_USER/GLANCE_PASSWORD                     glance (keystonemiddleware): admin + service on "service"

Ensures roles admin/member/reader/service, the projects, the users (password
reset only when the configured one does not work), the role assignments, and
the "image" service (name glance) with public/internal/admin endpoints in
REGION pointing at GLANCE_URL.  Every HTTP request uses its own connection
(urllib opens and closes one per request).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

E = os.environ
KS = E["KEYSTONE_URL"].rstrip("/")
DOMAIN_ID = "default"  # the "Default" domain made by bootstrap has id "default"


def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(KS + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    req.add_header("Connection", "close")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            status, headers = r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, e.headers
    if status not in ok:
        raise RuntimeError(f"{method} {path} -> {status}: {raw[:500]!r}")
    return status, headers, (json.loads(raw) if raw else None)


def password_token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": DOMAIN_ID}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": DOMAIN_ID}}}}}
    status, headers, _ = call("POST", "/auth/tokens", body, ok=(201, 401))
    return headers["X-Subject-Token"] if status == 201 else None


def find(token, collection, name, **filters):
    q = {"name": name, **filters}
    _, _, doc = call("GET", f"/{collection}?{urllib.parse.urlencode(q)}", token=token)
    items = doc[collection]
    return items[0] if items else None


def ensure(token, collection, singular, name, extra=None, **filters):
    item = find(token, collection, name, **filters)
    if item:
        return item, False
    _, _, doc = call("POST", f"/{collection}", {singular: {"name": name, **(extra or {})}}, token)
    return doc[singular], True


def main():
    admin = password_token(E["ADMIN_USER"], E["ADMIN_PASSWORD"], E["ADMIN_PROJECT"])
    if not admin:
        sys.exit("keystone_seed: admin password rejected (bootstrap did not run?)")
    changes = []

    roles = {}
    for r in ("admin", "member", "reader", "service"):
        roles[r], created = ensure(admin, "roles", "role", r)
        if created:
            changes.append(f"role {r}")

    projects = {}
    for p, desc in ((E["SERVICE_PROJECT"], "service users"), (E["DEMO_PROJECT"], "e2e demo project")):
        projects[p], created = ensure(admin, "projects", "project", p,
                                      {"domain_id": DOMAIN_ID, "description": desc, "enabled": True},
                                      domain_id=DOMAIN_ID)
        if created:
            changes.append(f"project {p}")

    users = [
        (E["SERVICE_USER"], E["SERVICE_PASSWORD"], E["SERVICE_PROJECT"], ("admin", "service")),
        (E["GLANCE_USER"], E["GLANCE_PASSWORD"], E["SERVICE_PROJECT"], ("admin", "service")),
        (E["DEMO_USER"], E["DEMO_PASSWORD"], E["DEMO_PROJECT"], ("member",)),
    ]
    for name, password, project, user_roles in users:
        user, created = ensure(admin, "users", "user", name,
                               {"domain_id": DOMAIN_ID, "password": password, "enabled": True,
                                "default_project_id": projects[project]["id"]},
                               domain_id=DOMAIN_ID)
        if created:
            changes.append(f"user {name}")
        for r in user_roles:
            # PUT is idempotent (204 whether or not the grant existed)
            call("PUT", f"/projects/{projects[project]['id']}/users/{user['id']}/roles/{roles[r]['id']}",
                 token=admin)
        if not created and not password_token(name, password, project):
            call("PATCH", f"/users/{user['id']}", {"user": {"password": password, "enabled": True}}, admin)
            changes.append(f"password of {name}")

    # image service + endpoints (python-glanceclient/openstackclient look these up)
    _, _, doc = call("GET", "/services?type=image", token=admin)
    if doc["services"]:
        svc = doc["services"][0]
    else:
        _, _, d = call("POST", "/services", {"service": {
            "type": "image", "name": "glance", "description": "OpenStack Image (e2e)", "enabled": True}}, admin)
        svc = d["service"]
        changes.append("service image")
    _, _, doc = call("GET", f"/endpoints?service_id={svc['id']}", token=admin)
    have = {(ep["interface"], ep.get("region_id")): ep for ep in doc["endpoints"]}
    for iface in ("public", "internal", "admin"):
        ep = have.get((iface, E["REGION"]))
        if ep is None:
            call("POST", "/endpoints", {"endpoint": {
                "service_id": svc["id"], "interface": iface, "region_id": E["REGION"],
                "url": E["GLANCE_URL"], "enabled": True}}, admin)
            changes.append(f"endpoint image/{iface}")
        elif ep["url"] != E["GLANCE_URL"]:
            call("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"url": E["GLANCE_URL"]}}, admin)
            changes.append(f"endpoint image/{iface} url")

    if any(c.startswith("password of") for c in changes):
        # A password change revokes the user's tokens with second resolution:
        # tokens issued in the same second would be refused on validation.
        time.sleep(1.5)
    for name, password, project, _ in users:
        if not password_token(name, password, project):
            sys.exit(f"keystone_seed: {name} cannot get a token for project {project}")
    print("keystone_seed: " + (", ".join(changes) if changes else "nothing to change"))


if __name__ == "__main__":
    main()
