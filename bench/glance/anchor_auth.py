"""Keystone-less identity shim for the benchmark's Glance (bench/glance/setup.sh).

It stands where keystonemiddleware.auth_token stands in production: it only sets
the identity headers, and glance's own ContextMiddleware builds the request
context from them. Clients either send those headers themselves
(X-Identity-Status: Confirmed, X-Roles, X-Tenant-Id, X-User-Id) or a token
"user:project:role[,role]" in X-Auth-Token (glanceclient percent-encodes it).
Anything else is left alone, so glance answers 401.
"""
import urllib.parse

from glance.common import wsgi


class HeaderAuthShim(wsgi.Middleware):
    def process_request(self, req):
        token = urllib.parse.unquote(req.headers.get('X-Auth-Token') or '')
        parts = token.split(':')
        if 'X-Identity-Status' not in req.headers and len(parts) == 3 and all(parts):
            user, project, roles = parts
            req.headers['X-Identity-Status'] = 'Confirmed'
            req.headers['X-User-Id'] = user
            req.headers['X-Tenant-Id'] = req.headers['X-Project-Id'] = project
            req.headers['X-Roles'] = roles
        return None
