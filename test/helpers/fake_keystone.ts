// A fake Keystone v3 on loopback that counts what it is asked: tokens with roles, and a catalog with two identity endpoints.
import type { KeystoneOptions } from "../../src/auth/keystone.ts";
import { type Loopback, serveLoopback } from "./loopback.ts";

/** A fake Keystone: `tokens` maps each valid token to its roles; `validations` counts, per path prefix and token. */
export interface FakeKeystone extends Loopback {
  tokens: Map<string, string[]>;
  /** `${prefix} ${token}` to how often it was validated there ("" is /v3, "/internal" the catalog's internal one). */
  validations: Map<string, number>;
  /** Validations of `token` anywhere. */
  asked(token: string): number;
}

/**
 * Serves /v3/auth/tokens and /internal/v3/auth/tokens; its catalog names the first as the public identity endpoint
 * of RegionOne and the second as the internal one of RegionTwo.
 */
export async function fakeKeystone(tokens: Record<string, string[]>): Promise<FakeKeystone> {
  const validations = new Map<string, number>();
  const known = new Map(Object.entries(tokens));
  let base = "";
  const server = await serveLoopback((request) => {
    const path = new URL(request.url).pathname;
    const prefix = path.replace(/\/v3\/auth\/tokens$/, "");
    if (!["", "/internal"].includes(prefix) || prefix === path) return new Response("", { status: 404 });
    if (request.method === "POST") {
      const catalog = [{
        type: "identity",
        endpoints: [
          { interface: "public", region_id: "RegionOne", region: "RegionOne", url: `${base}/v3` },
          { interface: "internal", region_id: "RegionTwo", region: "RegionTwo", url: `${base}/internal/v3/` },
        ],
      }];
      const token = { expires_at: "2999-01-01T00:00:00Z", user: { id: "svc", name: "svc" }, catalog };
      return Response.json({ token }, { status: 201, headers: { "X-Subject-Token": "node-token" } });
    }
    const subject = request.headers.get("x-subject-token") ?? "";
    const key = `${prefix} ${subject}`;
    validations.set(key, (validations.get(key) ?? 0) + 1);
    const roles = known.get(subject);
    if (!roles) return Response.json({ error: { code: 404 } }, { status: 404 });
    return Response.json({
      token: {
        expires_at: "2999-01-01T00:00:00Z",
        user: { id: `user-${subject}`, name: subject },
        project: { id: "p1" },
        roles: roles.map((name) => ({ name })),
      },
    });
  });
  base = server.url;
  const asked = (token: string) =>
    [...validations].filter(([k]) => k.endsWith(` ${token}`)).reduce((n, [, v]) => n + v, 0);
  return { ...server, tokens: known, validations, asked };
}

/** [keystone_authtoken] for a fake Keystone at `url`. */
export const fakeKeystoneOptions = (url: string, more: Partial<KeystoneOptions> = {}): KeystoneOptions => ({
  authUrl: `${url}/v3`,
  username: "svc",
  password: "pw",
  projectName: "service",
  userDomainName: "Default",
  projectDomainName: "Default",
  tokenCacheTime: 0,
  timeout: 2,
  ...more,
});
