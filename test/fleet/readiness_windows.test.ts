// Fleet readiness (GET /v2/x-fleet/ready, `glance-cache fleet ready`) and fan-out jobs' windows on an injected clock.
// test-needs: mariadb
import assert from "node:assert/strict";
import { suite } from "uvu";
import mysql from "mysql2/promise";
import type { FleetOptions } from "../../src/fleet/fleet.ts";
import { openPool } from "../../src/fleet/database.ts";
import { bytes, createImage, listing, MEMBER, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { runCli, spawnCli } from "../helpers/cli_process.ts";
import { ImageGates } from "../helpers/gate.ts";
import type { ImageSource } from "../../src/images/source.ts";
import { freePort } from "../../support/processes.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";

const ctx = {} as { db: MariaDb; sql: mysql.Pool; origin: Running; a1: Running; a2: Running };

const fleetOpts = (url: string, site: string, extra: Partial<FleetOptions> = {}): FleetOptions => ({
  databaseUrl: ctx.db.url.replace("mysql://", "mysql+pymysql://"),
  selfUrl: url,
  site,
  secret: "fleet-test-secret",
  pollInterval: 0.1,
  heartbeatInterval: 0.5,
  staleAfter: 60,
  ...extra,
});

async function startNode(site: string, extra: Record<string, unknown> = {}, fleet: Partial<FleetOptions> = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: fleetOpts(url, site, fleet),
    ...extra,
  });
}

/** A node that is not ours, straight in the database: alive (heartbeat now) or stale, holding `holds`. */
async function fakeNode(url: string, site: string, heartbeatAgo: number, holds: string[] = []): Promise<number> {
  await ctx.sql.query(
    `INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES (?, ?, 'active', NOW(3), NOW(3) - INTERVAL ? SECOND)`,
    [url, site, heartbeatAgo],
  );
  const [[row]] = (await ctx.sql.query("SELECT id FROM fleet_nodes WHERE url = ?", [url])) as unknown as [
    { id: number }[],
  ];
  for (const id of holds) {
    await ctx.sql.query(
      "INSERT INTO fleet_entries (node_id, image_id, state, size, bytes) VALUES (?, ?, 'cached', 10, 10)",
      [row.id, id],
    );
  }
  return row.id;
}

const ready = async (node: Running, query: string, as?: Record<string, string>) => {
  const res = await node.req(`/v2/x-fleet/ready?${query}`, { as });
  return { status: res.status, body: res.ok ? (await res.json()) as Record<string, unknown> : await res.text() };
};

const t = suite("fleet readiness");

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.sql = openPool(ctx.db.url);
  ctx.origin = await start({ auth: "noauth" });
  ctx.a1 = await startNode("a");
  ctx.a2 = await startNode("a", { auth: "noauth" });
});

t.after(async () => {
  for (const n of [ctx.a1, ctx.a2, ctx.origin]) await n?.close();
  await ctx.sql?.end();
  await ctx.db?.close();
});

t(
  "ready over the alive nodes in scope: counts, missing URLs, a stale node left out; the CLI exits 0 only when ready",
  async () => {
    const id = await createImage(ctx.origin, bytes(4096));
    // A stale node of site a holding nothing and an alive node of site b holding the image: neither is missing in site a.
    await fakeNode("http://stale.invalid", "a", 3600);
    await fakeNode("http://b1.invalid", "b", 0, [id]);
    await ctx.a1.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(ctx.a1, id);
    await ctx.a1.app.fleet!.tick();
    let r = await ready(ctx.a1, `image_id=${id}&site=a`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ready: false, nodes: 2, cached: 1, missing: [ctx.a2.url] });
    r = await ready(ctx.a1, `image_id=${id}`);
    assert.deepEqual(r.body, { ready: false, nodes: 3, cached: 2, missing: [ctx.a2.url] });
    assert.deepEqual((await ready(ctx.a1, `image_id=${id}&site=b`)).body, {
      ready: true,
      nodes: 1,
      cached: 1,
      missing: [],
    });
    // No alive node in scope: not ready.
    assert.deepEqual((await ready(ctx.a1, `image_id=${id}&site=none`)).body, {
      ready: false,
      nodes: 0,
      cached: 0,
      missing: [],
    });
    const env = { OS_IMAGE_URL: ctx.a2.url };
    let cli = await runCli(["fleet", "ready", id, "--site", "a"], env);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /not ready, cached on 1 of 2 alive nodes of site a/);
    assert.ok(cli.stdout.includes(`missing: ${ctx.a2.url}`));

    await ctx.a2.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(ctx.a2, id);
    await ctx.a2.app.fleet!.tick();
    assert.deepEqual((await ready(ctx.a1, `image_id=${id}&site=a`)).body, {
      ready: true,
      nodes: 2,
      cached: 2,
      missing: [],
    });
    cli = await runCli(["fleet", "ready", id, "--site", "a"], env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /ready, cached on 2 of 2 alive nodes of site a/);
    cli = await runCli(["fleet", "ready", id, "--json"], env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), { ready: true, nodes: 3, cached: 3, missing: [] });
    const metrics = await (await ctx.a1.req("/metrics")).text();
    assert.match(metrics, /^glance_cache_fleet_ready_checks_total\{result="not_ready"\} 3$/m);
  },
);

