// Comparative benchmark (issue 9's table): our node on Node and on Deno, each row against its reference
// (openssl, nginx sendfile, Glance 25.1) measured right before it in the same run. Reports, never asserts.
//
//   bash bench/setup.sh                      # once, as root: nginx, glance-api, curl, openssl
//   node --import tsx bench/compare.ts [--runs 3] [--big 1G] [--conc 100M] [--concurrency 16] [--targets node,deno,glance] [--rows put,cached,uncached,upload,concurrent,bounds] [--quick]
//
// --quick: 64M / 16M inputs, 1 run, a smoke run in under a minute, written to bench/results/quick/ (not kept in git),
// as is a run of only some --rows.
// Progress on stderr; the Markdown report on stdout and in bench/results/compare.md, with compare.svg (chart) and
// compare.json (every run). Whatever it starts is stopped again, also on error and Ctrl-C; the random inputs stay
// in $TMPDIR/gcn-bench-inputs for the next run.
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { randomFile, run, type Runtime } from "../support/processes.ts";
import { createImage, type Target, type TargetName, uploadData } from "./lib/api.ts";
import { cleanupAll, cleanupOnSignals, onCleanup, wasInterrupted } from "./lib/cleanup.ts";
import { backgroundBusyPct } from "./lib/measure.ts";
import { type Bounds, boundsLines, measureBounds } from "./bounds.ts";
import { chart, markdown } from "./lib/report.ts";
import {
  type Bench,
  cachedDownload,
  concurrentDownloads,
  type Input,
  peakRss,
  putToCached,
  type Row,
  uncachedDownload,
  upload,
} from "./rows.ts";
import { startDeno } from "./targets/deno.ts";
import { startGlance } from "./targets/glance.ts";
import { startNginx } from "./targets/nginx.ts";
import { startNode } from "./targets/node.ts";
import { opensslVersion } from "./targets/references.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const T0 = performance.now();
const log = (msg: string) =>
  process.stderr.write(`[compare ${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string" },
    big: { type: "string" },
    conc: { type: "string" },
    concurrency: { type: "string", default: "16" },
    targets: { type: "string", default: "node,deno,glance" },
    quick: { type: "boolean", default: false },
    /** A subset of rows, to iterate on one: put,cached,uncached,upload,concurrent, and bounds (the floors under the table). */
    rows: { type: "string", default: "put,cached,uncached,upload,concurrent,bounds" },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(
    "node --import tsx bench/compare.ts [--runs N (3)] [--big 1G] [--conc 100M] [--concurrency 16] [--targets node,deno,glance] [--rows put,cached,uncached,upload,concurrent,bounds] [--quick]",
  );
  process.exit(0);
}
const RUNS = Number(opt.runs ?? (opt.quick ? 1 : 3));
const TARGETS = opt.targets!.split(",").map((s) => s.trim()) as TargetName[];
for (const t of TARGETS) if (!["node", "deno", "glance"].includes(t)) throw new Error(`--targets: unknown ${t}`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: not a positive integer: ${opt.runs}`);
const INPUTS = join(tmpdir(), "gcn-bench-inputs");
// Only a full run (every row, full sizes) replaces the kept results; anything less goes to quick/.
const PARTIAL = opt.quick || opt.rows !== "put,cached,uncached,upload,concurrent,bounds";
const OUT = join(ROOT, "bench", "results", PARTIAL ? "quick" : "");

function input(label: string): Input {
  const m = /^(\d+)([MG])$/.exec(label.toUpperCase());
  if (!m) throw new Error(`not a size like 100M or 1G: ${label}`);
  const name = `random-${m[1]}${m[2]}.bin`;
  return {
    label: `${m[1]} ${m[2]}iB`,
    bytes: Number(m[1]) * (m[2] === "G" ? 2 ** 30 : 2 ** 20),
    file: join(INPUTS, name),
    name,
  };
}

