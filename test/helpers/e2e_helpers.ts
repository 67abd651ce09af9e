// Shared by the end-to-end tests: the env written by e2e/start.sh, Keystone tokens, a node in front of the real
// Glance, Glance's log. python-glanceclient is run by glanceclient.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { AppOptions } from "../../src/app.ts";
import { type Running, start } from "./helpers.ts";

export const BASE = process.env.E2E_BASE ?? "/tmp/gcn-e2e";

export function readEnv(): Record<string, string> {
  const file = join(BASE, "env");
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: start Keystone and Glance first with e2e/start.sh (.ci/run does)`);
  }
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** A project-scoped token, and the project's id. */
export async function scopedToken(
  env: Record<string, string>,
  who: "ADMIN" | "DEMO",
): Promise<{ token: string; projectId: string }> {
  const res = await fetch(`${env.KEYSTONE_URL.replace(/\/$/, "")}/auth/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ["password"],
          password: {
            user: { name: env[`${who}_USER`], domain: { name: env.DOMAIN }, password: env[`${who}_PASSWORD`] },
          },
        },
        scope: { project: { name: env[`${who}_PROJECT`], domain: { name: env.DOMAIN } } },
      },
    }),
  });
  assert.equal(res.status, 201, `token for ${who}`);
  const body = (await res.json()) as { token: { project: { id: string } } };
  return { token: res.headers.get("x-subject-token")!, projectId: body.token.project.id };
}

export async function token(env: Record<string, string>, who: "ADMIN" | "DEMO"): Promise<string> {
  return (await scopedToken(env, who)).token;
}

/** The node's options in front of the e2e Glance, with its service user from the e2e Keystone. */
export function keystoneOptions(env: Record<string, string>): NonNullable<AppOptions["keystone"]> {
  return {
    authUrl: env.KEYSTONE_URL,
    username: env.SERVICE_USER,
    password: env.SERVICE_PASSWORD,
    projectName: env.SERVICE_PROJECT,
    userDomainName: env.DOMAIN,
    projectDomainName: env.DOMAIN,
    tokenCacheTime: 0,
  };
}

/** A node in front of the e2e Glance with Keystone auth, reading Glance's metadata afresh on every request. */
export function startInFront(env: Record<string, string>): Promise<Running> {
  return start({
    auth: "keystone",
    upstream: { url: env.GLANCE_URL, metadataCacheTime: 0 },
    keystone: keystoneOptions(env),
  });
}

/** upstream Glance's own log (its lines name the request ids it was given). */
export function glanceLog(): string {
  return readFileSync(join(BASE, "log", "glance-api.log"), "latin1");
}

/** How many times upstream Glance has served an image's data, from its own log. */
export function upstreamDataReads(id: string): number {
  return glanceLog().split("\n").filter((l) => l.includes(`GET /v2/images/${id}/file`)).length;
}
