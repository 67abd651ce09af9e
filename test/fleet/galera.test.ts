// The three-node fleet on a real three-member Galera cluster, each node on another member: a concurrent start migrates
// once, fan-out reaches every node, a member killed mid-fan-out and restarted, deletes across members.
// test-needs: mariadb galera
import assert from "node:assert/strict";
import { suite } from "uvu";
import mysql from "mysql2/promise";
import type { ImageSource } from "../../src/images/source.ts";
import type { FleetOptions } from "../../src/fleet/fleet.ts";
import { SCHEMA_VERSION } from "../../src/fleet/database.ts";
import { ADMIN, bytes, createImage, listing, md5, type Running, start, waitFor } from "../helpers/helpers.ts";
import { type Galera, startGalera } from "../helpers/galera.ts";
import { ImageGates } from "../helpers/gate.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { freePort } from "../../support/processes.ts";

interface Job {
  id: string;
  state: "running" | "done";
  targets: { node: string; state: string; bytes: number }[];
}

const ctx = {} as {
  galera: Galera;
  origin: Running;
  gate: ImageGates;
  nodes: Running[];
  /** Each node's log lines. */
  logs: string[][];
};
const t = suite("fleet on Galera");

/** Node i on member i, the other members after it in order. */
const fleetOpts = (i: number, url: string, site: string): FleetOptions => {
  const members = ctx.galera.members;
  const others = [1, 2].map((k) => members[(i + k) % members.length].port);
  return {
    databaseUrl: members[i].url.replace("mysql://", "mysql+pymysql://"),
    databaseHosts: others.map((p) => `127.0.0.1:${p}`).join(","),
    databaseFailback: 1,
    selfUrl: url,
    site,
    secret: "galera-test-secret",
    pollInterval: 0.1,
    heartbeatInterval: 0.5,
    staleAfter: 60,
  };
};

async function startNode(i: number, site: string): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const lines: string[] = (ctx.logs[i] = []);
  return await startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: fleetOpts(i, url, site),
    cacheSource: (s: ImageSource) => ctx.gate.wrap(s),
    log: (line: string) => lines.push(line),
  });
}

/** A query on member i, as a client of that member alone. */
async function onMember<T>(i: number, sql: string, values: unknown[] = []): Promise<T> {
  const conn = await mysql.createConnection({ uri: ctx.galera.members[i].url });
  try {
    await conn.query("SET SESSION wsrep_sync_wait = 1");
    const [rows] = await conn.query(sql, values);
    return rows as T;
  } finally {
    await conn.end();
  }
}

const fanOut = async (node: Running, imageId: string): Promise<Job> => {
  const res = await node.req("/v2/x-fleet/jobs", {
    as: ADMIN,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image_id: imageId }),
  });
  assert.equal(res.status, 202);
  return (await res.json()) as Job;
};

const job = async (node: Running, id: string) => (await (await node.req(`/v2/x-fleet/jobs/${id}`)).json()) as Job;

const jobDone = (node: Running, id: string, timeoutMs = 60_000) =>
  waitFor(`job ${id} done`, async () => {
    const j = await job(node, id);
    return j.state === "done" && j;
  }, timeoutMs);

const cachedOn = async (node: Running, id: string) =>
  (await listing(node)).cached_images.some((c) => c.image_id === id);

async function newImage(size = 256 * 1024): Promise<{ id: string; data: Uint8Array }> {
  const data = bytes(size);
  return { id: await createImage(ctx.origin, data), data };
}

t.before(async () => {
  ctx.galera = await startGalera(3);
  ctx.origin = await start({ auth: "noauth" });
  ctx.gate = new ImageGates();
  ctx.logs = [];
  // All three at the same moment, each against another member of a database no node has migrated.
  ctx.nodes = await Promise.all([startNode(0, "a"), startNode(1, "a"), startNode(2, "b")]);
});

t.after(async () => {
  for (const n of [...(ctx.nodes ?? []), ctx.origin]) await n?.close().catch(() => {});
  await ctx.galera?.close();
});

