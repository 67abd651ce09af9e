// The built-in auth modes: noauth (everyone is an admin of one project) and trusted Keystone-style headers.
import { unauthenticated } from "../errors.ts";
import { type Authenticator, type Identity, makeIdentity } from "./identity.ts";

export const NOAUTH_PROJECT = "admin";

export function noAuth(): Authenticator {
  const admin: Identity = makeIdentity("admin", NOAUTH_PROJECT, ["admin"]);
  return { authenticate: async () => admin };
}

/**
 * Trusts what keystonemiddleware (or a trusted proxy) forwards. A token of the form
 * "user:project:role[,role]" is accepted too, as Glance's functional-test auth does, so the
 * glance CLI can talk to us with --os-auth-token.
 */
export function headerAuth(): Authenticator {
  return {
    async authenticate(request) {
      const h = request.headers;
      if (h.get("x-identity-status")?.toLowerCase() === "confirmed") {
        const project = h.get("x-project-id") ?? h.get("x-tenant-id");
        return makeIdentity(h.get("x-user-id") ?? "", project, (h.get("x-roles") ?? "").split(","), h.get("x-auth-token") ?? undefined);
      }
      const token = h.get("x-auth-token");
      if (token) {
        const parts = safeDecode(token).split(":");
        if (parts.length === 3 && parts.every(Boolean)) {
          const [user, project, roles] = parts;
          return makeIdentity(user, project.toLowerCase() === "none" ? null : project, roles.split(","), token);
        }
      }
      throw unauthenticated();
    },
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
