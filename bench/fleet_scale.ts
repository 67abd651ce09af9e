// Bench: N real node processes (default 50 in 10 sites) on one database, a single MariaDB and a Galera cluster:
// fan-out, idle cost (statements/s, connections, CPU, memory), a member killed mid-fan-out, view latency.
// Usage: node --import tsx bench/fleet_scale.ts [--nodes 50] [--sites 10] [--runtime node|deno] [--db single|galera|both]
//        [--size 64M] [--idle 60] [--batch 5] [--poll 2] [--heartbeat 10] [--kill-wait 180] [--no-write]
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  createImageRecord,
  freePort,
  randomFile,
  type Runtime,
  type ServerProcess,
  startServer,
  uploadFile,
} from "../support/processes.ts";
import { cleanupAll, cleanupOnSignals, onCleanup } from "./lib/cleanup.ts";
import { median, sleep } from "./lib/measure.ts";
import { cpuOf, type DbReading, quantile, ratesBetween, readDb, rssMb } from "./lib/fleet_probe.ts";
import { startDb } from "./lib/fleet_db.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "50" },
    sites: { type: "string", default: "10" },
    runtime: { type: "string", default: "node" },
    db: { type: "string", default: "both" },
    size: { type: "string", default: "64M" },
    idle: { type: "string", default: "60" },
    batch: { type: "string", default: "5" },
    poll: { type: "string", default: "2" },
    heartbeat: { type: "string", default: "10" },
    "kill-wait": { type: "string", default: "180" },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(values.nodes);
const SITES = Number(values.sites);
const runtime = values.runtime as Runtime;
const unit = values.size!.slice(-1) as "K" | "M" | "G";
const SIZE = Number(values.size!.slice(0, -1)) * { K: 1 << 10, M: 1 << 20, G: 1 << 30 }[unit];
const IDLE = Number(values.idle);
const BATCH = Number(values.batch);
/** Seconds the fan-out with a member killed is waited for. */
const KILL_WAIT = Number(values["kill-wait"]);
const modes = values.db === "both" ? ["single", "galera"] : [values.db!];
if (!(N > 0 && SITES > 0 && SITES <= N && SIZE > 0 && IDLE > 0)) throw new Error("bad --nodes/--sites/--size/--idle");
const log = (msg: string) => console.error(`[fleet_scale ${new Date().toISOString().slice(11, 19)}] ${msg}`);
cleanupOnSignals(log);

const getJson = async <T>(url: string): Promise<T> => {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as T;
};
const metric = async (url: string, name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, "m").exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 15 * 60_000, everyMs = 500) {
  for (const until = Date.now() + timeoutMs; !(await fn());) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}

/** Downloads from the upstream (a plain node over the embedded store), counted there: requests and bytes. */
async function upstreamCount(origin: string) {
  return {
    reads: (await metric(origin, "glance_cache_hits_total")) + (await metric(origin, "glance_cache_misses_total")),
    bytes: sum(
      [...(await (await fetch(`${origin}/metrics`)).text()).matchAll(
        /^glance_cache_served_bytes_total\{[^}]*\} (\d+)/gm,
      )]
        .map((m) => Number(m[1])),
    ),
  };
}

interface Job {
  state: string;
  targets: { node: string; state: string; reason: string | null }[];
}

/** One mode's figures (single server or Galera). */
interface ModeResult {
  mode: string;
  members: number;
  startSeconds: number;
  fanOut: FanOut;
  idle: Idle;
  latency: Record<string, { median: number; p90: number }>;
  killed?: FanOut & { killedAt: number; jobState: string; jobDone: number; localCached: number };
  notes: string[];
}
interface FanOut {
  seconds: number;
  upstreamReads: number;
  upstreamImages: number;
  nodeUpstreamReads: number;
  peerReads: number;
  peerFailures: number;
  failed: number;
  cached: number;
}
interface Idle {
  seconds: number;
  rates: Record<string, number>;
  connections: number;
  perMember: number[];
  maxUsedConnections: number;
  cpuPerMin: { median: number; p90: number; max: number };
  dbCpuPerMin: number;
  rssMb: { median: number; max: number; total: number };
}

