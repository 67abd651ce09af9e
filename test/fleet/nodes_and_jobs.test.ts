// A fleet of three nodes (two in site a, one in site b) sharing a private MariaDB, in front of a fourth node's store.
// test-needs: mariadb
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { suite } from "uvu";
import mysql from "mysql2/promise";
import type { ImageSource } from "../../src/images/source.ts";
import type { FleetOptions } from "../../src/fleet/fleet.ts";
import { setCacheMaxSizeForTests } from "../../src/cache/image_cache.ts";
import { migrate, openPool } from "../../src/fleet/database.ts";
import { PEER_AUTH_HEADER, peerPath, peerRead, peerToken } from "../../src/fleet/peer_auth.ts";
import { ADMIN, bytes, createImage, listing, md5, MEMBER, type Running, start, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { freePort } from "../../support/processes.ts";
import { ImageGates } from "../helpers/gate.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";

const SECRET = "fleet-test-secret";

interface Job {
  id: string;
  state: "running" | "done";
  targets: { node: string; site: string; state: string; bytes: number; total: number | null; reason: string | null }[];
}

interface Ctx {
  db: MariaDb;
  origin: Running;
  a1: Running;
  a2: Running;
  b1: Running;
  gate: ImageGates;
  sql: mysql.Pool;
}

const ctx = {} as Ctx;
const fleetOpts = (db: MariaDb, url: string, site: string): FleetOptions => ({
  databaseUrl: db.url.replace("mysql://", "mysql+pymysql://"),
  selfUrl: url,
  site,
  secret: SECRET,
  pollInterval: 0.1,
  heartbeatInterval: 0.5,
  staleAfter: 60,
});

/** A node of the fleet on a port chosen before it starts (its URL is its identity in the fleet). */
async function startNode(site: string, extra: Record<string, unknown> = {}): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const node = await startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: fleetOpts(ctx.db, url, site),
    ...extra,
  });
  assert.equal(node.url, url);
  return node;
}

const fleetNodes = () => [ctx.a1, ctx.a2, ctx.b1];
/** Reads of image data at the origin: from its store, or hits on its own cache. */
const originReads = (id: string) =>
  ctx.origin.app.cache.stats.sourceReads + (ctx.origin.app.cache.entry(id)?.hits ?? 0);
const upstreamReads = () => fleetNodes().reduce((n, node) => n + node.app.fleet!.reads.upstreamReads, 0);

