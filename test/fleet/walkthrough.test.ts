// docs/fleet.md's walkthrough, run with its own blocks: the SQL, two nodes on one host, fleet nodes, a new secret.
// test-needs: mariadb
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { bytes, createImage, type Running, start, tempDir, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { runCli } from "../helpers/cli_process.ts";
import { CURRENT_RUNTIME, freePort, type ServerProcess, startServer } from "../../support/processes.ts";

const PAGE = await readFile(new URL("../../docs/fleet.md", import.meta.url), "utf8");
const MiB = 1 << 20;

/** The first fenced block of `lang` after `marker` in the walkthrough. */
function block(lang: string, marker: string): string {
  const from = PAGE.indexOf("## Walkthrough");
  const at = PAGE.indexOf(marker, from);
  assert.ok(from >= 0 && at >= 0, `docs/fleet.md's walkthrough has ${marker}`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(PAGE.slice(at));
  assert.ok(m, `a ${lang} block after ${marker}`);
  return m[1];
}

const ctx = {} as {
  db: MariaDb;
  origin: Running;
  dir: string;
  ports: { a: number; b: number };
  nodes: Partial<Record<"a" | "b", ServerProcess>>;
};

/** node-<name>.conf as the page writes it, made to point at this test's database, upstream, ports and directories. */
function conf(name: "a" | "b", secret: string): string {
  const text = block("ini", "node-a.conf")
    .replaceAll("9301", String(ctx.ports[name]))
    .replaceAll("/var/lib/glance-cache-node/a", join(ctx.dir, name))
    .replace("@db.example/", `@127.0.0.1:${ctx.db.port}/`)
    .replace("http://glance.example:9292", ctx.origin.url)
    .replace("FLEET_SECRET_1", secret);
  assert.match(text, new RegExp(`fleet_secret = ${secret}$`, "m"));
  return text;
}

/** Starts (or restarts) node `name` from its file, as the page's `mod.ts --config-file` does. */
async function startNode(name: "a" | "b", secret: string): Promise<ServerProcess> {
  const file = join(ctx.dir, `node-${name}.conf`);
  await writeFile(file, conf(name, secret));
  // The intervals at their minimum, so that the test does not wait on the defaults' 2 s rounds.
  const node = await startServer(CURRENT_RUNTIME, join(ctx.dir, name), [
    "--config-file",
    file,
    "--fleet-poll-interval",
    "1",
    "--fleet-heartbeat-interval",
    "1",
  ], ctx.ports[name]);
  ctx.nodes[name] = node;
  return node;
}

// As the page runs it: OS_IMAGE_URL alone, no token (noauth on loopback).
const cli = (args: string[], node: "a" | "b" = "a") => runCli(args, { OS_IMAGE_URL: ctx.nodes[node]!.url });

async function metric(node: "a" | "b", name: string): Promise<number> {
  const text = await (await fetch(`${ctx.nodes[node]!.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

async function cacheOnBoth(): Promise<void> {
  const id = await createImage(ctx.origin, bytes(8 * MiB));
  const res = await cli(["fleet", "cache", id, "--wait", "--interval", "0.2"]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /done: 2 of 2 nodes ok$/m);
}

const t = suite("fleet walkthrough (docs/fleet.md)");

t.before(async () => {
  // Its server only: the database, user and grants come from the page's SQL, run as root.
  ctx.db = await startMariaDb("mysql");
  ctx.origin = await start({ auth: "noauth" });
  ctx.dir = await tempDir("gcn-walkthrough-");
  ctx.ports = { a: await freePort(), b: await freePort() };
  ctx.nodes = {};
});

t.after(async () => {
  for (const node of Object.values(ctx.nodes)) await node?.stop();
  await ctx.origin?.close();
  await ctx.db?.close();
  await rm(ctx.dir, { recursive: true, force: true });
});

t("1. the SQL makes the database, the user and enough grants", async () => {
  const mysql = (await import("mysql2/promise")).default;
  const root = await mysql.createConnection({
    host: "127.0.0.1",
    port: ctx.db.port,
    user: "root",
    multipleStatements: true,
  });
  try {
    await root.query(block("sql", "**1. The database"));
  } finally {
    await root.end();
  }
});

t(
  "2 and 3. two nodes on one host from the page's files; fleet nodes lists both alive; a job caches on both",
  async () => {
    await startNode("a", "FLEET_SECRET_1");
    await startNode("b", "FLEET_SECRET_1");
    const nodes = await waitFor("both nodes alive", async () => {
      const res = await cli(["fleet", "nodes"]);
      return res.code === 0 && (res.stdout.match(/\shost-1\s+alive\s/g) ?? []).length === 2 && res.stdout;
    }, 30_000);
    assert.match(nodes, /^ID\s+URL\s+SITE\s+STATE\s+CACHE\s+FREE\s+IMAGES\s+HITS\s+HEARTBEAT$/m);
    for (const name of ["a", "b"] as const) {
      assert.match(nodes, new RegExp(`^\\s*\\d+\\s+${ctx.nodes[name]!.url}\\s+host-1\\s+alive\\s`, "m"));
    }
    await cacheOnBoth();
    // One read Glance, the other its peer.
    assert.equal(
      (await metric("a", "glance_cache_fleet_peer_reads_total")) +
        (await metric("b", "glance_cache_fleet_peer_reads_total")),
      1,
    );
  },
);

t("4. rotating fleet_secret node by node: peer reads refused meanwhile, fills complete from Glance", async () => {
  const peerReads = async () =>
    (await metric("a", "glance_cache_fleet_peer_reads_total")) +
    (await metric("b", "glance_cache_fleet_peer_reads_total"));
  const failures = async () =>
    (await metric("a", "glance_cache_fleet_peer_failures_total")) +
    (await metric("b", "glance_cache_fleet_peer_failures_total"));

  await ctx.nodes.b!.stop();
  await startNode("b", "FLEET_SECRET_2");
  // The counters start again at 0 with each process: compare within this state only.
  const before = { reads: await peerReads(), failures: await failures() };
  await cacheOnBoth();
  assert.equal(await peerReads(), before.reads, "no peer read across two secrets");
  assert.ok((await failures()) > before.failures, "the refused peer read is counted");

  await ctx.nodes.a!.stop();
  await startNode("a", "FLEET_SECRET_2");
  const reads = await peerReads();
  await cacheOnBoth();
  assert.equal(await peerReads(), reads + 1, "one secret again: peer reads resume");
});

t("the embedded store cannot back a fleet: an image in one node's store is not found by the others", async () => {
  // A third node of the same fleet without upstream_url: images live in its own embedded store.
  const port = await freePort();
  const text = block("ini", "node-a.conf")
    .replaceAll("9301", String(port))
    .replaceAll("/var/lib/glance-cache-node/a", join(ctx.dir, "c"))
    .replace("@db.example/", `@127.0.0.1:${ctx.db.port}/`)
    .replace(/^upstream_url = .*$/m, "");
  const file = join(ctx.dir, "node-c.conf");
  await writeFile(file, text);
  const c = await startServer(CURRENT_RUNTIME, join(ctx.dir, "c"), ["--config-file", file], port);
  try {
    const created = await fetch(`${c.url}/v2/images`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "only-on-c", disk_format: "raw", container_format: "bare" }),
    });
    const { id } = (await created.json()) as { id: string };
    const put = await fetch(`${c.url}/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes(MiB) as unknown as BodyInit,
    });
    assert.equal(put.status, 204);
    const res = await runCli(["fleet", "cache", id, "--wait", "--interval", "0.2"], { OS_IMAGE_URL: c.url });
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stdout, /done: 1 of 3 nodes ok$/m);
    for (const name of ["a", "b"] as const) {
      assert.match(res.stderr, new RegExp(`^error: ${ctx.nodes[name]!.url}: not cached after 3 attempts$`, "m"));
    }
  } finally {
    await c.stop();
  }
});

t.run();
