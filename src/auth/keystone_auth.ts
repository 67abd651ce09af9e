// auth_strategy = keystone: X-Auth-Token validated; an X-Service-Token beside it valid and a service's, as keystonemiddleware checks.
import { unauthenticated } from "../errors.ts";
import type { Authenticator, Identity } from "./identity.ts";
import type { KeystoneClient, KeystoneOptions } from "./keystone.ts";

/**
 * Checks the request's X-Service-Token, if any: not valid is 401; valid but without a service role is 401 when
 * roles are required, else a WARNING line. `validate` is Keystone's answer (undefined: not valid).
 */
async function checkServiceToken(
  request: Request,
  rules: KeystoneOptions,
  validate: (token: string) => Promise<Identity | undefined>,
  challenge: string,
  warn: (message: string) => void,
): Promise<void> {
  const token = request.headers.get("x-service-token");
  if (!token) return;
  const service = await validate(token);
  if (!service) throw unauthenticated(challenge);
  const wanted = (rules.serviceTokenRoles ?? "service").split(",").map((r) => r.trim().toLowerCase()).filter(Boolean);
  if (wanted.some((r) => service.roles.includes(r))) return;
  const message = `a service token of user ${service.userId} lacks every role of service_token_roles (${
    wanted.join(", ")
  })`;
  if (rules.serviceTokenRolesRequired) throw unauthenticated(challenge);
  warn(`${message}: accepted, as service_token_roles_required is false`);
}

/** auth_strategy = keystone: every /v2 call needs a valid X-Auth-Token. */
export function keystoneAuth(client: KeystoneClient): Authenticator {
  const challenge = `Keystone uri="${client.opts.wwwAuthenticateUri ?? client.opts.authUrl}"`;
  return {
    async authenticate(request) {
      const token = request.headers.get("x-auth-token");
      const identity = token ? await client.validate(token) : undefined;
      if (!identity) throw unauthenticated(challenge);
      const warn = (message: string) => client.log("WARNING", message);
      await checkServiceToken(request, client.opts, (t) => client.validate(t), challenge, warn);
      return identity;
    },
  };
}
