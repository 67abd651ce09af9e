// Upgrades of the fleet database (docs/operations.md#upgrading): the program starts on a database migrated by an
// older version and brings it up to date; a node older than the database's schema does not start, naming both.
// test-needs: mariadb
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { tempDir, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { programCommand, spawnCli } from "../helpers/cli_process.ts";
import { migrate, openPool, SCHEMA_VERSION } from "../../src/fleet/database.ts";
import { freePort } from "../../support/processes.ts";

const ctx = {} as { db: MariaDb; dir: string };
const t = suite("upgrade: the fleet database's schema");

t.before(async () => {
  ctx.db = await startMariaDb("upgrade");
  ctx.dir = await tempDir("gcn-upgrade-schema-");
});

t.after(async () => {
  await ctx.db?.close();
  await rm(ctx.dir, { recursive: true, force: true });
});

const versions = async (): Promise<number[]> => {
  const pool = openPool(ctx.db.url);
  try {
    const [rows] = (await pool.query("SELECT version FROM fleet_migrations")) as unknown as [{ version: number }[]];
    return rows.map((r) => r.version).sort((a, b) => a - b);
  } finally {
    await pool.end();
  }
};

/** The program as a fleet node on this database; resolves with its exit once it stops, or its URL once it serves. */
async function program(name: string) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["--port", String(port), "--data-dir", join(ctx.dir, name), "--auth", "noauth"];
  args.push("--fleet-database-url", ctx.db.url, "--worker-self-reference-url", url);
  const cli = spawnCli(args, {}, programCommand());
  return { cli, url };
}

t("a database an older version migrated (schema 1): the new node applies the missing steps at start", async () => {
  // Schema 1 as the first version wrote it: the older node's own migration, the steps after it not applied.
  const pool = openPool(ctx.db.url);
  try {
    await migrate(pool, () => {});
    await pool.query("DELETE FROM fleet_migrations WHERE version > 1");
  } finally {
    await pool.end();
  }
  // (The later steps are idempotent, so the tables as they are stand in for schema 1's.)
  const { cli, url } = await program("new");
  try {
    await waitFor("the node serves", async () => {
      if (cli.child.exitCode !== null) throw new Error(`the node exited: ${cli.stderr()}`);
      return await fetch(`${url}/versions`).then((r) => r.ok, () => false);
    }, 30_000);
    assert.deepEqual(await versions(), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    for (let v = 2; v <= SCHEMA_VERSION; v++) {
      assert.match(cli.stdout() + cli.stderr(), new RegExp(`fleet database: applied migration ${v}\\b`));
    }
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exit;
  }
});

t("a node older than the database's schema does not start, and says why", async () => {
  const pool = openPool(ctx.db.url);
  try {
    await pool.query("INSERT INTO fleet_migrations (version, applied_at) VALUES (?, NOW(3))", [SCHEMA_VERSION + 1]);
  } finally {
    await pool.end();
  }
  const { cli } = await program("old");
  const code = await cli.exit;
  assert.equal(code, 1, cli.stdout() + cli.stderr());
  assert.match(
    cli.stdout() + cli.stderr(),
    new RegExp(
      `fleet database: schema version ${SCHEMA_VERSION + 1} is newer than this node's \\(${SCHEMA_VERSION}\\)`,
    ),
  );
});

t.run();