const scratch = await mkdtemp(join(tmpdir(), "gcn-bench-scale-"));
onCleanup("scratch", () => rm(scratch, { recursive: true, force: true }));
const results: ModeResult[] = [];
let reference = NaN;
try {
  const inputs = join(tmpdir(), "gcn-bench-inputs");
  await mkdir(inputs, { recursive: true });
  const file = join(inputs, `random-${values.size}.bin`);
  await randomFile(file, SIZE);
  const origin = await startServer(runtime, join(scratch, "origin"), ["--image-cache-max-size", String(16 * SIZE)]);
  onCleanup("origin", () => origin.stop());
  const upload = async (name: string) => {
    const id = await createImageRecord(origin.url, name);
    await uploadFile(origin.url, id, file);
    // Read once through the origin, so that every fan-out reads an upstream that has the image in its cache.
    await (await fetch(`${origin.url}/v2/images/${id}/file`)).arrayBuffer();
    return id;
  };
  const common = ["--upstream-url", origin.url, "--metadata-cache-time", "0", "--image-cache-max-size"];
  common.push(String(4 * SIZE));

  // The reference, in this run: one node alone fills the image from the same upstream.
  {
    const id = await upload("reference");
    const single = await startServer(runtime, join(scratch, "alone"), common);
    const t0 = performance.now();
    await fetch(`${single.url}/v2/cache/${id}`, { method: "PUT" });
    await waitUntil(
      "the reference fill",
      async () => (await getJson<{ cached_images: unknown[] }>(`${single.url}/v2/cache`)).cached_images.length === 1,
      600_000,
      100,
    );
    reference = (performance.now() - t0) / 1000;
    await single.stop();
    log(`one node alone filled ${values.size} in ${reference.toFixed(1)} s`);
  }

  for (const mode of modes) {
    const notes: string[] = [];
    const db = await startDb(mode as "single" | "galera", join(scratch, `db-${mode}`));
    const closeDb = onCleanup(`database ${mode}`, () => db.close());
    log(`${mode}: database up (${db.urls.length} member${db.urls.length > 1 ? "s" : ""})`);
    const [imgA, imgB] = [await upload(`${mode}-a`), await upload(`${mode}-b`)];

    // The nodes, in batches (each start transpiles and migrates: 2 shared cores).
    const nodes: ServerProcess[] = [];
    await mkdir(join(scratch, mode), { recursive: true });
    const stopNodes = onCleanup(`nodes ${mode}`, async () => {
      await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    });
    const t0 = performance.now();
    // Node 0 alone first: it creates the schema (on Galera, main's GET_LOCK is per member: see docs/fleet.md).
    for (let i = 0; i < N; i += i === 0 ? 1 : BATCH) {
      const batch = await Promise.all(
        Array.from({ length: i === 0 ? 1 : Math.min(BATCH, N - i) }, async (_, k) => {
          const n = i + k;
          const port = await freePort();
          return await startServer(runtime, join(scratch, mode, `n${n}`), [
            ...common,
            ...db.nodeArgs(n),
            "--worker-self-reference-url",
            `http://127.0.0.1:${port}`,
            "--fleet-site",
            `s${n % SITES}`,
            "--fleet-secret",
            "bench",
            "--fleet-poll-interval",
            values.poll!,
            "--fleet-heartbeat-interval",
            values.heartbeat!,
          ], port).catch((err) => {
            throw new Error(`node ${n}: ${err.message} (log: ${join(scratch, mode, `n${n}`)}.log)`);
          });
        }),
      );
      nodes.push(...batch);
    }
    await waitUntil("every node alive", async () => {
      const { nodes: rows } = await getJson<{ nodes: { status: string }[] }>(`${nodes[0].url}/v2/x-fleet/nodes`);
      return rows.filter((r) => r.status === "alive").length === N;
    }, 120_000);
    const startSeconds = (performance.now() - t0) / 1000;
    log(
      `${mode}: ${N} nodes alive after ${startSeconds.toFixed(0)} s; total RSS ${
        sum(nodes.map((n) => rssMb(n.pid))).toFixed(0)
      } MB`,
    );
    await sleep(3000);

    const fanOut = async (id: string, halfway?: { afterMs: number; kill: () => Promise<void> }) => {
      const readsBefore = await Promise.all(nodes.map((n) => nodeReads(n.url)));
      const up0 = await upstreamCount(origin.url);
      const t = performance.now();
      const res = await fetch(`${nodes[0].url}/v2/x-fleet/jobs`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action: "cache", image_id: id }),
      });
      if (res.status !== 202) throw new Error(`POST /v2/x-fleet/jobs: ${res.status} ${await res.text()}`);
      const jobId = ((await res.json()) as { id: string }).id;
      let job: Job | undefined;
      let killedAt = NaN;
      let gaveUp = false;
      await waitUntil("the fan-out", async () => {
        job = await getJson<Job>(`${nodes[0].url}/v2/x-fleet/jobs/${jobId}`).catch(() => job);
        if (!halfway) return job?.state === "done";
        // Half the undisturbed fan-out's time -> the kill (the fills of 50 nodes sharing the cores all end near the
        // end). Nodes on the killed member may not report: every node's own cache is the answer.
        const local = await Promise.all(nodes.map((n) => cachedHere(n.url, id)));
        if (Number.isNaN(killedAt) && performance.now() - t >= halfway.afterMs) {
          killedAt = (performance.now() - t) / 1000;
          await halfway.kill();
        }
        // Nodes cut off from the database may never take their part: given up on after KILL_WAIT.
        if (!local.every(Boolean) && performance.now() - t > KILL_WAIT * 1000) return (gaveUp = true);
        return local.every(Boolean);
      });
      const seconds = gaveUp ? NaN : (performance.now() - t) / 1000;
      // And when the job's rows say so: nodes on the killed member report once they reach another one (failover).
      let jobDone = job?.state === "done" ? seconds : NaN;
      if (halfway) {
        await waitUntil("the job done", async () => {
          job = await getJson<Job>(`${nodes[0].url}/v2/x-fleet/jobs/${jobId}`).catch(() => job);
          if (job?.state === "done") jobDone = (performance.now() - t) / 1000;
          return job?.state === "done" || performance.now() - t > KILL_WAIT * 1000;
        });
      }
      const up1 = await upstreamCount(origin.url);
      const readsAfter = await Promise.all(nodes.map((n) => nodeReads(n.url)));
      const d = (k: keyof Reads) => sum(readsAfter.map((r, i) => r[k] - readsBefore[i][k]));
      return {
        jobId,
        job: job!,
        killedAt,
        seconds,
        jobDone,
        upstreamReads: up1.reads - up0.reads,
        upstreamImages: (up1.bytes - up0.bytes) / SIZE,
        nodeUpstreamReads: d("upstream"),
        peerReads: d("peer"),
        peerFailures: d("failures"),
        failed: job!.targets.filter((x) => x.state === "failed").length,
        cached: job!.targets.filter((x) => x.state === "cached").length,
      };
    };

    const a = await fanOut(imgA);
    log(`${mode}: fan-out ${a.seconds.toFixed(1)} s, upstream ${a.upstreamReads}, peer ${a.peerReads}`);
    if (a.failed) notes.push(`fan-out: ${a.failed} targets failed (${a.job.targets.find((x) => x.reason)?.reason})`);

    // Idle: the fleet with its rows, nothing asked of it.
    await sleep(2 * Number(values.poll) * 1000 + 1000);
    const pids = nodes.map((n) => n.pid);
    const r0: DbReading = await readDb(db.urls);
    const c0 = cpuOf(pids);
    const d0 = cpuOf(db.pids());
    await sleep(IDLE * 1000);
    const c1 = cpuOf(pids);
    const d1 = cpuOf(db.pids());
    const r1 = await readDb(db.urls);
    const span = (r1.at - r0.at) / 1000;
    const perMin = c1.map((c, i) => ((c - c0[i]) / span) * 60);
    const rss = pids.map(rssMb);
    const idle: Idle = {
      seconds: span,
      rates: ratesBetween(r0, r1),
      connections: r1.connections,
      perMember: r1.perMember,
      maxUsedConnections: r1.maxUsedConnections,
      cpuPerMin: { median: median(perMin), p90: quantile(perMin, 0.9), max: Math.max(...perMin) },
      dbCpuPerMin: ((sum(d1) - sum(d0)) / span) * 60,
      rssMb: { median: median(rss), max: Math.max(...rss), total: sum(rss) },
    };
    log(`${mode}: idle ${idle.rates.Questions.toFixed(1)} statements/s, ${idle.connections} connections`);

    // Latency of the fleet-wide reads, with the fleet's real rows.
    const latency: ModeResult["latency"] = {};
    for (
      const [name, path] of [
        ["GET /v2/x-fleet/view", "/v2/x-fleet/view"],
        ["GET /v2/cache/nodes/{id}", `/v2/cache/nodes/${imgA}`],
        ["GET /v2/x-fleet/nodes", "/v2/x-fleet/nodes"],
      ]
    ) {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const res = await fetch(nodes[(i * 7) % N].url + path);
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${path}: ${res.status}`);
        ms.push(performance.now() - t);
      }
      latency[name] = { median: median(ms), p90: quantile(ms, 0.9) };
    }

    let killed: ModeResult["killed"];
    if (db.kill) {
      const victim = db.urls.length - 1;
      const b = await fanOut(imgB, {
        afterMs: (a.seconds * 1000) / 2,
        kill: async () => {
          log(`${mode}: halfway through the fan-out's time: SIGKILL of database member ${victim}`);
          await db.kill!(victim);
        },
      });
      const local = await Promise.all(nodes.map((n) => cachedHere(n.url, imgB)));
      killed = { ...b, jobState: b.job.state, localCached: local.filter(Boolean).length };
      log(`${mode}: fan-out with a member killed: ${b.seconds.toFixed(1)} s, job ${b.job.state}`);
    }
    results.push({ mode, members: db.urls.length, startSeconds, fanOut: a, idle, latency, killed, notes });
    await stopNodes();
    await closeDb();
  }
  const md = report(results);
  console.log(md);
  if (!values["no-write"]) {
    const dir = new URL("./results/", import.meta.url).pathname;
    await writeFile(join(dir, "fleet_scale.md"), md + "\n");
    await writeFile(
      join(dir, "fleet_scale.json"),
      JSON.stringify({ date: new Date().toISOString(), argv: process.argv.slice(2), reference, results }, null, 2) +
        "\n",
    );
  }
} finally {
  await cleanupAll(log);
}