async function main(): Promise<void> {
  cleanupOnSignals(log);
  for (const cmd of ["curl", "openssl", "cat"]) {
    if ((await run("sh", ["-c", `command -v ${cmd}`])).code !== 0) {
      throw new Error(`${cmd} is missing: run bench/setup.sh`);
    }
  }
  const big = input(opt.big ?? (opt.quick ? "64M" : "1G"));
  const conc = input(opt.conc ?? (opt.quick ? "16M" : "100M"));
  mkdirSync(INPUTS, { recursive: true, mode: 0o755 });
  for (const i of [big, conc]) await randomFile(i.file, i.bytes);
  const work = await mkdtemp(join(tmpdir(), "gcn-compare-"));
  onCleanup("work dir", () => rm(work, { recursive: true, force: true }));
  log(`inputs ${big.label} and ${conc.label}, ${RUNS} run(s), targets ${TARGETS.join(",")}; scratch in ${work}`);
  const busyBefore = await backgroundBusyPct();

  const nginx = await startNginx(work, INPUTS, conc.name);
  const ours: Target[] = [];
  if (TARGETS.includes("node")) ours.push(await startNode(work));
  if (TARGETS.includes("deno")) ours.push(await startDeno(work));
  const glance = TARGETS.includes("glance") ? await startGlance(work) : null;
  const ids = new Map<Target, Record<string, string>>();
  for (const t of [...ours, ...(glance ? [glance] : [])]) {
    log(`${t.name}: uploading the inputs`);
    const mine: Record<string, string> = {};
    for (const i of [big, conc]) {
      mine[i.label] = await createImage(t, `bench-${i.label}`);
      await uploadData(t, mine[i.label], i.file);
    }
    ids.set(t, mine);
  }
  const bench: Bench = { runs: RUNS, big, conc, concurrency: Number(opt.concurrency), ours, nginx, glance, ids, log };
  const rows: Row[] = [];
  const wanted = new Set(opt.rows!.split(",").map((s) => s.trim()));
  for (
    const [key, name, fn] of [
      ["put", "PUT → cached", putToCached],
      ["cached", "cached download", cachedDownload],
      ["uncached", "uncached download", uncachedDownload],
      ["upload", "upload", upload],
      ["concurrent", "concurrent cached downloads", concurrentDownloads],
    ] as const
  ) {
    if (wasInterrupted()) return;
    if (!wanted.has(key)) continue;
    log(name);
    rows.push(...(await fn(bench)));
  }
  // The order: the p99 during a fill (measured with PUT → cached) last, after peak RSS.
  const p99 = wanted.has("put") ? rows.splice(1, 1) : [];
  rows.push(peakRss(rows, ours), ...p99);
  let bounds: Bounds | undefined;
  if (wanted.has("bounds") && !wasInterrupted()) {
    log("bounds: new-file writes, hashing, Deno.serve's own floor");
    bounds = await measureBounds(work, big, conc, Number(opt.concurrency), RUNS);
  }
  const busyAfter = await backgroundBusyPct();

  const runtimes = ours.map((t) => t.name as Runtime);
  const commit = (await run("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT })).stdout.trim();
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const versions = [...ours, ...(glance ? [glance] : [])].map((t) => t.version).join(", ");
  const lines = [
    `${date} · commit ${commit} · ${cpus()[0]?.model?.trim()} × ${cpus().length} · ${RUNS} run(s) · ${
      Math.round((performance.now() - T0) / 1000)
    } s`,
    "",
    `Servers: ${versions}; ${nginx.version} (1 worker, sendfile); ${await opensslVersion()}. Downloads: \`curl -o /dev/null\`, MB/s = curl's speed_download. ` +
    `CPU: on-CPU time of the serving process, all threads (/proc/<pid>/task/*/schedstat). Peak RSS: VmHWM, reset before each row. Inputs warm in the page cache.`,
    `Machine busy (other work, while the bench idled 1 s): ${busyBefore.busy_pct} % before, ${busyAfter.busy_pct} % after.`,
    ...(bounds ? boundsLines(bounds, big, conc, Number(opt.concurrency)) : []),
  ];
  mkdirSync(OUT, { recursive: true });
  const md = markdown(rows, runtimes, {
    title: "glance-cache-node: benchmark against its references",
    lines,
    chart: "compare.svg",
  });
  writeFileSync(join(OUT, "compare.md"), md);
  writeFileSync(
    join(OUT, "compare.svg"),
    chart(rows, runtimes, `${date} · commit ${commit} · ${big.label} · ${RUNS} run(s)`),
  );
  writeFileSync(
    join(OUT, "compare.json"),
    JSON.stringify({ date, commit, runs: RUNS, big, conc, busyBefore, busyAfter, rows, bounds }, null, 2) + "\n",
  );
  process.stdout.write(`\n${md}`);
  log(`wrote ${OUT}/compare.md, compare.svg, compare.json`);
}

try {
  await main();
} catch (err) {
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  process.exitCode = 1;
} finally {
  if (!wasInterrupted()) await cleanupAll(log);
}
