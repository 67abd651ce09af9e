// Where the fleet meets the operator: PUT /v2/cache/{id}?fleet=..., the status document's fleet part, and `glance-cache fleet` in a pipe.
// test-needs: mariadb
import assert from "node:assert/strict";
import { suite } from "uvu";
import type { Pool } from "../../src/fleet/database.ts";
import { openPool } from "../../src/fleet/database.ts";
import type { ImageSource } from "../../src/images/source.ts";
import { ByteGate, failingAfter } from "../helpers/gate.ts";
import { bytes, createImage, listing, MEMBER, type Running, start, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { runCli, spawnCli } from "../helpers/cli_process.ts";
import { freePort } from "../../support/processes.ts";

const ADMIN_TOKEN = "admin:adminproj:admin";
const MiB = 1 << 20;

interface Job {
  id: string;
  state: "running" | "done";
  site: string | null;
  nodes: string[] | null;
  targets: { node: string; site: string; state: string; reason: string | null }[];
}

const ctx = {} as {
  db: MariaDb;
  sql: Pool;
  origin: Running;
  a1: Running;
  b1: Running;
  gate: ByteGate;
  /** a1 holds reads of these images at its gate */
  slow: Set<string>;
  /** b1's reads of these images fail after 1 MiB */
  broken: Set<string>;
};

async function startNode(site: string, cacheSource: (s: ImageSource) => ImageSource): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startOnPort(port, {
    insecureTestTokens: true,
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: { databaseUrl: ctx.db.url, selfUrl: url, site, pollInterval: 0.1, heartbeatInterval: 0.5, staleAfter: 60 },
    cacheSource,
  });
}

const cachedOn = async (node: Running, id: string) =>
  (await listing(node)).cached_images.some((c) => c.image_id === id);

async function jobDone(id: string): Promise<Job> {
  return waitFor(`job ${id} done`, async () => {
    const job = (await (await ctx.a1.req(`/v2/x-fleet/jobs/${id}`)).json()) as Job;
    return job.state === "done" && job;
  }, 30_000);
}

function cli(args: string[], url = ctx.a1.url) {
  return runCli(args, { OS_IMAGE_URL: url, OS_AUTH_TOKEN: ADMIN_TOKEN });
}

const t = suite("fleet, as the operator sees it");

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.sql = openPool(ctx.db.url);
  ctx.origin = await start({ auth: "noauth" });
  ctx.gate = new ByteGate(0);
  ctx.gate.open();
  ctx.slow = new Set();
  ctx.broken = new Set();
  ctx.a1 = await startNode("a", (s) => ctx.gate.wrap(s, (id) => ctx.slow.has(id)));
  ctx.b1 = await startNode("b", (s) => {
    const failing = failingAfter(s, MiB);
    return {
      find: (id, who) => s.find(id, who),
      read: (image, range) => (ctx.broken.has(image.id) ? failing : s).read(image, range),
    };
  });
});

t.after(async () => {
  ctx.gate?.open();
  for (const n of [ctx.a1, ctx.b1, ctx.origin]) await n?.close().catch(() => {});
  await ctx.sql?.end().catch(() => {});
  await ctx.db?.close();
});

t("PUT /v2/cache/{id} without ?fleet caches on this node only, as in Glance", async () => {
  const id = await createImage(ctx.origin, bytes(MiB));
  const res = await ctx.a1.req(`/v2/cache/${id}`, { method: "PUT" });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("location"), null);
  await waitFor("cached on a1", () => cachedOn(ctx.a1, id));
  // The fleet's own job machinery was not involved: b1 never saw the image queued.
  const { jobs } = (await (await ctx.a1.req("/v2/x-fleet/jobs?limit=1000")).json()) as { jobs: { image_id: string }[] };
  assert.equal(jobs.some((j) => j.image_id === id), false);
  assert.equal(await cachedOn(ctx.b1, id), false);
});