async function fanOut(node: Running, body: unknown, as = ADMIN): Promise<Response> {
  return node.req("/v2/x-fleet/jobs", {
    as,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function jobDone(node: Running, id: string): Promise<Job> {
  return waitFor(`job ${id} done`, async () => {
    const job = (await (await node.req(`/v2/x-fleet/jobs/${id}`)).json()) as Job;
    return job.state === "done" && job;
  }, 30_000);
}

async function newImage(size = 256 * 1024): Promise<{ id: string; data: Uint8Array }> {
  const data = bytes(size);
  return { id: await createImage(ctx.origin, data), data };
}

const cachedOn = async (node: Running, id: string) =>
  (await listing(node)).cached_images.some((c) => c.image_id === id);

/** Registers a node that is not one of ours (a fake peer, a stale node) straight in the database. */
async function fakeNode(
  url: string,
  site: string,
  heartbeatAgo: number,
  holds: { id: string; size: number }[] = [],
): Promise<number> {
  await ctx.sql.query(
    `INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES (?, ?, 'active', NOW(3), NOW(3) - INTERVAL ? SECOND)`,
    [url, site, heartbeatAgo],
  );
  const [[row]] = (await ctx.sql.query("SELECT id FROM fleet_nodes WHERE url = ?", [url])) as unknown as [
    { id: number }[],
  ];
  for (const h of holds) {
    await ctx.sql.query(
      "INSERT INTO fleet_entries (node_id, image_id, state, size, bytes) VALUES (?, ?, 'cached', ?, ?)",
      [row.id, h.id, h.size, h.size],
    );
  }
  return row.id;
}

/** An HTTP server playing a peer: `respond` writes whatever it likes for the image. */
async function fakePeer(
  respond: (res: import("node:http").ServerResponse) => void,
): Promise<{ url: string; server: Server; requests: number }> {
  const peer = { url: "", server: createServer(), requests: 0 };
  peer.server.on("request", (_req, res) => {
    peer.requests++;
    respond(res);
  });
  peer.server.listen(0, "127.0.0.1");
  await once(peer.server, "listening");
  peer.url = `http://127.0.0.1:${(peer.server.address() as { port: number }).port}`;
  return peer;
}

// ---- a node alone: the v2.18 cache calls ----

const alone = suite("fleet: a node without a fleet database");

alone("POST /v2/cache/clean answers 200 empty, prune 200 with counts, nodes/{id} 409; admin only", async () => {
  const node = await start();
  try {
    const clean = await node.req("/v2/cache/clean", { method: "POST" });
    assert.equal(clean.status, 200);
    assert.equal(await clean.text(), "");
    const data = bytes(5000);
    const id = await createImage(node, data);
    // Over once its own prune after the commit has looked at the size: the test's prunes below are the only ones.
    const over = new Promise<void>((resolve) =>
      node.app.cache.events.on((e) => void (e.type === "fill_finished" && e.id === id && resolve()))
    );
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await over;
    await waitFor("cached", () => cachedOn(node, id));
    let prune = await node.req("/v2/cache/prune", { method: "POST" });
    assert.equal(prune.status, 200);
    assert.equal(prune.headers.get("content-type"), "application/json");
    assert.deepEqual(await prune.json(), { total_files_pruned: 0, total_bytes_pruned: 0 });
    // Over its size (as after a restart with a smaller image_cache_max_size): prune evicts and says how much.
    setCacheMaxSizeForTests(node.app.cache, 100);
    prune = await node.req("/v2/cache/prune", { method: "POST" });
    assert.deepEqual(await prune.json(), { total_files_pruned: 1, total_bytes_pruned: 5000 });
    assert.equal(await cachedOn(node, id), false);

    const nodes = await node.req(`/v2/cache/nodes/${id}`, { headers: { Accept: "application/json" } });
    assert.equal(nodes.status, 409);
    assert.match(((await nodes.json()) as { message: string }).message, /^Centralized caching is not enabled/);
    for (
      const [path, method] of [["/v2/cache/clean", "POST"], ["/v2/cache/prune", "POST"], [
        `/v2/cache/nodes/${id}`,
        "GET",
      ]]
    ) {
      assert.equal((await node.req(path, { method, as: MEMBER })).status, 403, path);
    }
    assert.equal((await node.req("/v2/cache/clean", { method: "GET" })).headers.get("allow"), "POST");
    assert.equal((await node.req(`/v2/cache/nodes/${id}`, { method: "DELETE" })).headers.get("allow"), "GET");
    const job = await node.req("/v2/x-fleet/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_id: id }),
    });
    assert.equal(job.status, 409);
    const versions = (await (await fetch(`${node.url}/versions`)).json()) as {
      versions: { id: string; status: string }[];
    };
    assert.deepEqual(versions.versions[0], { ...versions.versions[0], id: "v2.18", status: "CURRENT" });
  } finally {
    await node.close();
  }
});

alone.run();

// ---- the fleet ----

const t = suite("fleet");

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.sql = openPool(ctx.db.url);
  ctx.origin = await start({ auth: "noauth" });
  ctx.gate = new ImageGates();
  ctx.a1 = await startNode("a");
  ctx.a2 = await startNode("a");
  ctx.b1 = await startNode("b", { cacheSource: (s: ImageSource) => ctx.gate.wrap(s) });
});

t.after(async () => {
  for (const n of [ctx.a1, ctx.a2, ctx.b1, ctx.origin]) await n?.close().catch(() => {});
  await ctx.sql?.end().catch(() => {});
  await ctx.db?.close();
});

t("migrations: two nodes migrating a fresh database at once apply each step once", async () => {
  const admin = await mysql.createConnection({ host: "127.0.0.1", port: ctx.db.port, user: "root" });
  await admin.query("CREATE DATABASE race");
  await admin.end();
  const url = `mysql://root@127.0.0.1:${ctx.db.port}/race`;
  const pools = [openPool(url), openPool(url)];
  try {
    const applied = await Promise.all(pools.map((p) => migrate(p, () => {})));
    assert.deepEqual(applied.flat().sort(), [1, 2, 3, 4, 5, 6]);
    const [rows] = (await pools[0].query("SELECT version FROM fleet_migrations")) as unknown as [{ version: number }[]];
    assert.deepEqual(rows.map((r) => r.version).sort(), [1, 2, 3, 4, 5, 6]);
  } finally {
    for (const p of pools) await p.end();
  }
});

t("every node is registered under its URL and site, alive", async () => {
  const res = await ctx.a1.req("/v2/x-fleet/nodes");
  assert.equal(res.status, 200);
  const { nodes } = (await res.json()) as { nodes: { url: string; site: string; status: string }[] };
  const ours = nodes.filter((n) => fleetNodes().some((f) => f.url === n.url));
  assert.deepEqual(
    ours.map((n) => [n.url, n.site, n.status]).sort(),
    [
      [ctx.a1.url, "a", "alive"],
      [ctx.a2.url, "a", "alive"],
      [ctx.b1.url, "b", "alive"],
    ].sort(),
  );
});

