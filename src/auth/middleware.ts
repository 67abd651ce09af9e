// Authentication as router middleware: picks the auth mode from its options and sets each request's identity.
import { OPTIONS } from "../config/options.ts";
import { LOOPBACK, parseCidrList } from "./addresses.ts";
import type { Authenticator, ConnInfo, Identity } from "./identity.ts";
import type { KeystoneClient } from "./keystone.ts";
import { keystoneAuth } from "./keystone_auth.ts";
import { headerAuth, noAuth } from "./modes.ts";
import { isTempUrlRequest, tempUrlCaller } from "./temp_url.ts";
import { currentRequest } from "../request_context.ts";

/** How callers are authenticated (the [DEFAULT] auth_strategy and its companions). */
export interface AuthOptions {
  /**
   * noauth (the default): every caller is an admin, so only loopback peers are served unless forceNoauth.
   * headers: identity headers believed from trustedProxies only. keystone: X-Auth-Token validated.
   * An Authenticator object is used as it is (embedders).
   */
  auth?: "noauth" | "headers" | "keystone" | Authenticator;
  /** noauth serves peers off loopback too (and callers whose address the server did not pass). */
  forceNoauth?: boolean;
  /** auth headers: CIDR ranges ("10.0.0.0/8", "fd00::/8") whose identity headers are believed; default loopback. */
  trustedProxies?: string[];
  /** auth headers: X-Auth-Token "user:project:role[,role]" is taken as that identity. Tests only. */
  insecureTestTokens?: boolean;
  /** [glance_cache_node] temp_url_key: a request with a temp URL's query is judged by its signature alone. */
  tempUrlKey?: string;
}

/** The request fields the middleware reads and sets. */
type Authenticated = Request & { identity: Identity };

/**
 * The middleware: paths that `isPublic` accepts pass without an identity; every other request gets one
 * (or the authenticator's 401/403), and the request's log context learns who it is.
 */
export function authentication(
  opts: AuthOptions,
  keystone: KeystoneClient | undefined,
  isPublic: (path: string) => boolean,
  tempUrlJudged?: (accepted: boolean) => void,
): (request: Authenticated, conn?: ConnInfo) => Promise<void> {
  const auth = authenticator(opts, keystone);
  return async (request, conn = {}) => {
    const url = new URL(request.url);
    // With a key set, a temp URL's query is the whole credential: valid for its one download, else a 401.
    if (opts.tempUrlKey && isTempUrlRequest(url)) {
      try {
        request.identity = tempUrlCaller(opts.tempUrlKey, request.method, url);
      } catch (err) {
        tempUrlJudged?.(false);
        throw err;
      }
      tempUrlJudged?.(true);
    } else if (isPublic(url.pathname)) return;
    else request.identity = await auth.authenticate(request, conn);
    const ctx = currentRequest();
    if (ctx) Object.assign(ctx, { userId: request.identity.userId, projectId: request.identity.projectId });
  };
}

/** The Authenticator of the configured mode. */
export function authenticator(opts: AuthOptions, keystone: KeystoneClient | undefined): Authenticator {
  const mode = opts.auth ?? OPTIONS.auth.default;
  if (typeof mode === "object") return mode;
  if (mode === "headers") {
    const trustedProxies = opts.trustedProxies ? parseCidrList(opts.trustedProxies.join(",")) : LOOPBACK;
    return headerAuth({ trustedProxies, insecureTestTokens: opts.insecureTestTokens });
  }
  if (mode === "keystone") {
    if (!keystone) throw new Error("auth keystone needs [keystone_authtoken] settings");
    return keystoneAuth(keystone);
  }
  if (mode !== "noauth") throw new Error(`unknown auth mode: ${String(mode)}`);
  return noAuth({ force: opts.forceNoauth });
}