t("bad input is 400, an unknown image 404, a member 403, a node alone 409", async () => {
  assert.equal((await ready(ctx.a1, "")).status, 400);
  assert.equal((await ready(ctx.a1, "image_id=nope")).status, 400);
  assert.equal((await ready(ctx.a1, `image_id=${crypto.randomUUID()}`)).status, 404);
  const id = await createImage(ctx.origin, bytes(10));
  assert.equal((await ready(ctx.a1, `image_id=${id}`, MEMBER)).status, 403);
  assert.equal((await ctx.a1.req(`/v2/x-fleet/ready?image_id=${id}`, { method: "POST" })).headers.get("allow"), "GET");
  const alone = await start({ upstream: { url: ctx.origin.url } });
  try {
    assert.equal((await ready(alone, `image_id=${id}`)).status, 409);
  } finally {
    await alone.close();
  }
});

interface Job {
  id: string;
  state: string;
  not_before: number | null;
  deadline: number | null;
  targets: { node: string; state: string; reason: string | null }[];
}

const postJob = (node: Running, body: unknown) =>
  node.req("/v2/x-fleet/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
const getJob = async (node: Running, id: string) => (await (await node.req(`/v2/x-fleet/jobs/${id}`)).json()) as Job;

t(
  "a job's window on the fleet's clock: waiting before not_before, expired after the deadline; fleet cache --wait fails",
  async () => {
    const clock = { ms: Date.now() };
    const gate = new ImageGates();
    const w1 = await startNode("w", { auth: "noauth", cacheSource: (s: ImageSource) => gate.wrap(s) }, {
      now: () => clock.ms,
    });
    try {
      const sec = () => Math.floor(clock.ms / 1000);
      const first = await createImage(ctx.origin, bytes(2048));
      // Not before a time 100 s ahead on the fleet's clock: the target waits, and nothing is queued.
      let res = await postJob(w1, { image_id: first, site: "w", not_before: sec() + 100 });
      assert.equal(res.status, 202, await res.clone().text());
      const job = (await res.json()) as Job;
      assert.equal(job.not_before, sec() + 100);
      assert.deepEqual(job.targets.map((x) => x.state), ["waiting"]);
      await w1.app.fleet!.tick();
      await w1.app.fleet!.tick();
      assert.deepEqual((await getJob(w1, job.id)).targets.map((x) => x.state), ["waiting"]);
      assert.equal((await getJob(w1, job.id)).state, "running");
      const l = await listing(w1);
      assert.ok(!l.cached_images.some((c) => c.image_id === first));
      assert.ok(!l.queued_images.includes(first));
      assert.equal(w1.app.cache.stats.fillsStarted, 0);
      const jobs = (await (await w1.req("/v2/x-fleet/jobs")).json()) as { jobs: { id: string; targets: unknown }[] };
      assert.deepEqual(jobs.jobs.find((j) => j.id === job.id)!.targets, { waiting: 1 });
      // Past it: the part starts, and the image is cached.
      clock.ms += 200_000;
      await w1.app.fleet!.tick();
      await waitCached(w1, first);
      const over = await waitFor("job done", async () => {
        const j = await getJob(w1, job.id);
        return j.state === "done" && j;
      }, 20_000);
      assert.deepEqual(over.targets.map((x) => x.state), ["cached"]);

      // A deadline: the CLI's fleet cache --wait follows a fill held at its gate; past the deadline it expired.
      const second = await createImage(ctx.origin, bytes(4096));
      gate.arm(second);
      const cli = spawnCli(
        ["fleet", "cache", second, "--site", "w", "--deadline", String(sec() + 100), "--wait", "--interval", "0.1"],
        { OS_IMAGE_URL: w1.url },
      );
      await waitFor("the fill at its gate", async () => gate.waiting.has(second), 20_000);
      clock.ms += 200_000;
      await w1.app.fleet!.tick();
      const code = await cli.exit;
      gate.release(second);
      assert.equal(code, 1, cli.stdout() + cli.stderr());
      assert.match(cli.stderr(), /expired: not done by the job's deadline/);
      const all = (await (await w1.req("/v2/x-fleet/jobs")).json()) as {
        jobs: { image_id: string; state: string; targets: unknown }[];
      };
      const expired = all.jobs.find((j) => j.image_id === second)!;
      assert.deepEqual([expired.state, expired.targets], ["done", { expired: 1 }]);

      // Bad windows are 400.
      for (
        const body of [
          { image_id: first, deadline: sec() - 1 },
          { image_id: first, not_before: sec() + 50, deadline: sec() + 10 },
          { image_id: first, not_before: "soon" },
          { action: "prune", deadline: 1.5 },
        ]
      ) {
        assert.equal((await postJob(w1, { site: "w", ...body })).status, 400, JSON.stringify(body));
      }
      // A window on an action run once: a prune waits too.
      res = await postJob(w1, { action: "prune", site: "w", not_before: sec() + 100 });
      assert.equal(res.status, 202);
      const prune = (await res.json()) as Job;
      await w1.app.fleet!.tick();
      assert.deepEqual((await getJob(w1, prune.id)).targets.map((x) => x.state), ["waiting"]);
    } finally {
      await w1.close();
    }
  },
);

t.run();
