// What a fleet of many nodes leans on: one database connection per quiet node, and a site's followers reading its leader.
// test-needs: mariadb
import assert from "node:assert/strict";
import { suite } from "uvu";
import mysql from "mysql2/promise";
import { migrate, openPool, type Pool } from "../../src/fleet/database.ts";
import { NodeRegistry } from "../../src/fleet/nodes.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { waitFor } from "../helpers/helpers.ts";

const ctx = {} as { db: MariaDb; pool: Pool; probe: mysql.Connection };
const t = suite("many nodes");

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.pool = openPool(ctx.db.url);
  await migrate(ctx.pool, () => {});
  ctx.probe = await mysql.createConnection(ctx.db.url);
});

t.after(async () => {
  await ctx.probe?.end();
  await ctx.pool?.end();
  await ctx.db?.close();
});

/** Connections to the fleet database other than the probe's own (after a statement through `pool`). */
const connections = async (pool: Pool) => {
  await pool.query("SELECT 1");
  const [rows] = (await ctx.probe.query(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = 'glance_fleet' AND ID <> CONNECTION_ID()",
  )) as unknown as [{ n: number }[]];
  return Number(rows[0].n);
};

t("a burst opens up to four connections; once quiet, the pool keeps one", async () => {
  const pool = openPool(ctx.db.url);
  try {
    const before = await connections(pool);
    // Four statements at once: each on its own connection, all open at the same moment (SLEEP holds them).
    await Promise.all(Array.from({ length: 4 }, () => pool.query("SELECT SLEEP(0.3)")));
    const burst = await connections(pool);
    assert.equal(burst - before, 3, "the burst's four connections, one of them the pool's usual one");
    await waitFor("the burst's connections closed", async () => (await connections(pool)) === before, 15_000);
    // The one it keeps still answers.
    assert.equal(await connections(pool), before);
  } finally {
    await pool.end();
  }
});

t(
  "a follower asks the site's peers: committed ones first, then the fill furthest along, then the lowest id",
  async () => {
    const registry = new NodeRegistry(ctx.pool, 30);
    const id = async (url: string, site = "a") => (await registry.register(url, site, crypto.randomUUID())).id;
    const [leader, f1, f2, me, other] = [
      await id("http://leader"),
      await id("http://f1"),
      await id("http://f2"),
      await id("http://me"),
      await id("http://other-site", "b"),
    ];
    const image = crypto.randomUUID();
    const entry = (node: number, state: string, bytes: number) =>
      ctx.pool.query("INSERT INTO fleet_entries (node_id, image_id, state, size, bytes) VALUES (?, ?, ?, 1000, ?)", [
        node,
        image,
        state,
        bytes,
      ]);
    // Every fill at 0 bytes (just started): the lowest id, the site's leader, comes first, whatever RAND() says.
    for (const n of [f2, f1, leader, other]) await entry(n, "filling", 0);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await registry.peersHolding(image, "a", me), ["http://leader", "http://f1", "http://f2"]);
    }
    await ctx.pool.query("UPDATE fleet_entries SET bytes = 500 WHERE node_id = ?", [f2]);
    assert.deepEqual(await registry.peersHolding(image, "a", me), ["http://f2", "http://leader", "http://f1"]);
    await ctx.pool.query("UPDATE fleet_entries SET state = 'cached', bytes = 1000 WHERE node_id = ?", [f1]);
    assert.deepEqual(await registry.peersHolding(image, "a", me), ["http://f1", "http://f2", "http://leader"]);
  },
);

t.run();