t("fan-out to every node: one request, each site reads the upstream once, peers fill the rest", async () => {
  const { id, data } = await newImage(3 << 20);
  const readsBefore = originReads(id);
  const upstreamBefore = upstreamReads();
  const res = await fanOut(ctx.b1, { image_id: id });
  assert.equal(res.status, 202);
  const created = (await res.json()) as Job;
  assert.equal(res.headers.get("location"), `/v2/x-fleet/jobs/${created.id}`);
  assert.equal(created.targets.length, 3);
  const job = await jobDone(ctx.a2, created.id);
  assert.deepEqual(
    job.targets.map((t) => [t.node, t.state, t.bytes, t.total]).sort(),
    fleetNodes().map((n) => [n.url, "cached", data.length, data.length]).sort(),
  );
  for (const node of fleetNodes()) assert.equal(await cachedOn(node, id), true);
  // site a: one upstream read and one peer read; site b: one upstream read
  assert.equal(upstreamReads() - upstreamBefore, 2);
  // (the origin may serve both from one fill of its own, or the second from its cache)
  assert.ok(originReads(id) - readsBefore <= 2);
  const peerReads = ctx.a1.app.fleet!.reads.peerReads + ctx.a2.app.fleet!.reads.peerReads;
  assert.equal(peerReads, 1);
  // the peer's copy was verified like any other: downloads give the right bytes
  const body = new Uint8Array(await (await ctx.a2.req(`/v2/images/${id}/file`)).arrayBuffer());
  assert.equal(md5(body), md5(data));

  const nodes = await ctx.a1.req(`/v2/cache/nodes/${id}`);
  assert.equal(nodes.status, 200);
  assert.deepEqual(((await nodes.json()) as string[]).sort(), fleetNodes().map((n) => n.url).sort());
  const view = (await (await ctx.b1.req(`/v2/x-fleet/view?image_id=${id}`)).json()) as {
    images: Record<string, { cached: string[]; queued: string[]; filling: unknown[] }>;
    nodes: { url: string; cache_size: number; hits: number; heartbeat_age: number; status: string }[];
  };
  assert.deepEqual(view.images[id].cached.sort(), fleetNodes().map((n) => n.url).sort());
  assert.deepEqual(view.images[id].filling, []);
  // node sizes travel with heartbeats
  await waitFor("a1's size in the view", async () => {
    const v = (await (await ctx.b1.req("/v2/x-fleet/view?limit=1")).json()) as typeof view;
    const a1 = v.nodes.find((n) => n.url === ctx.a1.url)! as unknown as { cache_size: number; cached_images: number };
    return a1.cache_size >= data.length && a1.cached_images >= 1;
  });
  // hits are batched with heartbeats, into the node's total and the entry's row
  await waitFor("a2's hit in the shared rows", async () => {
    const [rows] = (await ctx.sql.query(
      "SELECT e.hits AS entry, n.hits AS node FROM fleet_entries e JOIN fleet_nodes n ON n.id = e.node_id WHERE n.url = ? AND e.image_id = ?",
      [ctx.a2.url, id],
    )) as unknown as [{ entry: number; node: number }[]];
    return rows[0]?.entry === 1 && rows[0].node >= 1;
  });
  const metrics = await (await ctx.a2.req("/metrics")).text();
  assert.match(metrics, /^glance_cache_fleet_database_up 1$/m);
  assert.match(metrics, /^glance_cache_fleet_nodes\{status="alive"\} [3-9]$/m);
  assert.match(
    metrics,
    new RegExp(`^glance_cache_fleet_node_size_bytes\\{node="${ctx.a1.url}",site="a",status="alive"\\} \\d+$`, "m"),
  );
});

t("fan-out to one site caches there only", async () => {
  const { id } = await newImage();
  const res = await fanOut(ctx.a1, { image_id: id, site: "b" });
  assert.equal(res.status, 202);
  const job = await jobDone(ctx.a1, ((await res.json()) as Job).id);
  assert.deepEqual(job.targets.map((t) => [t.node, t.state]), [[ctx.b1.url, "cached"]]);
  assert.equal(await cachedOn(ctx.a1, id), false);
  assert.equal(await cachedOn(ctx.a2, id), false);
  assert.deepEqual(await (await ctx.a1.req(`/v2/cache/nodes/${id}`)).json(), [ctx.b1.url]);
});

t("the fleet view pages through images in id order", async () => {
  const all = (await (await ctx.a1.req("/v2/x-fleet/view?limit=1000")).json()) as {
    images: Record<string, unknown>;
    next?: string;
  };
  assert.equal(all.next, undefined);
  const ids = Object.keys(all.images);
  assert.ok(ids.length >= 2);
  const seen: string[] = [];
  let path: string | undefined = "/v2/x-fleet/view?limit=1";
  while (path) {
    const page = (await (await ctx.a1.req(path)).json()) as { images: Record<string, unknown>; next?: string };
    seen.push(...Object.keys(page.images));
    path = page.next;
  }
  assert.deepEqual(seen, [...ids].sort());
  for (const bad of ["limit=0", "limit=x", "limit=1001", "marker=../x", "image_id=nope"]) {
    assert.equal((await ctx.a1.req(`/v2/x-fleet/view?${bad}`)).status, 400, bad);
  }
});

