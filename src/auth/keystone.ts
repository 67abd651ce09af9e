// Keystone v3: the node's own service token, and validation of callers' tokens (cached briefly, shared via memcached).
import { KEYSTONE_AUTHTOKEN } from "../config/file_options.ts";
import { unavailable } from "../errors.ts";
import { clientFetch, type Fetch } from "../platform/tls_fetch.ts";
import { type Identity, makeIdentity } from "./identity.ts";
import { type CatalogEntry, validationEndpoint } from "./keystone_catalog.ts";
import { type SharedTokenOptions, SharedTokens } from "./shared_tokens.ts";
import { identityUnreachable, type KeystoneOutage, KeystoneUnreachable, TokenMemory } from "./token_memory.ts";

/** The [keystone_authtoken] settings: the node's own service user, and how long Keystone's answers are trusted. */
export interface KeystoneOptions extends SharedTokenOptions {
  /** [keystone_authtoken] auth_url, with or without /v3 */
  authUrl: string;
  /** [keystone_authtoken] www_authenticate_uri: where 401s send clients (default auth_url) */
  wwwAuthenticateUri?: string;
  /** The node's own service user ([keystone_authtoken] username); its password, project and domains follow. */
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  /** seconds a validated token is trusted without asking Keystone again */
  tokenCacheTime: number;
  /** seconds for any request to Keystone, connecting included ([keystone_authtoken] http_connect_timeout; default 30) */
  timeout?: number;
  /** [keystone_authtoken] cafile: PEM CA bundle for an https auth_url (default: the runtime's CAs) */
  cafile?: string;
  /** [keystone_authtoken] insecure: Keystone's certificate is not verified (explicit choice only) */
  insecure?: boolean;
  /** seconds a token Keystone refused is refused without asking again (default 10) */
  negativeCacheTime?: number;
  /** interface and region_name: validate at that identity endpoint of the node's catalog (default auth_url) */
  interface?: "public" | "internal" | "admin";
  regionName?: string;
  /** service_token_roles: comma-separated, any of which makes an X-Service-Token a service's (default "service") */
  serviceTokenRoles?: string;
  /** service_token_roles_required: refuse a service token without them (default false: a warning) */
  serviceTokenRolesRequired?: boolean;
}

interface TokenBody {
  token: {
    expires_at: string;
    user: { id: string; name: string };
    project?: { id: string };
    roles?: { name: string }[];
    catalog?: CatalogEntry[];
  };
}

const MAX_CACHED = 10_000;

/** Adds to a bounded map, dropping the oldest entry when full. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_CACHED) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** Where the client writes its two outage lines (Keystone unreachable, Keystone answering again). */
export type KeystoneLog = (level: "WARNING" | "INFO", message: string) => void;

/**
 * The node's Keystone v3 client: its own service token, and callers' tokens validated, both cached. Keystone
 * unreachable, slow or refusing the node's own credentials is an unavailable DomainError (503), never a 500.
 * While Keystone cannot be reached, a token it validated before is accepted until its own expiry (from memory).
 */
export class KeystoneClient {
  /** The node's own token: renewed after `until`, still used after it while Keystone is unreachable, up to `expires`. */
  private service: { token: string; until: number; expires: number } | undefined;
  private servicePending: Promise<string> | undefined;
  private readonly validated = new Map<string, { identity: Identity; until: number }>();
  /** Tokens Keystone refused, until when: a client retrying a bogus token does not reach Keystone each time. */
  private readonly refused = new Map<string, number>();
  /** Validations in progress: concurrent requests with one token ask Keystone once. */
  private readonly pending = new Map<string, Promise<Identity | undefined>>();
  /** Every token Keystone validated, until its own expiry: answers only while Keystone cannot be reached. */
  private readonly memory = new TokenMemory();
  /** Whether Keystone answers, and what memory answered meanwhile (read by /metrics and the status document). */
  readonly outage: KeystoneOutage = {
    reachable: true,
    downSince: null,
    lastAnswer: null,
    fromMemory: 0,
    refusedUnknown: 0,
    outages: 0,
  };
  /** Keystone's v3 base URL, whichever form auth_url was given in. */
  readonly v3: string;
  /** What requests to Keystone go out with: node:https with cafile (or insecure) for an https auth_url. */
  readonly send: Fetch;
  /** Where callers' tokens are validated: v3, or the catalog's identity endpoint of interface and region_name. */
  private validationV3: string;
  /** Tokens other nodes validated, through memcached (memcached_servers). */
  private readonly shared: SharedTokens | undefined;

