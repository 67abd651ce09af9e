// Shared by the end-to-end tests: the env written by e2e/start.sh, Keystone tokens, python-glanceclient, Glance's log.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
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

/** python-glanceclient, with a HOME of its own per call (4.1 breaks on its cached schema). */
export async function glance(
  url: string,
  tok: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const home = await mkdtemp(join(tmpdir(), "gcn-glance-home-"));
  try {
    return await new Promise((resolve) => {
      execFile(
        "/usr/bin/glance",
        ["--os-image-url", url, "--os-auth-token", tok, ...args],
        {
          env: { HOME: home, PATH: "/usr/bin:/bin", NO_PROXY: "127.0.0.1,localhost" },
          timeout: 120_000,
          maxBuffer: 1 << 20,
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ).stdin?.end();
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** glance, which must succeed; its stdout. */
export async function glanceOk(url: string, tok: string, ...args: string[]): Promise<string> {
  const r = await glance(url, tok, ...args);
  assert.equal(r.code, 0, `glance ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A field of glanceclient's table output. */
export function field(stdout: string, name: string): string | undefined {
  return new RegExp(`^\\|\\s*${name}\\s*\\|\\s*(.*?)\\s*\\|$`, "m").exec(stdout)?.[1];
}

/** upstream Glance's own log (its lines name the request ids it was given). */
export function glanceLog(): string {
  return readFileSync(join(BASE, "log", "glance-api.log"), "latin1");
}

/** How many times upstream Glance has served an image's data, from its own log. */
export function upstreamDataReads(id: string): number {
  return glanceLog().split("\n").filter((l) => l.includes(`GET /v2/images/${id}/file`)).length;
}