t("a job shows a fill's progress (bytes of total) while it runs, and the fleet view shows it filling", async () => {
  const { id, data } = await newImage(4 << 20);
  ctx.gate.arm(id);
  const res = await fanOut(ctx.a1, { image_id: id, nodes: [ctx.b1.url] });
  assert.equal(res.status, 202);
  const jobId = ((await res.json()) as Job).id;
  const filling = await waitFor("filling with bytes", async () => {
    const job = (await (await ctx.a1.req(`/v2/x-fleet/jobs/${jobId}`)).json()) as Job;
    const t = job.targets[0];
    return t.state === "filling" && t.bytes > 0 && job;
  }, 20_000);
  assert.equal(filling.state, "running");
  assert.equal(filling.targets[0].total, data.length);
  assert.ok(filling.targets[0].bytes < data.length);
  const view = (await (await ctx.a2.req(`/v2/x-fleet/view?image_id=${id}`)).json()) as {
    images: Record<string, { filling: { node: string; bytes: number; total: number }[] }>;
  };
  assert.equal(view.images[id].filling[0].node, ctx.b1.url);
  assert.equal(view.images[id].filling[0].total, data.length);
  // a peer may tail the fill in progress: the answer starts now, its bytes come as they land
  const tail = await fetch(ctx.b1.url + peerPath(id), {
    headers: { [PEER_AUTH_HEADER]: peerToken(SECRET, peerRead(ctx.b1.url, id)) },
  });
  assert.equal(tail.status, 200);
  assert.equal(tail.headers.get("content-length"), String(data.length));
  ctx.gate.release(id);
  assert.equal(md5(new Uint8Array(await tail.arrayBuffer())), md5(data));
  const job = await jobDone(ctx.a1, jobId);
  assert.deepEqual(job.targets.map((t) => [t.state, t.bytes]), [["cached", data.length]]);
});

t("bad input: unknown node 400, unknown site 404, non-active image 400, member 403, unknown job 404", async () => {
  const { id } = await newImage(1000);
  const msg = async (res: Response) => ((await res.json()) as { message: string }).message;
  const json = { Accept: "application/json", "Content-Type": "application/json" };
  let res = await fanOut(ctx.a1, { image_id: id, nodes: ["http://127.0.0.1:1"] });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /Unknown fleet node/);
  res = await ctx.a1.req("/v2/x-fleet/jobs", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ image_id: id, site: "nowhere" }),
  });
  assert.equal(res.status, 404);
  assert.match(await msg(res), /No alive fleet node in site "nowhere"/);
  const queuedOnly = await createImage(ctx.origin, undefined);
  res = await fanOut(ctx.a1, { image_id: queuedOnly });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /Only images with status active/);
  res = await fanOut(ctx.a1, { image_id: id }, MEMBER);
  assert.equal(res.status, 403);
  res = await fanOut(ctx.a1, { image_id: "00000000-0000-0000-0000-000000000000" });
  assert.equal(res.status, 404);
  res = await ctx.a1.req("/v2/x-fleet/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{not json",
  });
  assert.equal(res.status, 400);
  res = await ctx.a1.req("/v2/x-fleet/jobs", { method: "POST", body: JSON.stringify({ image_id: id }) });
  assert.equal(res.status, 415, "a JSON document sent as text/plain");
  res = await fanOut(ctx.a1, { image_id: id, nodes: "x" });
  assert.equal(res.status, 400);
  res = await ctx.a1.req(`/v2/x-fleet/jobs/${crypto.randomUUID()}`);
  assert.equal(res.status, 404);
  assert.equal((await ctx.a1.req("/v2/x-fleet/view", { as: MEMBER })).status, 403);
  assert.equal((await ctx.a1.req("/v2/x-fleet/nodes/1", { as: MEMBER, method: "DELETE" })).status, 403);
  // nothing was queued anywhere by the refused requests
  for (const node of fleetNodes()) assert.deepEqual((await listing(node)).queued_images, []);
});