  constructor(readonly opts: KeystoneOptions, readonly log: KeystoneLog = () => {}) {
    this.v3 = `${opts.authUrl.replace(/\/+$/, "").replace(/\/v3$/, "")}/v3`;
    this.send = clientFetch({ caFile: opts.cafile, insecure: opts.insecure });
    this.validationV3 = this.v3;
    this.shared = opts.memcachedServers ? new SharedTokens(opts, (message) => log("WARNING", message)) : undefined;
  }

  /** Closes the connections to memcached. */
  close = (): void => this.shared?.close();

  /** How many validated tokens are remembered for an outage. */
  get rememberedTokens(): number {
    return this.memory.size;
  }

  /**
   * The node's own token (its [keystone_authtoken] user), renewed a minute before it expires (at the latest
   * after an hour). Throws unavailable when Keystone refuses the credentials or cannot be reached.
   */
  async serviceToken(): Promise<string> {
    if (this.service && Date.now() < this.service.until) return this.service.token;
    const old = this.service;
    this.servicePending ??= this.issueServiceToken().finally(() => (this.servicePending = undefined));
    try {
      return await this.servicePending;
    } catch (err) {
      // Keystone down: the token we hold is still good until its own expiry.
      if (err instanceof KeystoneUnreachable && old && Date.now() < old.expires) return old.token;
      throw err;
    }
  }

  private async issueServiceToken(): Promise<string> {
    const o = this.opts;
    const res = await this.call(`${this.v3}/auth/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ["password"],
            password: { user: { name: o.username, password: o.password, domain: { name: o.userDomainName } } },
          },
          scope: { project: { name: o.projectName, domain: { name: o.projectDomainName } } },
        },
      }),
    });
    const token = res.headers.get("x-subject-token");
    const body = (await res.json().catch(() => undefined)) as TokenBody | undefined;
    if (res.status !== 201 || !token || !body) {
      throw unavailable(`Keystone refused the node's service credentials (${o.username}): HTTP ${res.status}.`);
    }
    if (o.interface || o.regionName) this.validationV3 = validationEndpoint(body.token.catalog, o, this.v3, this.log);
    const expires = Date.parse(body.token.expires_at);
    this.service = { token, until: Math.min(expires - 60_000, Date.now() + 3_600_000), expires };
    return token;
  }

  /**
   * The identity behind a caller's token, or undefined if Keystone says it is not valid. Answers are reused for
   * tokenCacheTime (refusals for negativeCacheTime); throws unavailable when Keystone cannot answer.
   */
  async validate(token: string): Promise<Identity | undefined> {
    const hit = this.validated.get(token);
    if (hit && Date.now() < hit.until) return hit.identity;
    this.validated.delete(token);
    const refusedUntil = this.refused.get(token);
    if (refusedUntil !== undefined && Date.now() < refusedUntil) return undefined;
    this.refused.delete(token);
    let pending = this.pending.get(token);
    if (!pending) {
      pending = this.lookUp(token).finally(() => this.pending.delete(token));
      this.pending.set(token, pending);
    }
    try {
      return await pending;
    } catch (err) {
      if (!(err instanceof KeystoneUnreachable)) throw err;
      const remembered = this.memory.recall(token);
      if (remembered) {
        this.outage.fromMemory++;
        return remembered;
      }
      this.outage.refusedUnknown++;
      throw identityUnreachable(`this node has not validated this token before, or it has expired (${err.message})`);
    }
  }