interface Reads {
  upstream: number;
  peer: number;
  failures: number;
}
async function nodeReads(url: string): Promise<Reads> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return {
    upstream: m("glance_cache_fleet_upstream_reads_total"),
    peer: m("glance_cache_fleet_peer_reads_total"),
    failures: m("glance_cache_fleet_peer_failures_total"),
  };
}
async function cachedHere(url: string, id: string): Promise<boolean> {
  const list = await getJson<{ cached_images: { image_id: string }[] }>(`${url}/v2/cache`).catch(() => undefined);
  return list?.cached_images.some((e) => e.image_id === id) ?? false;
}

/** The one table: each figure per database beside the docs' 500-node estimate scaled to N. */
function report(rs: ModeResult[]): string {
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const col = (fn: (r: ModeResult) => string) => rs.map(fn);
  const rows: [string, string[], string][] = [
    [
      `fan-out of ${values.size} to ${N} nodes: time to all cached`,
      col((r) => `${f(r.fanOut.seconds)} s (${f(r.fanOut.seconds / reference, 2)}× one node's fill)`),
      `one node alone ${f(reference)} s (this run); N fills on ${cpus().length} cores ≥ ${
        f((N * reference) / cpus().length)
      } s, + 3 rounds of ${values.poll} s`,
    ],
    ["  reads of the upstream (counted there)", col((r) => `${r.fanOut.upstreamReads}`), `${SITES} (one per site)`],
    [
      "  peer reads / peer failures / failed targets",
      col((r) => `${r.fanOut.peerReads} / ${r.fanOut.peerFailures} / ${r.fanOut.failed}`),
      `${N - SITES} / 0 / 0`,
    ],
    [
      `idle: statements/s (Questions, ${IDLE} s)`,
      col((r) => f(r.idle.rates.Questions)),
      `${f(N * 1.2)} (N reads + N/5 writes)`,
    ],
    ["  SELECT/s", col((r) => f(r.idle.rates.Com_select)), `${f(N)} (N/2 rounds × 2)`],
    [
      "  UPDATE/s (heartbeats)",
      col((r) => f(r.idle.rates.Com_update + r.idle.rates.Com_update_multi)),
      `${f(N / 10)} (N/10)`,
    ],
    [
      "  INSERT+DELETE/s",
      col((r) =>
        f(
          r.idle.rates.Com_insert + r.idle.rates.Com_insert_select + r.idle.rates.Com_delete +
            r.idle.rates.Com_delete_multi + r.idle.rates.Com_replace,
        )
      ),
      `≤ ${f(N / 10)} (hit upserts, none when idle)`,
    ],
    ["  Galera write sets/s", col((r) => (r.members > 1 ? f(r.idle.rates.wsrep_replicated) : "n/a")), "—"],
    [
      "idle: connections (per node)",
      col((r) => `${r.idle.connections} (${f(r.idle.connections / N, 2)}); per member ${r.idle.perMember.join("/")}`),
      `≤ ${4 * N} (pool of 4 per node)`,
    ],
    ["  Max_used_connections (whole run)", col((r) => `${r.idle.maxUsedConnections}`), "max_connections 500"],
    [
      "idle: CPU per node (s per min: median / p90 / max)",
      col((r) => `${f(r.idle.cpuPerMin.median, 2)} / ${f(r.idle.cpuPerMin.p90, 2)} / ${f(r.idle.cpuPerMin.max, 2)}`),
      "—",
    ],
    ["  database CPU (s per min, all members)", col((r) => f(r.idle.dbCpuPerMin, 2)), "—"],
    [
      "resident memory per node (median / max; total)",
      col((r) => `${f(r.idle.rssMb.median, 0)} / ${f(r.idle.rssMb.max, 0)} MB; ${f(r.idle.rssMb.total, 0)} MB`),
      "—",
    ],
    ...["GET /v2/x-fleet/view", "GET /v2/cache/nodes/{id}", "GET /v2/x-fleet/nodes"].map((k) =>
      [
        `${k} (median / p90 of 20)`,
        col((r) => `${f(r.latency[k].median, 0)} / ${f(r.latency[k].p90, 0)} ms`),
        "—",
      ] as [string, string[], string]
    ),
    [
      "fan-out, one database member SIGKILLed halfway: time to all cached",
      col((r) =>
        r.killed
          ? `${
            Number.isFinite(r.killed.seconds) ? `${f(r.killed.seconds)} s` : `not within ${KILL_WAIT} s`
          } (killed at ${f(r.killed.killedAt)} s), ${r.killed.localCached}/${N} nodes hold it; the job ${
            Number.isFinite(r.killed.jobDone)
              ? `done at ${f(r.killed.jobDone)} s`
              : `${r.killed.jobState} after ${KILL_WAIT} s (${r.killed.cached} targets cached)`
          }`
          : "n/a (one server)"
      ),
      "—",
    ],
    [
      "  reads of the upstream / peer reads",
      col((r) => (r.killed ? `${r.killed.upstreamReads} / ${r.killed.peerReads}` : "n/a")),
      `${SITES} / ${N - SITES}`,
    ],
    ["start of the N nodes (batches of " + BATCH + ")", col((r) => `${f(r.startSeconds, 0)} s`), "—"],
  ];
  const head = [
    "figure",
    ...rs.map((r) => (r.members > 1 ? `Galera (${r.members} members)` : "one MariaDB")),
    `estimate for N = ${N}`,
  ];
  const L = [
    `${N} ${runtime} nodes in ${SITES} sites, ${values.size} images, poll ${values.poll} s, heartbeat ${values.heartbeat} s (${
      new Date().toISOString().slice(0, 16)
    }Z, load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map(([name, cells, est]) => `| ${name} | ${cells.join(" | ")} | ${est} |`),
  ];
  for (const r of rs) for (const n of r.notes) L.push("", `${r.mode}: ${n}`);
  return L.join("\n");
}
