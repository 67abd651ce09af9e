// Keystone v3: the node's own service token, and validation of callers' tokens (cached briefly).
import { unauthenticated } from "../errors.ts";
import { type Authenticator, type Identity, makeIdentity } from "./identity.ts";

export interface KeystoneOptions {
  /** [keystone_authtoken] auth_url, with or without /v3 */
  authUrl: string;
  /** [keystone_authtoken] www_authenticate_uri: where 401s send clients (default auth_url) */
  wwwAuthenticateUri?: string;
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  /** seconds a validated token is trusted without asking Keystone again */
  tokenCacheTime: number;
}

interface TokenBody {
  token: {
    expires_at: string;
    user: { id: string; name: string };
    project?: { id: string };
    roles?: { name: string }[];
  };
}

const MAX_CACHED = 10_000;

export class KeystoneClient {
  private service: { token: string; until: number } | undefined;
  private servicePending: Promise<string> | undefined;
  private readonly validated = new Map<string, { identity: Identity; until: number }>();
  readonly v3: string;

  constructor(readonly opts: KeystoneOptions) {
    this.v3 = `${opts.authUrl.replace(/\/+$/, "").replace(/\/v3$/, "")}/v3`;
  }

  /** The node's own token (its [keystone_authtoken] user), renewed a minute before it expires. */
  async serviceToken(): Promise<string> {
    if (this.service && Date.now() < this.service.until) return this.service.token;
    this.servicePending ??= this.issueServiceToken().finally(() => (this.servicePending = undefined));
    return this.servicePending;
  }

  private async issueServiceToken(): Promise<string> {
    const o = this.opts;
    const res = await fetch(`${this.v3}/auth/tokens`, {
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
      throw new Error(`keystone refused the node's service credentials (${o.username}): HTTP ${res.status}`);
    }
    const expires = Date.parse(body.token.expires_at);
    this.service = { token, until: Math.min(expires - 60_000, Date.now() + 3_600_000) };
    return token;
  }

  /** The identity behind a caller's token, or undefined if Keystone says it is not valid. */
  async validate(token: string): Promise<Identity | undefined> {
    const hit = this.validated.get(token);
    if (hit && Date.now() < hit.until) return hit.identity;
    this.validated.delete(token);
    let res = await this.askKeystone(token, await this.serviceToken());
    if (res.status === 401) {
      this.service = undefined; // our own token may have been revoked: one retry with a new one
      res = await this.askKeystone(token, await this.serviceToken());
    }
    if (res.status === 404 || res.status === 401) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) throw new Error(`keystone token validation: HTTP ${res.status}`);
    const { token: t } = (await res.json()) as TokenBody;
    const identity = makeIdentity(t.user.id, t.project?.id ?? null, (t.roles ?? []).map((r) => r.name), token);
    const until = Math.min(Date.now() + this.opts.tokenCacheTime * 1000, Date.parse(t.expires_at));
    if (this.validated.size >= MAX_CACHED) this.validated.delete(this.validated.keys().next().value!);
    this.validated.set(token, { identity, until });
    return identity;
  }

  private askKeystone(subject: string, service: string): Promise<Response> {
    return fetch(`${this.v3}/auth/tokens`, { headers: { "X-Auth-Token": service, "X-Subject-Token": subject } });
  }
}

/** auth_strategy = keystone: every /v2 call needs a valid X-Auth-Token. */
export function keystoneAuth(client: KeystoneClient): Authenticator {
  const challenge = `Keystone uri="${client.opts.wwwAuthenticateUri ?? client.opts.authUrl}"`;
  return {
    async authenticate(request) {
      const token = request.headers.get("x-auth-token");
      const identity = token ? await client.validate(token) : undefined;
      if (!identity) throw unauthenticated(challenge);
      return identity;
    },
  };
}