  /** Another node's answer through memcached, else Keystone's (then shared). */
  private async lookUp(token: string): Promise<Identity | undefined> {
    const shared = await this.shared?.recall(token);
    if (!shared) return this.askAbout(token);
    this.keepValidated(token, shared.identity, shared.expires);
    return shared.identity;
  }

  private keepValidated(token: string, identity: Identity, expires: number): void {
    remember(this.validated, token, {
      identity,
      until: Math.min(Date.now() + this.opts.tokenCacheTime * 1000, expires),
    });
    this.memory.keep(token, identity, expires);
  }

  private async askAbout(token: string): Promise<Identity | undefined> {
    let res = await this.askKeystone(token, await this.serviceToken());
    if (res.status === 401) {
      this.service = undefined; // our own token may have been revoked: one retry with a new one
      res = await this.askKeystone(token, await this.serviceToken());
    }
    if (res.status === 401) {
      // Keystone refuses the subject with 404: a 401 is about our own token, not the caller's.
      throw unavailable("Keystone refused the node's own token while validating a caller's.");
    }
    if (res.status === 404) {
      await res.body?.cancel();
      this.memory.forget(token);
      remember(this.refused, token, Date.now() + (this.opts.negativeCacheTime ?? 10) * 1000);
      return undefined;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw unavailable(`Keystone answered ${res.status} to a token validation.`);
    }
    const { token: t } = (await res.json()) as TokenBody;
    const identity = makeIdentity(t.user.id, t.project?.id ?? null, (t.roles ?? []).map((r) => r.name), token);
    const expires = Date.parse(t.expires_at);
    this.keepValidated(token, identity, expires);
    await this.shared?.keep(
      token,
      identity,
      expires,
      Math.min(this.opts.tokenCacheTime, (expires - Date.now()) / 1000),
    );
    return identity;
  }

  private askKeystone(subject: string, service: string): Promise<Response> {
    const url = `${this.validationV3}/auth/tokens`;
    return this.call(url, { headers: { "X-Auth-Token": service, "X-Subject-Token": subject } });
  }

  /**
   * One request to Keystone, bounded in time. Unreachable, too slow or a 5xx is KeystoneUnreachable (503, and
   * memory may answer), never a 500; any other answer means Keystone is back.
   */
  private async call(url: string, init: RequestInit): Promise<Response> {
    const seconds = this.opts.timeout ?? KEYSTONE_AUTHTOKEN.fields.timeout.default;
    let res: Response;
    try {
      const got = await this.send(url, { ...init, signal: AbortSignal.timeout(seconds * 1000) });
      // The body is small: read it under the same deadline so a stalled one fails here too.
      const body = await got.arrayBuffer();
      res = new Response([204, 205, 304].includes(got.status) ? null : body, {
        status: got.status,
        headers: got.headers,
      });
    } catch (err) {
      throw this.down(`Keystone at ${this.v3} could not be reached within ${seconds} s: ${(err as Error).message}`);
    }
    if (res.status >= 500) throw this.down(`Keystone at ${this.v3} answered ${res.status}.`);
    this.up();
    return res;
  }

  /** Notes a failed request to Keystone (one log line when an outage begins); the error to throw. */
  private down(message: string): KeystoneUnreachable {
    const o = this.outage;
    if (o.reachable) {
      o.reachable = false;
      o.downSince = Date.now();
      o.outages++;
      this.log(
        "WARNING",
        `Keystone is unreachable: tokens validated before are accepted from memory until they expire (${this.memory.size} remembered); others get 503. ${message}`,
      );
    }
    return new KeystoneUnreachable(message);
  }

  /** Notes an answer from Keystone (one log line when it ends an outage). */
  private up(): void {
    const o = this.outage;
    o.lastAnswer = Date.now();
    if (o.reachable) return;
    const seconds = Math.round((Date.now() - (o.downSince ?? Date.now())) / 1000);
    o.reachable = true;
    o.downSince = null;
    this.log(
      "INFO",
      `Keystone answers again after ${seconds} s unreachable; ${o.fromMemory} requests were authenticated from memory so far.`,
    );
  }
}
