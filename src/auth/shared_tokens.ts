// Validated tokens shared by the nodes through memcached ([keystone_authtoken] memcached_servers), as keystonemiddleware shares them.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type Identity, makeIdentity } from "./identity.ts";
import { Memcached } from "./memcached.ts";

/** [keystone_authtoken]'s memcached options, as keystonemiddleware names them. */
export interface SharedTokenOptions {
  /** memcached_servers: validated tokens shared with other nodes for tokenCacheTime */
  memcachedServers?: string;
  /** memcache_security_strategy: None, MAC (values signed) or ENCRYPT (encrypted and signed) */
  memcacheSecurityStrategy?: string;
  /** memcache_secret_key: the nodes' shared secret for MAC and ENCRYPT */
  memcacheSecretKey?: string;
}

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
  private readonly strategy: string;
  private readonly macKey: Buffer;
  private readonly encKey: Buffer;

  constructor(opts: SharedTokenOptions, private readonly warn: (message: string) => void) {
    this.memcached = new Memcached(opts.memcachedServers!);
    this.strategy = (opts.memcacheSecurityStrategy ?? "none").toLowerCase();
    const secret = opts.memcacheSecretKey ?? "";
    this.macKey = createHash("sha256").update(`mac\0${secret}`).digest();
    this.encKey = createHash("sha256").update(`enc\0${secret}`).digest();
  }

  /** Where a token's answer lives: a hash of it, keyed by the secret when there is one (not guessable then). */
  private key(token: string): string {
    const digest = this.strategy === "none"
      ? createHash("sha256").update(token).digest("hex")
      : createHmac("sha256", this.macKey).update(token).digest("hex");
    return `glance-cache-node/token/${digest}`;
  }

  /** The stored form: as is, signed (MAC), or encrypted with AES-256-GCM and signed (ENCRYPT). */
  private seal(value: string): string {
    let body = value;
    if (this.strategy === "encrypt") {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", this.encKey, iv);
      const data = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
      body = Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
    }
    if (this.strategy === "none") return body;
    return `${createHmac("sha256", this.macKey).update(body).digest("base64")}:${body}`;
  }

  /** The value of a stored form, or undefined when its signature or encryption does not hold. */
  private unseal(stored: string): string | undefined {
    if (this.strategy === "none") return stored;
    const at = stored.indexOf(":");
    const [mac, body] = [Buffer.from(stored.slice(0, at), "base64"), stored.slice(at + 1)];
    const expected = createHmac("sha256", this.macKey).update(body).digest();
    if (at < 0 || mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    if (this.strategy !== "encrypt") return body;
    const raw = Buffer.from(body, "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.encKey, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  }

  /** Another node's validation of `token`, if memcached holds one that has not expired. */
  async recall(token: string): Promise<{ identity: Identity; expires: number } | undefined> {
    const stored = await this.attempt(() => this.memcached.get(this.key(token)));
    if (!stored) return undefined;
    try {
      const value = this.unseal(stored);
      if (value === undefined) return undefined;
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
    await this.attempt(() => this.memcached.set(this.key(token), this.seal(JSON.stringify(stored)), ttl));
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
