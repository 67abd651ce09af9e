// The headers that assert who a caller is (what keystonemiddleware sets), as opposed to credentials to check.

/** keystonemiddleware's per-identity headers, set once for the user (X-...) and once for a service token (X-Service-...). */
const TEMPLATES = [
  "domain-id",
  "domain-name",
  "project-id",
  "project-name",
  "project-domain-id",
  "project-domain-name",
  "user-id",
  "user-name",
  "user-domain-id",
  "user-domain-name",
  "roles",
];

const EXACT = new Set([
  ...TEMPLATES.flatMap((t) => [`x-${t}`, `x-service-${t}`]),
  "x-identity-status",
  "x-service-identity-status",
  "x-is-admin-project",
  "x-service-is-admin-project",
  "x-service-catalog",
  "openstack-system-scope",
  "x-system-scope",
  // The deprecated names it still sets.
  "x-role",
  "x-user",
  "x-tenant",
  "x-tenant-id",
  "x-tenant-name",
]);

/** Families of identity headers whatever their suffix: application credentials, trusts, and anything of a service. */
const PREFIXES = [
  "x-application-credential-",
  "x-trust",
  "x-service-",
  "x-user-",
  "x-project-",
  "x-tenant-",
  "x-domain-",
];

/** Credentials, not assertions: whoever receives them validates them (Nova sends X-Service-Token with a user's token). */
const CREDENTIALS = new Set(["x-auth-token", "x-service-token", "x-storage-token", "x-subject-token"]);

/**
 * Whether a header asserts an identity: believed only from a trusted proxy (auth headers), never forwarded
 * upstream by the pass-through, and a sign of impersonation from anyone else. `name` in any case.
 */
export function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase();
  if (CREDENTIALS.has(n)) return false;
  return EXACT.has(n) || PREFIXES.some((p) => n.startsWith(p));
}

/** Whether any of the headers asserts an identity. */
export function hasIdentityHeaders(headers: Headers): boolean {
  for (const name of headers.keys()) if (isIdentityHeader(name)) return true;
  return false;
}