t("PUT /v2/cache/{id}?fleet=all | site:b | node:URL creates the fan-out job: 202 and its Location", async () => {
  const all = await createImage(ctx.origin, bytes(MiB));
  let res = await ctx.b1.req(`/v2/cache/${all}?fleet=all`, { method: "PUT" });
  assert.equal(res.status, 202);
  let job = (await res.json()) as Job;
  assert.equal(res.headers.get("location"), `/v2/x-fleet/jobs/${job.id}`);
  assert.deepEqual(job.targets.map((x) => x.node).sort(), [ctx.a1.url, ctx.b1.url].sort());
  job = await jobDone(job.id);
  assert.deepEqual(job.targets.map((x) => x.state), ["cached", "cached"]);
  assert.ok((await cachedOn(ctx.a1, all)) && (await cachedOn(ctx.b1, all)));

  const siteB = await createImage(ctx.origin, bytes(MiB));
  res = await ctx.a1.req(`/v2/cache/${siteB}?fleet=site:b`, { method: "PUT" });
  assert.equal(res.status, 202);
  job = await jobDone(((await res.json()) as Job).id);
  assert.equal(job.site, "b");
  assert.deepEqual(job.targets.map((x) => [x.node, x.state]), [[ctx.b1.url, "cached"]]);
  assert.equal(await cachedOn(ctx.a1, siteB), false);

  const listed = await createImage(ctx.origin, bytes(MiB));
  res = await ctx.b1.req(`/v2/cache/${listed}?fleet=${encodeURIComponent(`node:${ctx.a1.url}`)}`, { method: "PUT" });
  assert.equal(res.status, 202);
  job = await jobDone(((await res.json()) as Job).id);
  assert.deepEqual(job.nodes, [ctx.a1.url]);
  assert.deepEqual(job.targets.map((x) => [x.node, x.state]), [[ctx.a1.url, "cached"]]);
  assert.equal(await cachedOn(ctx.b1, listed), false);
});

t(
  "PUT ?fleet=: member 403, bad option 400, unknown site 404, unknown image 404, a body 400; no fleet 409",
  async () => {
    const id = await createImage(ctx.origin, bytes(1000));
    const put = (node: Running, query: string, init: Record<string, unknown> = {}) =>
      node.req(`/v2/cache/${id}${query}`, { method: "PUT", ...init });
    assert.equal((await put(ctx.a1, "?fleet=all", { as: MEMBER })).status, 403);
    for (const q of ["?fleet=", "?fleet=everything", "?fleet=node:", "?fleet=all&fleet=site:a"]) {
      const res = await put(ctx.a1, q, { headers: { Accept: "application/json" } });
      assert.equal(res.status, 400, q);
      assert.match(
        ((await res.json()) as { message: string }).message,
        /fleet must be 'all', 'site:NAME', or one or more 'node:URL'/,
      );
    }
    assert.equal((await put(ctx.a1, "?fleet=site:nowhere")).status, 404);
    assert.equal((await put(ctx.a1, `?fleet=${encodeURIComponent("node:http://127.0.0.1:1")}`)).status, 400);
    assert.equal((await ctx.a1.req(`/v2/cache/${crypto.randomUUID()}?fleet=all`, { method: "PUT" })).status, 404);
    assert.equal((await put(ctx.a1, "?fleet=all", { body: "x" })).status, 415, "a text body: not JSON");
    const json = { "Content-Type": "application/json" };
    assert.equal((await put(ctx.a1, "?fleet=all", { body: "{}", headers: json })).status, 400);

    const alone = await start();
    try {
      const other = await createImage(alone, bytes(1000));
      assert.equal((await alone.req(`/v2/cache/${other}?fleet=all`, { method: "PUT", as: MEMBER })).status, 403);
      const res = await alone.req(`/v2/cache/${other}?fleet=all`, {
        method: "PUT",
        headers: { Accept: "application/json" },
      });
      assert.equal(res.status, 409);
      assert.match(((await res.json()) as { message: string }).message, /^The fleet is not enabled on this node/);
      assert.equal(await cachedOn(alone, other), false, "nothing queued here either");
    } finally {
      await alone.close();
    }
  },
);

