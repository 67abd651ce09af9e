// Bench: a fan-out of one image (default 1 GiB) to 3 fleet nodes against one node's fill, and the fleet view's latency
// with 50 simulated nodes × 10,000 cached entries in the database.
// Usage: node --import tsx bench/fleet.ts [--size 1G] [--runtime node|deno] [--nodes 50] [--entries 10000] [--view-only]
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openPool } from "../src/fleet/database.ts";
import { startMariaDb } from "../test/helpers/mariadb.ts";
import {
  freePort,
  randomFile,
  type Runtime,
  type ServerProcess,
  startServer,
  uploadImage,
} from "../support/processes.ts";
import { median } from "./lib/measure.ts";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1G" },
    runtime: { type: "string", default: "node" },
    nodes: { type: "string", default: "50" },
    entries: { type: "string", default: "10000" },
    "view-only": { type: "boolean", default: false },
  },
});
const size = Number(values.size!.slice(0, -1)) * { M: 1 << 20, G: 1 << 30 }[values.size!.slice(-1) as "M" | "G"];
const runtime = values.runtime as Runtime;

const metric = async (url: string, name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, "m").exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN);
const waitUntil = async (what: string, fn: () => Promise<boolean>) => {
  for (const until = Date.now() + 30 * 60_000; !(await fn());) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

const db = await startMariaDb();
const dirs: string[] = [];
const procs: ServerProcess[] = [];
const dir = async () => {
  const d = await mkdtemp(join(tmpdir(), "gcn-bench-fleet-"));
  dirs.push(d);
  return d;
};
try {
  const inputs = join(tmpdir(), "gcn-bench-inputs");
  await mkdir(inputs, { recursive: true });
  const file = join(inputs, `random-${values.size}.bin`);
  if (!values["view-only"]) await randomFile(file, size);
  const origin = await startServer(runtime, await dir());
  procs.push(origin);
  const id = values["view-only"] ? "" : await uploadImage(origin.url, file);
  const common = [
    "--upstream-url",
    origin.url,
    "--metadata-cache-time",
    "0",
    "--image-cache-max-size",
    String(4 * size),
  ];

  let singleSeconds = 0;
  if (!values["view-only"]) {
    // One node alone (this also warms the origin's own cache, so both runs read the origin from its cache).
    const single = await startServer(runtime, await dir(), common);
    procs.push(single);
    const t0 = performance.now();
    await fetch(`${single.url}/v2/cache/${id}`, { method: "PUT" });
    await waitUntil(
      "single cached",
      async () =>
        ((await (await fetch(`${single.url}/v2/cache`)).json()) as { cached_images: unknown[] }).cached_images
          .length === 1,
    );
    singleSeconds = (performance.now() - t0) / 1000;
    await single.stop();
  }
  const fleet: ServerProcess[] = [];
  for (const site of ["a", "a", "b"]) {
    const port = await freePort();
    const args = [
      ...common,
      "--fleet-database-url",
      db.url,
      "--worker-self-reference-url",
      `http://127.0.0.1:${port}`,
      "--fleet-site",
      site,
      "--fleet-secret",
      "bench",
      "--fleet-poll-interval",
      "1",
      "--fleet-heartbeat-interval",
      "1",
    ];
    const p = await startServer(runtime, await dir(), args, port);
    procs.push(p);
    fleet.push(p);
  }
  if (!values["view-only"]) {
    const t0 = performance.now();
    const job = (await (await fetch(`${fleet[0].url}/v2/x-fleet/jobs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_id: id }),
    })).json()) as { id: string };
    await waitUntil(
      "job done",
      async () =>
        ((await (await fetch(`${fleet[0].url}/v2/x-fleet/jobs/${job.id}`)).json()) as { state: string }).state ===
          "done",
    );
    const fanOutSeconds = (performance.now() - t0) / 1000;
    let upstream = 0;
    let peer = 0;
    for (const p of fleet) {
      upstream += await metric(p.url, "glance_cache_fleet_upstream_reads_total");
      peer += await metric(p.url, "glance_cache_fleet_peer_reads_total");
    }
    console.log(`| runtime | image | one node's fill | fan-out to 3 nodes (2 sites) | upstream reads | peer reads |`);
    console.log(`|---|---|---|---|---|---|`);
    console.log(
      `| ${runtime} | ${values.size} | ${singleSeconds.toFixed(1)} s | ${
        fanOutSeconds.toFixed(1)
      } s | ${upstream} | ${peer} |`,
    );
  }

  // The view with simulated nodes: rows written straight into the database.
  const simNodes = Number(values.nodes);
  const entries = Number(values.entries);
  const pool = openPool(db.url);
  const ids = Array.from({ length: entries }, () => crypto.randomUUID());
  for (let n = 0; n < simNodes; n++) {
    await pool.query(
      "INSERT INTO fleet_nodes (url, site, registered_at, heartbeat_at) VALUES (?, ?, NOW(3), NOW(3) + INTERVAL 1 DAY)",
      [`http://sim-${n}:9292`, `s${n % 10}`],
    );
    const [[row]] =
      (await pool.query("SELECT id FROM fleet_nodes WHERE url = ?", [`http://sim-${n}:9292`])) as unknown as [
        { id: number }[],
      ];
    for (let i = 0; i < entries; i += 2000) {
      const rows = ids.slice(i, i + 2000).map((
        img,
      ) => [row.id, img, "cached", 1 << 30, 1 << 30, 3, Date.now() / 1000, null]);
      await pool.query(
        "INSERT INTO fleet_entries (node_id, image_id, state, size, bytes, hits, last_accessed, checksum) VALUES ?",
        [rows],
      );
    }
  }
  await pool.end();
  const time = async (path: string, runs = 5) => {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const res = await fetch(fleet[1].url + path);
      bytes = (await res.arrayBuffer()).byteLength;
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      ms.push(performance.now() - t);
    }
    return `${median(ms).toFixed(0)} ms (${(bytes / 1e6).toFixed(1)} MB)`;
  };
  console.log(`\n| ${simNodes} simulated nodes × ${entries} entries | median of 5 |`);
  console.log(`|---|---|`);
  console.log(`| GET /v2/x-fleet/view (first page: 100 images) | ${await time("/v2/x-fleet/view")} |`);
  console.log(`| GET /v2/x-fleet/view?limit=1000 | ${await time("/v2/x-fleet/view?limit=1000")} |`);
  console.log(`| GET /v2/x-fleet/view?image_id= | ${await time(`/v2/x-fleet/view?image_id=${ids[0]}`)} |`);
  console.log(`| GET /v2/x-fleet/nodes | ${await time("/v2/x-fleet/nodes")} |`);
  console.log(`| GET /metrics (fleet gauges) | ${await time("/metrics")} |`);
} finally {
  for (const p of procs) await p.stop();
  for (const d of dirs) {
    await rm(d, { recursive: true, force: true });
    await rm(`${d}.log`, { force: true });
  }
  await db.close();
}