t("nodes started together on different members migrate once: each version applied once, logged once", async () => {
  for (let i = 0; i < 3; i++) {
    const rows = await onMember<{ version: number }[]>(i, "SELECT version FROM fleet_migrations ORDER BY version");
    assert.deepEqual(rows.map((r) => r.version), Array.from({ length: SCHEMA_VERSION }, (_, k) => k + 1));
  }
  const applied = ctx.logs.flat().map((l) => /applied migration (\d+)/.exec(l)?.[1]).filter(Boolean).map(Number);
  assert.deepEqual(applied.sort((a, b) => a - b), Array.from({ length: SCHEMA_VERSION }, (_, k) => k + 1));
  const { nodes } = (await (await ctx.nodes[2].req("/v2/x-fleet/nodes")).json()) as {
    nodes: { url: string; status: string }[];
  };
  assert.deepEqual(nodes.map((n) => [n.url, n.status]).sort(), ctx.nodes.map((n) => [n.url, "alive"]).sort());
});

t("fan-out through one member caches on every node, each on its own member", async () => {
  const { id, data } = await newImage(1 << 20);
  const created = await fanOut(ctx.nodes[0], id);
  const done = await jobDone(ctx.nodes[2], created.id);
  assert.deepEqual(done.targets.map((t) => t.state), ["cached", "cached", "cached"]);
  for (const node of ctx.nodes) assert.equal(await cachedOn(node, id), true);
  const body = new Uint8Array(await (await ctx.nodes[1].req(`/v2/images/${id}/file`)).arrayBuffer());
  assert.equal(md5(body), md5(data));
});

t(
  "a member killed with SIGKILL mid-fan-out: its node moves to the next member and the job completes everywhere",
  async () => {
    const { id, data } = await newImage(2 << 20);
    const gate = ctx.gate.arm(id);
    const created = await fanOut(ctx.nodes[2], id);
    // Fills have begun and are held after their first chunk.
    await gate.entered;
    await ctx.galera.kill(1);
    ctx.gate.release(id);
    const done = await jobDone(ctx.nodes[0], created.id);
    assert.deepEqual(done.targets.map((t) => [t.state, t.bytes]), ctx.nodes.map(() => ["cached", data.length]));
    for (const node of ctx.nodes) assert.equal(await cachedOn(node, id), true);
    const port = ctx.galera.members[1].port;
    assert.ok(
      ctx.logs[1].some((l) => l.includes(`127.0.0.1:${port} failed`) && l.includes("moving to 127.0.0.1:")),
      "node 1 moved off its member",
    );
    assert.equal(ctx.nodes[1].app.fleet!.databaseUp, true);
  },
);

t("the killed member restarts and rejoins; its node goes back to it and the fleet goes on", async () => {
  await ctx.galera.start(1);
  const port = ctx.galera.members[1].port;
  await waitFor(
    "node 1 back on its member",
    () => Promise.resolve(ctx.logs[1].some((l) => l.includes(`back on 127.0.0.1:${port}`))),
    30_000,
  );
  const { id } = await newImage(512 * 1024);
  const created = await fanOut(ctx.nodes[1], id);
  const done = await jobDone(ctx.nodes[1], created.id);
  assert.deepEqual(done.targets.map((t) => t.state), ["cached", "cached", "cached"]);
  // The rejoined member has every row: the job as the other members see it.
  const targets = await onMember<{ state: string }[]>(1, "SELECT state FROM fleet_job_targets WHERE job_id = ?", [
    created.id,
  ]);
  assert.deepEqual(targets.map((r) => r.state), ["cached", "cached", "cached"]);
});

t("an image deleted through a node on one member leaves the nodes on the others", async () => {
  const { id } = await newImage(64 * 1024);
  await jobDone(ctx.nodes[0], (await fanOut(ctx.nodes[0], id)).id);
  assert.equal((await ctx.nodes[2].req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
  for (const node of ctx.nodes) {
    await waitFor(`${id} gone from ${node.url}`, async () => !(await cachedOn(node, id)), 20_000);
  }
});

t.run();
