// Validated tokens shared by the nodes through memcached ([keystone_authtoken] memcached_servers), as keystonemiddleware shares them.
import { createHash } from "node:crypto";
import { type Identity, makeIdentity } from "./identity.ts";
import { Memcached } from "./memcached.ts";

interface Stored {
  userId: string;
  projectId: string | null;
  roles: string[];
  expires: number;
}

/**
 * What Keystone said of a token, in memcached for token_cache_time under a hash of the token (never the token
 * itself). Memcached unreachable is a miss: the node asks Keystone, and says so once per outage.
 */
export class SharedTokens {
  private readonly memcached: Memcached;
  private failing = false;

  constructor(servers: string, private readonly warn: (message: string) => void) {
    this.memcached = new Memcached(servers);
  }

  /** Another node's validation of `token`, if memcached holds one that has not expired. */
  async recall(token: string): Promise<{ identity: Identity; expires: number } | undefined> {
    const value = await this.attempt(() => this.memcached.get(key(token)));
    if (!value) return undefined;
    try {
      const s = JSON.parse(value) as Stored;
      if (!(s.expires > Date.now()) || typeof s.userId !== "string" || !Array.isArray(s.roles)) return undefined;
      return { identity: makeIdentity(s.userId, s.projectId ?? null, s.roles, token), expires: s.expires };
    } catch {
      return undefined;
    }
  }

  /** Shares Keystone's answer for `ttl` seconds (nothing below a second: memcached would keep it for ever). */
  async keep(token: string, identity: Identity, expires: number, ttl: number): Promise<void> {
    if (ttl < 1) return;
    const stored: Stored = { userId: identity.userId, projectId: identity.projectId, roles: identity.roles, expires };
    await this.attempt(() => this.memcached.set(key(token), JSON.stringify(stored), ttl));
  }

  /** Closes the connections. */
  close(): void {
    this.memcached.close();
  }

  private async attempt<T>(op: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await op();
      this.failing = false;
      return result;
    } catch (err) {
      if (!this.failing) this.warn(`memcached_servers: ${(err as Error).message}; validating tokens with Keystone`);
      this.failing = true;
      return undefined;
    }
  }
}

const key = (token: string) => `glance-cache-node/token/${createHash("sha256").update(token).digest("hex")}`;