t(
  "GET /v2/x-cache-node/status carries the fleet: nodes with site, state, sizes, heartbeat; where images are",
  async () => {
    const id = await createImage(ctx.origin, bytes(2 * MiB));
    const created = (await (await ctx.a1.req(`/v2/cache/${id}?fleet=all`, { method: "PUT" })).json()) as Job;
    await jobDone(created.id);
    await ctx.sql.query(
      "INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES ('http://192.0.2.9:9292', 'c', 'active', NOW(3), NOW(3) - INTERVAL 1 HOUR)",
    );
    try {
      // Sizes travel with heartbeats: wait for both nodes to have reported the image.
      const body = await waitFor("both heartbeats with the image", async () => {
        const b = (await (await ctx.b1.req("/v2/x-cache-node/status")).json()) as { fleet: FleetStatus };
        const ours = b.fleet.nodes.filter((n: { url: string }) => n.url === ctx.a1.url || n.url === ctx.b1.url);
        return ours.every((n: { cache_size: number }) => n.cache_size >= 2 * MiB) && b;
      }, 20_000);
      const f = body.fleet;
      assert.equal(f.self, ctx.b1.url);
      assert.equal(f.site, "b");
      assert.equal(f.database_up, true);
      assert.equal(f.error, null);
      const byUrl = new Map(f.nodes.map((n) => [n.url, n]));
      assert.deepEqual(
        [ctx.a1.url, ctx.b1.url, "http://192.0.2.9:9292"].map((
          u,
        ) => [byUrl.get(u)!.site, byUrl.get(u)!.status]),
        [["a", "alive"], ["b", "alive"], ["c", "stale"]],
      );
      const a1 = byUrl.get(ctx.a1.url)!;
      assert.ok(a1.max_size > 0 && a1.free_bytes > 0 && a1.heartbeat_age < 60 && a1.heartbeat_at > 0);
      assert.deepEqual(f.images[id], { cached: [ctx.a1.url, ctx.b1.url].sort(), queued: [], filling: [] });
      assert.equal(typeof f.more, "boolean");
      assert.ok(Object.keys(f.images).length <= 20, "bounded: the first page only");
      // Same access rule as without a fleet.
      assert.equal((await ctx.b1.req("/v2/x-cache-node/status", { as: MEMBER })).status, 403);
    } finally {
      await ctx.sql.query("DELETE FROM fleet_nodes WHERE url = 'http://192.0.2.9:9292'");
    }
  },
);