t("a stale node gets no work and is hidden from where an image is; retiring it removes its rows", async () => {
  const { id } = await newImage(1000);
  const staleUrl = "http://127.0.0.1:9/stale";
  const staleId = await fakeNode(staleUrl, "a", 3600, [{ id, size: 1000 }]);
  const { nodes } = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as {
    nodes: { url: string; status: string }[];
  };
  assert.equal(nodes.find((n) => n.url === staleUrl)!.status, "stale");
  const res = await fanOut(ctx.a1, { image_id: id, nodes: [staleUrl] });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /not alive/);
  assert.deepEqual(await (await ctx.a1.req(`/v2/cache/nodes/${id}`)).json(), []);
  // a job for every node leaves the stale one out
  const job = (await (await fanOut(ctx.a1, { image_id: id, site: "a" })).json()) as Job;
  assert.deepEqual(job.targets.map((t) => t.node).sort(), [ctx.a1.url, ctx.a2.url].sort());
  await jobDone(ctx.a1, job.id);

  assert.equal((await ctx.a1.req(`/v2/x-fleet/nodes/${staleId}`, { method: "DELETE" })).status, 204);
  const after = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as { nodes: { url: string; status: string }[] };
  assert.equal(after.nodes.find((n) => n.url === staleUrl)!.status, "retired");
  const [rows] =
    (await ctx.sql.query("SELECT COUNT(*) AS n FROM fleet_entries WHERE node_id = ?", [staleId])) as unknown as [
      { n: number }[],
    ];
  assert.equal(rows[0].n, 0);
  assert.equal((await ctx.a1.req("/v2/x-fleet/nodes/999999", { method: "DELETE" })).status, 404);
});

