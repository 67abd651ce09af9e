// The built-in auth modes: noauth (loopback callers are admins of one project) and identity headers from trusted proxies.
import { forbidden, unauthenticated } from "../errors.ts";
import { type Cidr, isLoopback, LOOPBACK, peerIn } from "./addresses.ts";
import { type Authenticator, type Identity, makeIdentity } from "./identity.ts";
import { hasIdentityHeaders } from "./identity_headers.ts";

/** The project of the admin every noauth caller is. */
export const NOAUTH_PROJECT = "admin";

/**
 * Every caller is an admin: so only callers on this host (loopback peers), unless force is set. A peer the
 * runtime did not report is refused too: an embedder that does not pass the peer address gets no admin.
 * A browser on this host is a loopback peer too, so a request a web page made is refused: one naming
 * another origin (Origin), or, unless force is set, one addressed to a name other than a loopback one
 * (a DNS-rebound Host).
 */
export function noAuth(opts: { force?: boolean } = {}): Authenticator {
  const admin: Identity = makeIdentity("admin", NOAUTH_PROJECT, ["admin"]);
  return {
    async authenticate(request, conn) {
      if (!opts.force && !peerIn(conn.remoteAddr, LOOPBACK)) {
        throw forbidden(
          "This node runs without authentication (auth_strategy noauth) and serves loopback clients only.",
        );
      }
      const url = new URL(request.url);
      if (!opts.force && !isLoopback(url.hostname.replace(/^\[(.*)\]$/, "$1"))) {
        throw forbidden(`This node runs without authentication and answers only to a loopback name, not ${url.host}.`);
      }
      const origin = request.headers.get("origin");
      if (origin !== null && origin !== url.origin) {
        throw forbidden("This node runs without authentication and refuses requests made by other origins' pages.");
      }
      return admin;
    },
  };
}

/** Whose identity headers headerAuth believes, and whether it takes test tokens. */
export interface HeaderAuthOptions {
  /** Peers whose identity headers are believed (default: loopback). */
  trustedProxies?: Cidr[];
  /** Take an X-Auth-Token of the form "user:project:role[,role]" as that identity (Glance's functional tests do). */
  insecureTestTokens?: boolean;
}

/**
 * Believes what keystonemiddleware in a trusted proxy forwards: identity headers from a trusted peer, and
 * only when that proxy says X-Identity-Status: Confirmed. Identity headers from anyone else are a 401.
 */
export function headerAuth(opts: HeaderAuthOptions = {}): Authenticator {
  const trusted = opts.trustedProxies ?? LOOPBACK;
  return {
    async authenticate(request, conn) {
      const h = request.headers;
      if (!peerIn(conn.remoteAddr, trusted)) throw unauthenticated();
      if (h.get("x-identity-status")?.trim().toLowerCase() === "confirmed") {
        const project = h.get("x-project-id") ?? h.get("x-tenant-id");
        const user = h.get("x-user-id");
        if (!user) throw unauthenticated();
        return makeIdentity(user, project, (h.get("x-roles") ?? "").split(","), h.get("x-auth-token") ?? undefined);
      }
      const token = h.get("x-auth-token");
      if (opts.insecureTestTokens && token && !hasIdentityHeaders(h)) {
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
