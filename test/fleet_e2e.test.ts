// A fleet of two nodes in front of the real Glance 25.1, with Keystone tokens and python-glanceclient (e2e/start.sh runs them).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { suite } from "uvu";
import type { KeystoneOptions } from "../src/auth/keystone.ts";
import { startOnPort } from "./fleet_helpers.ts";
import { bytes, type Running, tempDir, waitFor } from "./helpers.ts";
import { type MariaDb, startMariaDb } from "./mariadb.ts";
import { freePort } from "../support/processes.ts";

const BASE = process.env.E2E_BASE ?? "/tmp/gcn-e2e";

function readEnv(): Record<string, string> {
  const file = join(BASE, "env");
  if (!existsSync(file)) throw new Error(`${file} is missing: start Keystone and Glance first with e2e/start.sh (.ci/run does)`);
  return Object.fromEntries(
    readFileSync(file, "utf8").split("\n").map((l) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l.trim())).filter((m) => m !== null).map((m) => [m![1], m![2]]),
  );
}

async function token(env: Record<string, string>, who: "ADMIN" | "DEMO"): Promise<string> {
  const res = await fetch(`${env.KEYSTONE_URL.replace(/\/$/, "")}/auth/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: { methods: ["password"], password: { user: { name: env[`${who}_USER`], domain: { name: env.DOMAIN }, password: env[`${who}_PASSWORD`] } } },
        scope: { project: { name: env[`${who}_PROJECT`], domain: { name: env.DOMAIN } } },
      },
    }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 201);
  return res.headers.get("x-subject-token")!;
}

/** python-glanceclient with a HOME of its own (4.1 breaks on its cached schema). */
async function glance(url: string, tok: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const home = await mkdtemp(join(tmpdir(), "gcn-glance-home-"));
  try {
    return await new Promise((resolve) => {
      execFile(
        "/usr/bin/glance",
        ["--os-image-url", url, "--os-auth-token", tok, ...args],
        { env: { HOME: home, PATH: "/usr/bin:/bin", NO_PROXY: "127.0.0.1,localhost" }, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ).stdin?.end();
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

const upstreamDataReads = (id: string) =>
  readFileSync(join(BASE, "log", "glance-api.log"), "utf8").split("\n").filter((l) => l.includes(`GET /v2/images/${id}/file`)).length;

const t = suite("fleet e2e");

t("two nodes of a site in front of Glance: one fan-out reads Glance once; nodes/{id}; a delete through one node empties both", async () => {
  const env = readEnv();
  const db: MariaDb = await startMariaDb();
  const keystone: KeystoneOptions = {
    authUrl: env.KEYSTONE_URL,
    username: env.SERVICE_USER,
    password: env.SERVICE_PASSWORD,
    projectName: env.SERVICE_PROJECT,
    userDomainName: env.DOMAIN,
    projectDomainName: env.DOMAIN,
    tokenCacheTime: 0,
  };
  const nodes: Running[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      nodes.push(
        await startOnPort(port, {
          auth: "keystone",
          keystone,
          upstream: { url: env.GLANCE_URL, metadataCacheTime: 0 },
          fleet: { databaseUrl: db.url, selfUrl: `http://127.0.0.1:${port}`, site: "a", secret: "e2e", pollInterval: 0.2, heartbeatInterval: 1, staleAfter: 60 },
        }),
      );
    }
    const admin = await token(env, "ADMIN");
    const demo = await token(env, "DEMO");
    const as = (tok: string) => ({ "X-Auth-Token": tok });
    const dir = await tempDir();
    await writeFile(join(dir, "img.raw"), bytes(2 << 20));
    const created = await glance(nodes[0].url, admin, "image-create", "--name", "fleet-e2e", "--disk-format", "raw", "--container-format", "bare", "--file", join(dir, "img.raw"));
    assert.equal(created.code, 0, created.stderr);
    const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})/.exec(created.stdout)![1];
    await rm(dir, { recursive: true, force: true });

    // a member: the admin's private image is not found for it; a fleet prune is refused by policy
    assert.equal((await nodes[1].req("/v2/x-fleet/jobs", { as: as(demo), method: "POST", body: JSON.stringify({ image_id: id }) })).status, 404);
    assert.equal((await nodes[1].req("/v2/x-fleet/jobs", { as: as(demo), method: "POST", body: JSON.stringify({ action: "prune" }) })).status, 403);
    const res = await nodes[1].req("/v2/x-fleet/jobs", { as: as(admin), method: "POST", body: JSON.stringify({ image_id: id }) });
    assert.equal(res.status, 202);
    const jobId = ((await res.json()) as { id: string }).id;
    await waitFor("job done", async () => {
      const job = (await (await nodes[0].req(`/v2/x-fleet/jobs/${jobId}`, { as: as(admin) })).json()) as { state: string; targets: { state: string }[] };
      return job.state === "done" && job.targets.every((t) => t.state === "cached");
    }, 60_000);
    assert.equal(upstreamDataReads(id), 1, "the site read Glance once; the second node filled from its peer");
    for (const node of nodes) {
      const listed = await glance(node.url, admin, "cache-list");
      assert.match(listed.stdout, new RegExp(`${id}\\s*\\|\\s*cached`));
    }
    const where = await nodes[0].req(`/v2/cache/nodes/${id}`, { as: as(admin) });
    assert.deepEqual(((await where.json()) as string[]).sort(), nodes.map((n) => n.url).sort());
    assert.equal((await nodes[0].req(`/v2/cache/nodes/${id}`, { as: as(demo) })).status, 403);

    const deleted = await glance(nodes[0].url, admin, "image-delete", id);
    assert.equal(deleted.code, 0, deleted.stderr);
    await waitFor("gone from the other node", async () => {
      const listing = (await (await nodes[1].req("/v2/cache", { as: as(admin) })).json()) as { cached_images: { image_id: string }[] };
      return !listing.cached_images.some((c) => c.image_id === id);
    }, 30_000);
  } finally {
    for (const n of nodes) await n.close();
    await db.close();
  }
});

t.run();