t(
  "an image deleted through one node leaves every node's cache (bound: one poll interval after the delete is written)",
  async () => {
    const { id } = await newImage();
    const job = (await (await fanOut(ctx.a1, { image_id: id })).json()) as Job;
    await jobDone(ctx.a1, job.id);
    const del = await ctx.a2.req(`/v2/images/${id}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    for (const node of fleetNodes()) {
      await waitFor(`${id} gone from ${node.url}`, async () => !(await cachedOn(node, id)), 15_000);
    }
    assert.equal((await ctx.a1.req(`/v2/cache/nodes/${id}`)).status, 404);
    // the shared rows follow each node's local cache
    await waitFor("no shared rows left", async () => {
      const view = (await (await ctx.a1.req(`/v2/x-fleet/view?image_id=${id}`)).json()) as {
        images: Record<string, unknown>;
      };
      return Object.keys(view.images).length === 0;
    });
  },
);

t("an image deactivated through one node leaves every node's cache", async () => {
  const { id } = await newImage();
  await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: id })).json()) as Job).id);
  assert.equal((await ctx.b1.req(`/v2/images/${id}/actions/deactivate`, { method: "POST" })).status, 204);
  for (const node of fleetNodes()) {
    await waitFor(`${id} gone from ${node.url}`, async () => !(await cachedOn(node, id)), 15_000);
  }
});

t("clean and prune act on the node that receives them; its shared rows follow", async () => {
  const { id } = await newImage(2000);
  await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: id, site: "a" })).json()) as Job).id);
  assert.equal((await ctx.a1.req("/v2/cache/clean", { method: "POST" })).status, 200);
  const cache = ctx.a2.app.cache;
  const max = cache.maxSize;
  setCacheMaxSizeForTests(cache, 0);
  try {
    const res = await ctx.a2.req("/v2/cache/prune", { method: "POST" });
    const body = (await res.json()) as { total_files_pruned: number; total_bytes_pruned: number };
    assert.ok(body.total_files_pruned >= 1);
    assert.ok(body.total_bytes_pruned >= 2000);
  } finally {
    setCacheMaxSizeForTests(cache, max);
  }
  await waitFor("a2 gone from nodes/{id}", async () => {
    const urls = (await (await ctx.b1.req(`/v2/cache/nodes/${id}`)).json()) as string[];
    return urls.length === 1 && urls[0] === ctx.a1.url;
  });
});

t("a peer failing mid-stream: the fill goes on from the upstream at the byte reached, and is verified", async () => {
  const { id, data } = await newImage(1 << 20);
  const peer = await fakePeer((res) => {
    res.writeHead(200, { "Content-Length": String(data.length) });
    res.write(data.subarray(0, 300_000));
    setTimeout(() => res.destroy(), 50);
  });
  const peerId = await fakeNode(peer.url, "b", 0, [{ id, size: data.length }]);
  try {
    const reads = { ...ctx.b1.app.fleet!.reads };
    assert.equal((await ctx.b1.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
    await waitFor("cached on b1", () => cachedOn(ctx.b1, id), 20_000);
    assert.equal(peer.requests, 1);
    const now = ctx.b1.app.fleet!.reads;
    assert.equal(now.peerReads - reads.peerReads, 1);
    assert.equal(now.peerFailures - reads.peerFailures, 1);
    assert.equal(now.upstreamReads - reads.upstreamReads, 1);
    const body = new Uint8Array(await (await ctx.b1.req(`/v2/images/${id}/file`)).arrayBuffer());
    assert.equal(md5(body), md5(data));
  } finally {
    await ctx.sql.query("DELETE FROM fleet_entries WHERE node_id = ?", [peerId]);
    await ctx.sql.query("UPDATE fleet_nodes SET state = 'retired' WHERE id = ?", [peerId]);
    peer.server.close();
  }
});

t("a peer sending wrong bytes: the fill is rejected and nothing is cached", async () => {
  const { id, data } = await newImage(200_000);
  const peer = await fakePeer((res) => {
    res.writeHead(200, { "Content-Length": String(data.length) });
    res.end(bytes(data.length));
  });
  const peerId = await fakeNode(peer.url, "b", 0, [{ id, size: data.length }]);
  try {
    const res = await fanOut(ctx.a1, { image_id: id, nodes: [ctx.b1.url] });
    const job = await jobDone(ctx.a1, ((await res.json()) as Job).id);
    assert.equal(job.targets[0].state, "failed");
    assert.match(job.targets[0].reason ?? "", /sha512 [0-9a-f]+ != expected/);
    assert.ok(peer.requests >= 1);
    assert.equal(await cachedOn(ctx.b1, id), false);
    assert.deepEqual(
      await ctx.b1.req(`/v2/cache/nodes/${id}`).then((r) => r.json()),
      [peer.url],
      "only the (fake) peer holds it",
    );
  } finally {
    await ctx.sql.query("DELETE FROM fleet_entries WHERE node_id = ?", [peerId]);
    await ctx.sql.query("UPDATE fleet_nodes SET state = 'retired' WHERE id = ?", [peerId]);
    peer.server.close();
  }
});

t("the peer endpoint answers only requests signed with the fleet secret", async () => {
  const { id, data } = await newImage(10_000);
  await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: id, nodes: [ctx.a1.url] })).json()) as Job).id);
  const url = ctx.a1.url + peerPath(id);
  const forA1 = (imageId: string) => peerRead(ctx.a1.url, imageId);
  assert.equal((await fetch(url)).status, 403);
  assert.equal((await fetch(url, { headers: { [PEER_AUTH_HEADER]: peerToken("wrong", forA1(id)) } })).status, 403);
  assert.equal(
    (await fetch(url, { headers: { [PEER_AUTH_HEADER]: peerToken(SECRET, forA1(crypto.randomUUID())) } })).status,
    403,
  );
  assert.equal(
    (await fetch(url, { headers: { [PEER_AUTH_HEADER]: peerToken(SECRET, forA1(id), Date.now() - 3600_000) } })).status,
    403,
  );
  const ok = await fetch(url, { headers: { [PEER_AUTH_HEADER]: peerToken(SECRET, forA1(id)) } });
  assert.equal(ok.status, 200);
  assert.equal(md5(new Uint8Array(await ok.arrayBuffer())), md5(data));
  // a node without a secret serves no peer at all
  const plain = await start();
  try {
    assert.equal(
      (await fetch(plain.url + peerPath(id), {
        headers: { [PEER_AUTH_HEADER]: peerToken(SECRET, peerRead(plain.url, id)) },
      })).status,
      404,
    );
  } finally {
    await plain.close();
  }
});

t("clear, clean and prune as fleet jobs: each node acts on its own cache and reports what it did", async () => {
  const { id } = await newImage(4000);
  await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: id })).json()) as Job).id);
  const res = await fanOut(ctx.b1, { action: "clear", target: "cache", site: "a" });
  assert.equal(res.status, 202);
  const job = (await jobDone(ctx.b1, ((await res.json()) as Job).id)) as Job & {
    action: string;
    targets: { result: { cache_deleted: number; queue_deleted: number } }[];
  };
  assert.equal(job.action, "clear");
  assert.deepEqual(job.targets.map((t) => t.state), ["done", "done"]);
  for (const t of job.targets) assert.ok(t.result.cache_deleted >= 1 && t.result.queue_deleted === 0);
  assert.equal(await cachedOn(ctx.a1, id), false);
  assert.equal(await cachedOn(ctx.a2, id), false);
  assert.equal(await cachedOn(ctx.b1, id), true);
  await waitFor("shared rows follow", async () => {
    const urls = (await (await ctx.a1.req(`/v2/cache/nodes/${id}`)).json()) as string[];
    return urls.length === 1 && urls[0] === ctx.b1.url;
  });

  const prune = (await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { action: "prune" })).json()) as Job).id)) as
    & Job
    & { targets: { result: unknown }[] };
  assert.equal(prune.targets.length, 3);
  for (const t of prune.targets) assert.deepEqual(t.result, { total_files_pruned: 0, total_bytes_pruned: 0 });
  const clean = await jobDone(
    ctx.a1,
    ((await (await fanOut(ctx.a1, { action: "clean", nodes: [ctx.b1.url] })).json()) as Job).id,
  );
  assert.deepEqual(clean.targets.map((t) => t.state), ["done"]);

  const listed = (await (await ctx.a2.req("/v2/x-fleet/jobs?limit=3")).json()) as {
    jobs: { id: string; action: string; state: string; targets: Record<string, number> }[];
  };
  assert.deepEqual(listed.jobs.map((j) => [j.id, j.action, j.state]), [[clean.id, "clean", "done"], [
    prune.id,
    "prune",
    "done",
  ], [job.id, "clear", "done"]]);
  assert.deepEqual(listed.jobs[1].targets, { done: 3 });
  assert.equal((await ctx.a2.req("/v2/x-fleet/jobs?limit=0")).status, 400);
  for (const action of ["clear", "clean", "prune"]) {
    assert.equal((await fanOut(ctx.a1, { action }, MEMBER)).status, 403, action);
  }
  assert.equal((await fanOut(ctx.a1, { action: "explode" })).status, 400);
  assert.equal((await fanOut(ctx.a1, { action: "clear", image_id: id })).status, 400);
  assert.equal((await fanOut(ctx.a1, { action: "clear", target: "everything" })).status, 400);
  assert.equal((await fanOut(ctx.a1, { image_id: id, colour: "red" })).status, 400);
});

t("pin and unpin as fleet jobs: each node of the site pins the image (and caches it), then lets it go", async () => {
  const { id } = await newImage(3000);
  const pinned = await jobDone(
    ctx.b1,
    ((await (await fanOut(ctx.b1, { action: "pin", image_id: id, site: "a" })).json()) as Job).id,
  ) as unknown as { action: string; targets: { state: string; result: { pinned: boolean } }[] };
  assert.equal(pinned.action, "pin");
  assert.deepEqual(pinned.targets.map((t) => [t.state, t.result.pinned]), [["done", true], ["done", true]]);
  for (const node of [ctx.a1, ctx.a2]) {
    assert.deepEqual(node.app.cache.pinned().map((p) => p.image_id), [id]);
    await waitFor("cached", () => cachedOn(node, id));
  }
  assert.deepEqual(ctx.b1.app.cache.pinned(), []);
  assert.equal((await fanOut(ctx.a1, { action: "pin", image_id: id }, MEMBER)).status, 403);
  assert.equal((await fanOut(ctx.a1, { action: "pin" })).status, 400);
  const unpinned = await jobDone(
    ctx.a1,
    ((await (await fanOut(ctx.a1, { action: "unpin", image_id: id, site: "a" })).json()) as Job).id,
  ) as unknown as { targets: { result: { unpinned: boolean } }[] };
  assert.deepEqual(unpinned.targets.map((t) => t.result.unpinned), [true, true]);
  for (const node of [ctx.a1, ctx.a2]) assert.deepEqual(node.app.cache.pinned(), []);
});

t(
  "the database restarted mid-job: nodes go on serving from their caches, then resume their shared writes",
  async () => {
    const { id, data } = await newImage(2 << 20);
    const { id: local } = await newImage(3000);
    const { id: doomed } = await newImage(3000);
    await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: doomed })).json()) as Job).id);
    ctx.gate.arm(id);
    const jobId = ((await (await fanOut(ctx.a1, { image_id: id, nodes: [ctx.b1.url] })).json()) as Job).id;
    await waitFor("filling on b1", async () => ctx.gate.waiting.has(id), 20_000);
    await ctx.db.stop();
    try {
      ctx.gate.release(id);
      await waitFor("cached on b1 with the database down", () => cachedOn(ctx.b1, id), 20_000);
      const body = new Uint8Array(await (await ctx.b1.req(`/v2/images/${id}/file`)).arrayBuffer());
      assert.equal(md5(body), md5(data));
      // a change while the database is away, written when it is back
      assert.equal((await ctx.b1.req(`/v2/cache/${local}`, { method: "PUT" })).status, 202);
      await waitFor("local fill", () => cachedOn(ctx.b1, local), 20_000);
      const refused = await fanOut(ctx.a1, { image_id: id });
      assert.equal(refused.status, 503);
      assert.equal((await ctx.a1.req(`/v2/cache/nodes/${id}`)).status, 503);
      // a delete seen while the database is away is announced when it is back
      assert.equal((await ctx.a1.req(`/v2/images/${doomed}`, { method: "DELETE" })).status, 204);
      assert.equal(await cachedOn(ctx.a1, doomed), false);
      assert.equal(await cachedOn(ctx.b1, doomed), true);
    } finally {
      await ctx.db.start();
    }
    for (const node of [ctx.a2, ctx.b1]) {
      await waitFor(`${doomed} gone from ${node.url}`, async () => !(await cachedOn(node, doomed)), 20_000);
    }
    const job = await jobDone(ctx.a1, jobId);
    assert.deepEqual(job.targets.map((t) => t.state), ["cached"]);
    await waitFor("shared rows rebuilt", async () => {
      const urls = (await (await ctx.a1.req(`/v2/cache/nodes/${local}`)).json()) as string[];
      return urls.includes(ctx.b1.url);
    }, 20_000);
  },
);

t("a node that comes back catches up on open jobs and on images deleted while it was away", async () => {
  const { id: keep } = await newImage(5000);
  const { id: gone } = await newImage(5000);
  await jobDone(ctx.a1, ((await (await fanOut(ctx.a1, { image_id: gone, site: "b" })).json()) as Job).id);
  const port = Number(new URL(ctx.b1.url).port);
  await ctx.b1.stop();
  // a node that shuts down shows as stale at once
  const { nodes } = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as {
    nodes: { url: string; status: string }[];
  };
  assert.equal(nodes.find((n) => n.url === ctx.b1.url)!.status, "stale");
  // while b1 is away: a job for every node, and an image it holds is deleted
  const res = await fanOut(ctx.a1, { image_id: keep });
  const job = (await res.json()) as Job;
  assert.deepEqual(
    job.targets.map((t) => t.node).sort(),
    [ctx.a1.url, ctx.a2.url].sort(),
    "b1 is stale: no part for it yet",
  );
  assert.equal((await ctx.a1.req(`/v2/images/${gone}`, { method: "DELETE" })).status, 204);
  ctx.b1 = await startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: fleetOpts(ctx.db, ctx.b1.url, "b"),
    cacheSource: (s: ImageSource) => ctx.gate.wrap(s),
  }, ctx.b1.dir);
  assert.equal(await cachedOn(ctx.b1, gone), true, "restarted with its cache");
  await waitFor("b1 caught up", async () => (await cachedOn(ctx.b1, keep)) && !(await cachedOn(ctx.b1, gone)), 20_000);
});

t("a running node that is retired stops its fleet work and writes no more rows", async () => {
  const { nodes } = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as { nodes: { id: number; url: string }[] };
  const b1 = nodes.find((n) => n.url === ctx.b1.url)!;
  assert.equal((await ctx.a1.req(`/v2/x-fleet/nodes/${b1.id}`, { method: "DELETE" })).status, 204);
  await waitFor("b1 sees itself retired", async () => ctx.b1.app.fleet!.retired, 15_000);
  const { id } = await newImage(3000);
  assert.equal((await ctx.b1.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
  await waitFor("cached on b1", () => cachedOn(ctx.b1, id));
  await ctx.b1.app.fleet!.tick();
  const [rows] =
    (await ctx.sql.query("SELECT COUNT(*) AS n FROM fleet_entries WHERE node_id = ?", [b1.id])) as unknown as [
      { n: number }[],
    ];
  assert.equal(rows[0].n, 0);
  const after = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as { nodes: { url: string; status: string }[] };
  assert.equal(after.nodes.find((n) => n.url === ctx.b1.url)!.status, "retired");
  // a job cannot name it any more
  assert.equal((await fanOut(ctx.a1, { image_id: id, nodes: [ctx.b1.url] })).status, 400);
});

t("a second process registering a node's URL takes it over; the first stops its fleet work", async () => {
  const port = await freePort();
  const impostor = await startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: fleetOpts(ctx.db, ctx.a2.url, "a"),
  });
  try {
    await waitFor("a2 sees its URL taken", async () => ctx.a2.app.fleet!.retired, 15_000);
    assert.equal(impostor.app.fleet!.nodeId, ctx.a2.app.fleet!.nodeId);
    assert.equal(impostor.app.fleet!.retired, false);
  } finally {
    await impostor.close();
  }
});

t("cache_image is judged against the image on the fleet routes too; their JSON bodies are capped", async () => {
  // alone in its site, so no other test's fan-out waits for it; retired at the end
  const c1 = await startNode("c", { policy: { cache_image: "role:admin and 'bare':%(container_format)s" } });
  try {
    const bare = await createImage(ctx.origin, bytes(1000));
    const res = await c1.req(`/v2/cache/${bare}?fleet=site:c`, { method: "PUT" });
    assert.equal(res.status, 202, await res.clone().text());
    await jobDone(c1, ((await res.json()) as Job).id);
    assert.ok(await cachedOn(c1, bare));
    const ovf = await createImage(ctx.origin, bytes(1000), { container_format: "ovf" });
    assert.equal((await c1.req(`/v2/cache/${ovf}?fleet=site:c`, { method: "PUT" })).status, 403);
    assert.equal((await fanOut(c1, { image_id: ovf, site: "c" })).status, 403);
    const huge = await c1.req("/v2/x-fleet/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_id: bare, site: "c", pad: "x".repeat(70_000) }),
    });
    assert.equal(huge.status, 413);
  } finally {
    const { nodes } = (await (await ctx.a1.req("/v2/x-fleet/nodes")).json()) as {
      nodes: { id: number; url: string }[];
    };
    await c1.close();
    const me = nodes.find((n) => n.url === c1.url);
    if (me) await ctx.a1.req(`/v2/x-fleet/nodes/${me.id}`, { method: "DELETE" });
  }
});

t.run();
