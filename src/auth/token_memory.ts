// Keystone outages: the tokens this node validated, kept in memory until their own expiry, and whether Keystone answers.
import { DomainError } from "../errors.ts";
import type { Identity } from "./identity.ts";

/** Validated tokens kept for an outage: enough for every instance an edge site boots, small in memory (~1 KB each). */
export const MAX_REMEMBERED_TOKENS = 10_000;

/** Keystone could not be reached (refused, timed out, broke off) or answered 5xx: the only case memory may answer. */
export class KeystoneUnreachable extends DomainError {
  constructor(message: string) {
    super("unavailable", message);
  }
}

/** The 503 for a token this node cannot vouch for while Keystone is unreachable (never a 401: the client keeps it). */
export const identityUnreachable = (detail: string) =>
  new DomainError("unavailable", `The identity service (Keystone) is unreachable: ${detail}`);

/** Keystone's reachability as the node last saw it, and what memory answered; read by /metrics and the status document. */
export interface KeystoneOutage {
  /** false from a failed request to Keystone until one that it answers. */
  reachable: boolean;
  /** When the current outage began (ms since the epoch); null while Keystone answers. */
  downSince: number | null;
  /** When Keystone last answered (ms since the epoch); null before its first answer. */
  lastAnswer: number | null;
  /** Requests authenticated from the memory of validated tokens because Keystone could not be reached. */
  fromMemory: number;
  /** Requests refused with 503 because Keystone could not be reached and the token was not remembered (or expired). */
  refusedUnknown: number;
  /** Outages seen since the node started. */
  outages: number;
}

/**
 * Tokens Keystone said were valid, each until its own expires_at, least recently used dropped beyond `max`.
 * Memory only: a restart forgets them (docs/deployment.md, "Keystone outages").
 */
export class TokenMemory {
  private readonly tokens = new Map<string, { identity: Identity; expires: number }>();

  constructor(private readonly max = MAX_REMEMBERED_TOKENS) {}

  /** How many tokens are remembered (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.tokens.size;
  }

  /** Keeps what Keystone said of `token` until `expires` (ms since the epoch). */
  keep(token: string, identity: Identity, expires: number): void {
    this.tokens.delete(token);
    if (!(expires > Date.now())) return;
    if (this.tokens.size >= this.max) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(token, { identity, expires });
  }

  /** The identity Keystone gave `token`, if it is remembered and has not expired; marks it recently used. */
  recall(token: string): Identity | undefined {
    const hit = this.tokens.get(token);
    if (!hit) return undefined;
    this.tokens.delete(token);
    if (Date.now() >= hit.expires) return undefined;
    this.tokens.set(token, hit);
    return hit.identity;
  }

  /** Forgets `token` (Keystone said it is not valid). */
  forget(token: string): void {
    this.tokens.delete(token);
  }
}
