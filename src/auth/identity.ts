// Who is calling: the Identity every handler sees, and the Authenticator interface each auth mode implements.
import type { Recycling } from "../streams/files.ts";

/** The caller, as every handler and policy check sees it, whichever auth mode found it. */
export interface Identity {
  userId: string;
  /** The project the caller's token is scoped to; null when it is not scoped to one. */
  projectId: string | null;
  /** Role names, trimmed and lower-cased. */
  roles: string[];
  /** Holds the admin role: Glance's visibility rules go by this; policy rules by context_is_admin. */
  isAdmin: boolean;
  /** The caller's Keystone token, passed on to an upstream Glance so that it decides visibility. */
  token?: string;
  /** Set only for a temp URL's caller (src/auth/temp_url.ts): the one image whose data it may read, and nothing else. */
  tempUrlImage?: string;
}

/**
 * Where a request came from, as the runtime adapter saw the connection (the fetch handler's second argument).
 * remoteAddr: the peer's IP address; absent means unknown, and an unknown peer is never trusted.
 * rawPath: the request target as received, before the runtime resolved dot segments (for strict routing).
 */
export interface ConnInfo {
  remoteAddr?: string;
  rawPath?: string;
  /**
   * Set by our own adapters, which write a response body to the socket themselves and hold a bounded number
   * of its chunks: a download's buffers may then be recycled (see reuseBuffers), `ring` of them, `chunk`
   * bytes each. Absent (an embedder's server, a test calling the handler): every chunk is a fresh buffer.
   */
  body?: Recycling;
  /**
   * Set by our own adapters: whether the request carries a body, as HTTP/1.1 frames it (Transfer-Encoding, or
   * a Content-Length above 0). Absent (an embedder's server, a test calling the handler): the core guesses.
   */
  hasBody?: boolean;
}

/** Resolves a request to an identity, or throws an unauthenticated/forbidden DomainError. One per auth mode. */
export interface Authenticator {
  authenticate(request: Request, conn: ConnInfo): Promise<Identity>;
}

/** An Identity from what an auth mode found: roles normalized, isAdmin set by the admin role. */
export function makeIdentity(userId: string, projectId: string | null, roles: string[], token?: string): Identity {
  const normalized = roles.map((r) => r.trim().toLowerCase()).filter(Boolean);
  return { userId, projectId, roles: normalized, isAdmin: normalized.includes("admin"), token };
}