t("glance-cache fleet nodes / view / jobs / job in a pipe", async () => {
  const id = await createImage(ctx.origin, bytes(MiB));
  const created = (await (await ctx.a1.req(`/v2/cache/${id}?fleet=all`, { method: "PUT" })).json()) as Job;
  await jobDone(created.id);

  const nodes = await cli(["fleet", "nodes"]);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout, /^ID\s+URL\s+SITE\s+STATE\s+CACHE\s+FREE\s+IMAGES\s+HITS\s+HEARTBEAT$/m);
  assert.match(nodes.stdout, new RegExp(`^\\s*\\d+\\s+${ctx.a1.url}\\s+a\\s+alive\\s`, "m"));
  assert.match(nodes.stdout, new RegExp(`^\\s*\\d+\\s+${ctx.b1.url}\\s+b\\s+alive\\s`, "m"));
  assert.ok(!nodes.stdout.includes("\x1b["));
  const json = await cli(["fleet", "nodes", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout).map((n: { url: string }) => n.url).sort(), [ctx.a1.url, ctx.b1.url].sort());

  const view = await cli(["fleet", "view", "--image", id], ctx.b1.url);
  assert.equal(view.code, 0, view.stderr);
  assert.match(view.stdout, /^Images: 1$/m);
  assert.match(view.stdout, new RegExp(`^${id}\\s+${[ctx.a1.url, ctx.b1.url].sort().join(",")}\\s+-\\s+-$`, "m"));
  const viewJson = JSON.parse((await cli(["fleet", "view", "--all", "--limit", "1", "--json"])).stdout);
  assert.ok(viewJson.images[id] && viewJson.next === undefined, "--all follows every page");

  const jobs = await cli(["fleet", "jobs", "--limit", "50"]);
  assert.equal(jobs.code, 0, jobs.stderr);
  assert.match(jobs.stdout, new RegExp(`^${created.id}\\s+cache ${id}\\s+-\\s+done\\s+2 cached\\s`, "m"));

  const job = await cli(["fleet", "job", created.id]);
  assert.equal(job.code, 0, job.stderr);
  assert.match(job.stdout, new RegExp(`^Action:\\s+cache ${id} on all nodes$`, "m"));
  assert.match(job.stdout, /^State:\s+done$/m);
  assert.match(job.stdout, new RegExp(`^${ctx.a1.url}\\s+a\\s+alive\\s+cached\\s+1\\.0 MiB/1\\.0 MiB$`, "m"));

  const unknown = await cli(["fleet", "job", crypto.randomUUID()]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: GET http:.*\/v2\/x-fleet\/jobs\/.*: 404 Fleet job .* not found\.$/m);
});

t(
  "glance-cache fleet cache --wait in a pipe: a line per node as it moves, exit 0 when every node cached it",
  async () => {
    const id = await createImage(ctx.origin, bytes(16 * MiB));
    ctx.slow.add(id);
    // a1's fill passes its first chunk, then holds: its progress is seen, not caught by a poll in time.
    // (allow() only ever raises the limit, so after the suite's open() the fill was never held, and a
    // fill fast enough to finish between two polls failed this test on Deno.)
    ctx.gate.hold(1);
    const run = spawnCli(["fleet", "cache", id, "--wait", "--interval", "0.1"], {
      OS_IMAGE_URL: ctx.b1.url,
      OS_AUTH_TOKEN: ADMIN_TOKEN,
    });
    try {
      await waitFor(
        "a1 seen filling",
        async () => new RegExp(`^${ctx.a1.url} caching \\d+% `, "m").test(run.stdout()),
        60_000,
      );
      await waitFor(
        "b1 seen cached",
        async () => new RegExp(`^${ctx.b1.url} cached 16\\.0 MiB$`, "m").test(run.stdout()),
        60_000,
      );
      ctx.gate.open();
      assert.equal(await run.exit, 0, run.stderr());
    } finally {
      ctx.gate.open();
      run.child.kill();
    }
    const lines = run.stdout().trim().split("\n");
    assert.match(lines[0], new RegExp(`^job [0-9a-f-]{36}: caching ${id} on 2 nodes$`));
    assert.match(lines.at(-1)!, /^job [0-9a-f-]{36} done: 2 of 2 nodes ok$/);
    assert.ok(
      lines.some((l) => l === `${ctx.a1.url} cached 16.0 MiB`),
      run.stdout(),
    );
    assert.equal(run.stderr(), "");
  },
);

t(
  "glance-cache fleet cache --wait exits 1 when a node failed, naming it and why; --site and --node choose nodes",
  async () => {
    const id = await createImage(ctx.origin, bytes(4 * MiB));
    ctx.broken.add(id);
    const res = await cli(["fleet", "cache", id, "--wait", "--interval", "0.1"]);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, new RegExp(`^error: ${ctx.b1.url}: .*source connection reset`, "m"));
    assert.match(res.stdout, /done: 1 of 2 nodes ok$/m);
    assert.ok(await cachedOn(ctx.a1, id));

    const other = await createImage(ctx.origin, bytes(MiB));
    const site = await cli(["fleet", "cache", other, "--site", "a", "--wait"]);
    assert.equal(site.code, 0, site.stderr);
    assert.match(site.stdout, new RegExp(`caching ${other} on 1 node\n`));
    const node = await cli(["fleet", "cache", other, "--node", ctx.b1.url, "--node", ctx.a1.url]);
    assert.equal(node.code, 0, node.stderr);
    assert.match(node.stdout, new RegExp(`^job [0-9a-f-]{36}: caching ${other} on 2 nodes$`, "m"));
    const both = await cli(["fleet", "cache", other, "--node", ctx.b1.url, "--site", "a"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give --site or --node, not both/);
    const noSite = await cli(["fleet", "cache", other, "--site", "nowhere"]);
    assert.equal(noSite.code, 1);
    assert.match(noSite.stderr, /404 No alive fleet node in site "nowhere"/);
  },
);

t(
  "glance-cache fleet pin --wait pins on the chosen nodes, fleet unpin lets go",
  async () => {
    const id = await createImage(ctx.origin, bytes(MiB));
    const pinned = await cli(["fleet", "pin", id, "--site", "a", "--wait", "--interval", "0.1"]);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.match(pinned.stdout, new RegExp(`^job [0-9a-f-]{36}: pinning ${id} on 1 node$`, "m"));
    assert.deepEqual(ctx.a1.app.cache.pinned().map((p) => p.image_id), [id]);
    const unpinned = await cli(["fleet", "unpin", id, "--site", "a", "--wait", "--interval", "0.1"]);
    assert.equal(unpinned.code, 0, unpinned.stderr);
    assert.deepEqual(ctx.a1.app.cache.pinned(), []);
  },
);

t("glance-cache fleet retire NODE (by URL or id); a node without a fleet says so", async () => {
  await ctx.sql.query(
    "INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES ('http://192.0.2.10:9292', 'c', 'active', NOW(3), NOW(3) - INTERVAL 1 HOUR)",
  );
  const res = await cli(["fleet", "retire", "http://192.0.2.10:9292/"]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^retired node \d+ \(http:\/\/192\.0\.2\.10:9292\)$/m);
  const nodes = JSON.parse((await cli(["fleet", "nodes", "--json"])).stdout) as {
    id: number;
    url: string;
    status: string;
  }[];
  const gone = nodes.find((n) => n.url === "http://192.0.2.10:9292")!;
  assert.equal(gone.status, "retired");
  const again = await cli(["fleet", "retire", String(gone.id)]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `retired node ${gone.id}\n`);
  const missing = await cli(["fleet", "retire", "http://192.0.2.11:9292"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no fleet node has the URL/);

  const alone = await start({ insecureTestTokens: true });
  try {
    const r = await cli(["fleet", "nodes"], alone.url);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /409 The fleet is not enabled on this node/);
  } finally {
    await alone.close();
  }
});

t(
  "with the fleet database away, the status document still comes, saying so (last: it stops the database)",
  async () => {
    await ctx.db.stop();
    const res = await ctx.a1.req("/v2/x-cache-node/status");
    assert.equal(res.status, 200);
    const body = (await res.json()) as { cache: { cached: number }; fleet: Record<string, unknown> };
    assert.ok(body.cache.cached > 0);
    assert.equal(body.fleet.self, ctx.a1.url);
    assert.equal(body.fleet.database_up, false);
    assert.match(body.fleet.error as string, /^The fleet database is unavailable: /);
    assert.deepEqual([body.fleet.nodes, body.fleet.images], [[], {}]);
  },
);

t.run();

/** The part of /v2/x-cache-node/status's fleet block these tests read. */
interface FleetStatus {
  self: string;
  site: string;
  database_up: boolean;
  error: string | null;
  nodes: {
    url: string;
    site: string;
    status: string;
    cache_size: number;
    max_size: number;
    free_bytes: number;
    heartbeat_age: number;
    heartbeat_at: number;
  }[];
  images: Record<string, unknown>;
  more: boolean;
}
