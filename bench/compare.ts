// Comparative benchmark: this cache node on Node and on Deno against references (cat, cp, openssl,
// nginx from Debian) and the real Glance 25.1 from Debian with its image cache on.
//
//   node --import tsx bench/compare.ts [--runs 3] [--sizes 1M,100M,1G] [--quick] [--targets node,deno,glance]
//
// --quick: sizes 1M,16M and 1 run (a smoke run). Progress goes to stderr, the Markdown report to stdout
// and to bench/results/compare.md, the raw numbers to bench/results/compare.json, a bar chart of the
// ratios to bench/results/compare.png. It reports, never asserts. Everything runs one thing at a time
// (the machine has 2 cores): references, then nginx, then each server alone. Whatever it starts
// (servers, nginx, glance-api, curl) is stopped and its temporary directories removed, also on error
// and on Ctrl-C; the random inputs stay in $TMPDIR/gcn-bench-inputs for the next run.
import { type ChildProcess, spawn, type SpawnOptions } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { denoBinary, freePort, median, peakRssMb, resetPeakRss, type Runtime, type ServerProcess, startServer } from "../support/processes.ts";
import { chartSvg, renderPng } from "./chart.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const T0 = performance.now();

// ---------------------------------------------------------------------------------------------- options
const { values: opt } = parseArgs({
  options: {
    runs: { type: "string" },
    sizes: { type: "string" },
    quick: { type: "boolean", default: false },
    targets: { type: "string", default: "node,deno,glance" },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log("node --import tsx bench/compare.ts [--runs N (3)] [--sizes 1M,100M,1G] [--quick] [--targets node,deno,glance]");
  process.exit(0);
}
const RUNS = Number(opt.runs ?? (opt.quick ? 1 : 3));
const SIZES = (opt.sizes ?? (opt.quick ? "1M,16M" : "1M,100M,1G")).split(",").map((s) => s.trim().toUpperCase());
const TARGETS = opt.targets!.split(",").map((s) => s.trim()) as TargetName[];
const UNIT = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as const;
function bytesOf(size: string): number {
  const m = /^(\d+)([KMG])$/.exec(size);
  if (!m) throw new Error(`--sizes: not a size like 1M or 1G: ${size}`);
  return Number(m[1]) * UNIT[m[2] as keyof typeof UNIT];
}
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: not a positive integer: ${opt.runs}`);
for (const t of TARGETS) if (!["node", "deno", "glance"].includes(t)) throw new Error(`--targets: unknown ${t}`);
SIZES.sort((a, b) => bytesOf(a) - bytesOf(b));
/** The image of the single big downloads and of the fill during which GET /v2/cache is timed. */
const BIG = SIZES[SIZES.length - 1];
/** The image of the 16 concurrent downloads. */
const CONC = SIZES.includes("100M") ? "100M" : BIG;
const CONCURRENCY = 16;
const LATENCY_POLL_MS = 10;
const GLANCE_HEADERS = { "X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Tenant-Id": "admin", "X-User-Id": "admin" };

const log = (msg: string) => process.stderr.write(`[compare ${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mbps = (bytes: number, s: number) => bytes / 1e6 / s;

// ------------------------------------------------------------------------- cleanup, also on Ctrl-C
const children = new Set<ChildProcess>();
const cleanups: { name: string; fn: () => Promise<void> }[] = [];
function onCleanup(name: string, fn: () => Promise<void>): () => Promise<void> {
  const entry = { name, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}
async function cleanupAll(): Promise<void> {
  for (const c of children) c.kill("SIGKILL");
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c.fn();
    } catch (err) {
      log(`cleanup ${c.name}: ${err instanceof Error ? err.message : err}`);
    }
  }
}
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping everything this bench started`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------------------- child processes
interface Done {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  seconds: number;
}
/** Runs a command (tracked for cleanup); the seconds are wall clock from spawn to exit. */
function run(cmd: string, args: string[], opts: SpawnOptions & { quiet?: boolean } = {}): Promise<Done> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => (stdout += d));
    child.stderr?.on("data", (d) => (stderr += d));
    child.on("error", (err) => {
      children.delete(child);
      reject(err);
    });
    child.on("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}
async function runOk(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<Done> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(-500)}`);
  return r;
}
/** Seconds a command takes, its output thrown away (stdout to /dev/null). */
async function timed(cmd: string, args: string[]): Promise<number> {
  const r = await run(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.seconds;
}
const has = (cmd: string) => run("sh", ["-c", `command -v ${cmd}`]).then((r) => r.code === 0, () => false);

// ------------------------------------------------------------------------------------- downloads
const headerArgs = (h: Record<string, string>) => Object.entries(h).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
interface Download {
  seconds: number;
  bytes: number;
  status: number;
}
/** One download with curl into /dev/null, wall clock around the process. */
async function curlGet(url: string, headers: Record<string, string>): Promise<Download> {
  const r = await run("curl", ["-sS", "-o", "/dev/null", "--max-time", "1200", "-w", "%{http_code} %{size_download}", ...headerArgs(headers), url]);
  const [status, bytes] = r.stdout.trim().split(" ").map(Number);
  if (r.code !== 0) throw new Error(`curl ${url}: exit ${r.code}: ${r.stderr.trim()} (status ${status}, ${bytes} bytes)`);
  return { seconds: r.seconds, bytes, status };
}
/** One download, checked: MB/s. */
async function download(url: string, headers: Record<string, string>, size: number): Promise<number> {
  const d = await curlGet(url, headers);
  if (d.status !== 200 || d.bytes !== size) throw new Error(`GET ${url}: status ${d.status}, ${d.bytes} of ${size} bytes`);
  return mbps(d.bytes, d.seconds);
}
/** n simultaneous downloads (one curl each): aggregate MB/s over the wall clock from the first start to the last end. */
async function downloadMany(n: number, url: string, headers: Record<string, string>, size: number): Promise<number> {
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, () => curlGet(url, headers)));
  const s = (performance.now() - t0) / 1000;
  const bad = all.filter((d) => d.status !== 200 || d.bytes !== size);
  if (bad.length) throw new Error(`${bad.length} of ${n} downloads of ${url} failed: ${bad.map((d) => `${d.status}/${d.bytes}`).join(", ")}`);
  return mbps(n * size, s);
}

// ------------------------------------------------------------------------------------ statistics
function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const med = (xs: number[]) => (xs.length ? median(xs) : NaN);

/** How busy the machine is while this bench sits idle for a second (other work distorts the numbers). */
async function backgroundBusyPct(ms = 1000): Promise<number> {
  const read = () => readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const a = read();
  await sleep(ms);
  const b = read();
  const d = b.map((v, i) => v - a[i]);
  const total = d.reduce((x, y) => x + y, 0);
  const idle = d[3] + (d[4] ?? 0);
  return total > 0 ? (100 * (total - idle)) / total : NaN;
}
const machine: { at: string; busy_pct: number; loadavg1: number }[] = [];
async function noteLoad(at: string): Promise<void> {
  const busy = await backgroundBusyPct();
  machine.push({ at, busy_pct: Math.round(busy), loadavg1: Number(loadavg()[0].toFixed(2)) });
  log(`machine busy ${busy.toFixed(0)} % while the bench idles (load ${loadavg()[0].toFixed(2)}) before ${at}`);
}

// ---------------------------------------------------------------------------------------- inputs
const INPUTS = join(tmpdir(), "gcn-bench-inputs");
const inputFile = (size: string) => join(INPUTS, `random-${size}.bin`);
async function ensureInput(size: string): Promise<string> {
  const path = inputFile(size);
  const bytes = bytesOf(size);
  if (existsSync(path) && statSync(path).size === bytes) return path;
  log(`writing ${path}`);
  const tmp = `${path}.part-${process.pid}`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    for (let left = bytes; left > 0; ) {
      const n = Math.min(left, 1 << 20);
      writeSync(fd, randomBytes(n));
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  await rename(tmp, path);
  return path;
}

// ------------------------------------------------------------------------------------ references
interface FileRefs {
  cat_s: number[];
  cp_s: number[];
  cp_sync_s: number[];
  md5_s: number[];
  sha512_s: number[];
}
async function fileReferences(work: string): Promise<Record<string, FileRefs>> {
  const out: Record<string, FileRefs> = {};
  const dest = join(work, "cp-dest.bin");
  for (const size of SIZES) {
    const file = inputFile(size);
    await timed("cat", [file]); // warm the page cache: every reader below (and every server) reads it warm
    const r: FileRefs = { cat_s: [], cp_s: [], cp_sync_s: [], md5_s: [], sha512_s: [] };
    for (let i = 0; i < RUNS; i++) r.cat_s.push(await timed("cat", [file]));
    for (let i = 0; i < RUNS; i++) {
      r.cp_s.push(await timed("cp", [file, dest]));
      await rm(dest, { force: true });
    }
    for (let i = 0; i < RUNS; i++) {
      r.cp_sync_s.push(await timed("sh", ["-c", 'cp "$1" "$2" && sync "$2"', "sh", file, dest]));
      await rm(dest, { force: true });
    }
    for (let i = 0; i < RUNS; i++) r.md5_s.push(await timed("openssl", ["dgst", "-md5", file]));
    for (let i = 0; i < RUNS; i++) r.sha512_s.push(await timed("openssl", ["dgst", "-sha512", file]));
    out[size] = r;
    log(`references ${size}: cat ${med(r.cat_s).toFixed(3)} s, cp ${med(r.cp_s).toFixed(3)} s, cp+sync ${med(r.cp_sync_s).toFixed(3)} s, md5 ${med(r.md5_s).toFixed(3)} s, sha512 ${med(r.sha512_s).toFixed(3)} s`);
  }
  return out;
}

/** Runs apt-get install for packages that are missing, without letting them start their services. */
async function aptInstall(pkgs: string[]): Promise<void> {
  log(`apt-get install ${pkgs.join(" ")}`);
  const policy = "/usr/sbin/policy-rc.d";
  const ours = !existsSync(policy);
  if (ours) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    await runOk("apt-get", ["update", "-qq"], { env });
    await runOk("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], { env });
  } finally {
    if (ours) await rm(policy, { force: true });
  }
}

interface NginxRefs {
  version: string;
  big_MBps: number[];
  conc_MBps: number[];
}
async function nginxReferences(work: string): Promise<NginxRefs> {
  if (!(await has("nginx")) && !existsSync("/usr/sbin/nginx")) {
    try {
      await aptInstall(["nginx-light"]);
    } catch {
      await aptInstall(["nginx"]);
    }
  }
  const bin = (await has("nginx")) ? "nginx" : "/usr/sbin/nginx";
  const version = (await run(bin, ["-v"])).stderr.trim();
  const dir = join(work, "nginx");
  mkdirSync(dir, { recursive: true });
  chmodSync(INPUTS, 0o755);
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `# generated by bench/compare.ts
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${INPUTS};
    location / { }
  }
}
`,
  );
  const child = spawn(bin, ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise((r) => child.once("exit", r));
  const stop = onCleanup("nginx", async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const r = await curlGet(`${base}/random-${SIZES[0]}.bin`, {}).catch(() => null);
      if (r?.status === 200) break;
      if (i > 100 || child.exitCode !== null) throw new Error(`nginx did not start: ${stderr.trim()}`);
      await sleep(50);
    }
    const out: NginxRefs = { version, big_MBps: [], conc_MBps: [] };
    for (let i = 0; i < RUNS; i++) out.big_MBps.push(await download(`${base}/random-${BIG}.bin`, {}, bytesOf(BIG)));
    for (let i = 0; i < RUNS; i++) out.conc_MBps.push(await downloadMany(CONCURRENCY, `${base}/random-${CONC}.bin`, {}, bytesOf(CONC)));
    log(`nginx: ${BIG} ${med(out.big_MBps).toFixed(0)} MB/s, ${CONCURRENCY}× ${CONC} ${med(out.conc_MBps).toFixed(0)} MB/s aggregate`);
    return out;
  } finally {
    await stop();
  }
}

// ------------------------------------------------------------------------------ servers under test
type TargetName = Runtime | "glance";
interface Target {
  name: TargetName;
  url: string;
  headers: Record<string, string>;
  /** The process whose RSS is weighed. */
  pid: number;
  /** Reads of the image source so far for this image, or null when not observable. */
  sourceReads(id: string): Promise<number | null>;
}

async function api(t: Target, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { ...t.headers };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(`${t.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
interface Listing {
  cached_images: { image_id: string }[];
  queued_images: string[];
  caching_images?: Record<string, unknown>;
}
async function listing(t: Target): Promise<Listing> {
  const res = await api(t, "GET", "/v2/cache");
  if (res.status !== 200) throw new Error(`GET /v2/cache: ${res.status} ${await res.text()}`);
  return (await res.json()) as Listing;
}
const isCached = (l: Listing, id: string) => l.cached_images.some((c) => c.image_id === id);

async function uploadImage(t: Target, file: string, name: string): Promise<string> {
  const res = await api(t, "POST", "/v2/images", { name, disk_format: "raw", container_format: "bare" });
  if (res.status !== 201) throw new Error(`POST /v2/images: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  await runOk("curl", ["-sS", "-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-H", "Expect:", ...headerArgs(t.headers), "-T", file, `${t.url}/v2/images/${id}/file`]);
  const img = (await (await api(t, "GET", `/v2/images/${id}`)).json()) as { status: string };
  if (img.status !== "active") throw new Error(`image ${name} is ${img.status} after its upload`);
  return id;
}

/** DELETE /v2/cache, then waits until nothing is cached, queued or being cached. */
async function clearCache(t: Target): Promise<void> {
  const res = await api(t, "DELETE", "/v2/cache");
  await res.body?.cancel();
  if (res.status >= 300) throw new Error(`DELETE /v2/cache: ${res.status}`);
  for (let i = 0; ; i++) {
    const l = await listing(t);
    if (!l.cached_images.length && !l.queued_images.length && !Object.keys(l.caching_images ?? {}).length) return;
    if (i > 600) throw new Error(`cache not empty 60 s after DELETE /v2/cache: ${JSON.stringify(l).slice(0, 300)}`);
    await sleep(100);
  }
}

/**
 * PUT /v2/cache/{id}, then GET /v2/cache every `intervalMs` (start to start) until the image is listed in
 * cached_images. Returns the seconds from the PUT to that listing; each GET's latency goes to `latencies`.
 */
async function putAndWait(t: Target, id: string, intervalMs: number, latencies?: number[], timeoutS = 1200): Promise<number> {
  const t0 = performance.now();
  const res = await api(t, "PUT", `/v2/cache/${id}`);
  await res.body?.cancel();
  if (res.status >= 300) throw new Error(`PUT /v2/cache/${id}: ${res.status}`);
  for (;;) {
    const ts = performance.now();
    const l = await listing(t);
    const te = performance.now();
    latencies?.push(te - ts);
    if (isCached(l, id)) return (te - t0) / 1000;
    if (te - t0 > timeoutS * 1000) throw new Error(`image ${id} not cached ${timeoutS} s after PUT /v2/cache`);
    const wait = intervalMs - (performance.now() - ts);
    if (wait > 0) await sleep(wait);
  }
}
async function ensureCached(t: Target, id: string): Promise<void> {
  if (!isCached(await listing(t), id)) await putAndWait(t, id, 20);
}
/** Waits (up to a minute) until a download-triggered fill has committed. */
async function waitListed(t: Target, id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (isCached(await listing(t), id)) return;
    await sleep(100);
  }
}

interface TargetResult {
  name: TargetName;
  version: string;
  errors: string[];
  upload_s: Record<string, number>;
  put_to_cached_s: Record<string, number[]>;
  latency_ms: { p50: number[]; p99: number[]; max: number[]; polls: number[] };
  cached_MBps: number[];
  uncached_MBps: number[];
  conc_cached_MBps: number[];
  conc_cold_MBps: number[];
  conc_cold_source_reads: (number | null)[];
  /** Source reads during the cached downloads of BIG: 0 if they were all served from the cache. */
  cached_source_reads: number | null;
  peak_rss_mb: Record<string, number>;
}

async function measure(t: Target, version: string): Promise<TargetResult> {
  const r: TargetResult = {
    name: t.name,
    version,
    errors: [],
    upload_s: {},
    put_to_cached_s: {},
    latency_ms: { p50: [], p99: [], max: [], polls: [] },
    cached_MBps: [],
    uncached_MBps: [],
    conc_cached_MBps: [],
    conc_cold_MBps: [],
    conc_cold_source_reads: [],
    cached_source_reads: null,
    peak_rss_mb: {},
  };
  const phase = async (name: string, rssKey: string | null, fn: () => Promise<void>) => {
    if (interrupted) throw new Error("interrupted");
    log(`${t.name}: ${name}`);
    try {
      if (rssKey) resetPeakRss(t.pid);
      await fn();
      if (rssKey) r.peak_rss_mb[rssKey] = Number(peakRssMb(t.pid).toFixed(1));
    } catch (err) {
      const msg = `${name}: ${err instanceof Error ? err.message : err}`;
      log(`${t.name}: FAILED ${msg}`);
      r.errors.push(msg);
    }
  };
  const ids: Record<string, string> = {};
  for (const size of [...new Set([...SIZES, CONC])]) {
    await phase(`upload ${size}`, null, async () => {
      const t0 = performance.now();
      ids[size] = await uploadImage(t, inputFile(size), `bench-${size}`);
      r.upload_s[size] = (performance.now() - t0) / 1000;
    });
  }
  const url = (size: string) => `${t.url}/v2/images/${ids[size]}/file`;
  for (const size of SIZES) {
    const big = size === BIG;
    await phase(`PUT→cached ${size}${big ? `, GET /v2/cache every ${LATENCY_POLL_MS} ms` : ""}`, `PUT→cached ${size}`, async () => {
      r.put_to_cached_s[size] = [];
      for (let i = 0; i < RUNS; i++) {
        await clearCache(t);
        const lat: number[] = [];
        r.put_to_cached_s[size].push(await putAndWait(t, ids[size], big ? LATENCY_POLL_MS : 2, big ? lat : undefined));
        if (big) {
          r.latency_ms.p50.push(percentile(lat, 50));
          r.latency_ms.p99.push(percentile(lat, 99));
          r.latency_ms.max.push(Math.max(...lat));
          r.latency_ms.polls.push(lat.length);
        }
      }
    });
  }
  await phase(`download ${BIG} cached`, `download ${BIG} cached`, async () => {
    await ensureCached(t, ids[BIG]);
    const before = await t.sourceReads(ids[BIG]);
    for (let i = 0; i < RUNS; i++) r.cached_MBps.push(await download(url(BIG), t.headers, bytesOf(BIG)));
    const after = await t.sourceReads(ids[BIG]);
    r.cached_source_reads = before === null || after === null ? null : after - before;
  });
  await phase(`download ${BIG} uncached`, `download ${BIG} uncached`, async () => {
    for (let i = 0; i < RUNS; i++) {
      await clearCache(t);
      r.uncached_MBps.push(await download(url(BIG), t.headers, bytesOf(BIG)));
      await waitListed(t, ids[BIG]);
    }
  });
  await phase(`${CONCURRENCY}× download ${CONC} cached`, `${CONCURRENCY}× download ${CONC} cached`, async () => {
    await ensureCached(t, ids[CONC]);
    for (let i = 0; i < RUNS; i++) r.conc_cached_MBps.push(await downloadMany(CONCURRENCY, url(CONC), t.headers, bytesOf(CONC)));
  });
  await phase(`${CONCURRENCY}× download ${CONC} cold`, `${CONCURRENCY}× download ${CONC} cold`, async () => {
    for (let i = 0; i < RUNS; i++) {
      await clearCache(t);
      const before = await t.sourceReads(ids[CONC]);
      r.conc_cold_MBps.push(await downloadMany(CONCURRENCY, url(CONC), t.headers, bytesOf(CONC)));
      await waitListed(t, ids[CONC]);
      const after = await t.sourceReads(ids[CONC]);
      r.conc_cold_source_reads.push(before === null || after === null ? null : after - before);
    }
  });
  await phase("clear", null, () => clearCache(t));
  return r;
}

async function startNodeTarget(runtime: Runtime, work: string): Promise<{ target: Target; stop: () => Promise<void>; version: string }> {
  const dataDir = join(work, `data-${runtime}`);
  mkdirSync(dataDir, { recursive: true });
  let server: ServerProcess | undefined;
  const stop = onCleanup(`${runtime} server`, async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  try {
    server = await startServer(runtime, dataDir);
  } catch (err) {
    await stop();
    throw err;
  }
  const version =
    runtime === "node" ? `Node ${process.version}` : (await run(denoBinary(), ["--version"])).stdout.split("\n")[0].trim();
  const url = server.url;
  const target: Target = {
    name: runtime,
    url,
    headers: {},
    pid: server.pid,
    async sourceReads() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = /^glance_cache_source_reads_total (\d+)/m.exec(text);
      return m ? Number(m[1]) : null;
    },
  };
  return { target, stop, version };
}

async function startGlanceTarget(work: string): Promise<{ target: Target; stop: () => Promise<void>; version: string }> {
  const base = join(work, "glance");
  const port = await freePort();
  const env = { ...process.env, GCN_GLANCE_BASE: base, GCN_GLANCE_PORT: String(port), GCN_GLANCE_DEBUG: "true" };
  const stop = onCleanup("glance-api", async () => {
    await run("bash", [join(BENCH, "glance/stop.sh")], { env });
    await rm(base, { recursive: true, force: true });
  });
  try {
    await runOk("bash", [join(BENCH, "glance/start.sh")], { env });
  } catch (err) {
    await stop();
    throw err;
  }
  const parent = Number(readFileSync(join(base, "glance-api.pid"), "utf8").trim());
  let worker = NaN;
  for (let i = 0; i < 100 && !Number.isInteger(worker); i++) {
    const kids = readdirSync(`/proc/${parent}/task`).flatMap((tid) =>
      readFileSync(`/proc/${parent}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number),
    );
    if (kids.length) worker = kids[0];
    else await sleep(100);
  }
  if (!Number.isInteger(worker)) worker = parent;
  const version = (await run("dpkg-query", ["-W", "-f", "${Version}", "glance-api"])).stdout.trim();
  const logFile = join(base, "log", "glance-api.log");
  const target: Target = {
    name: "glance",
    url: `http://127.0.0.1:${port}`,
    headers: GLANCE_HEADERS,
    pid: worker,
    // glance_store's file driver logs "Found image at <path>. Returning in ChunkedFile." (debug) for every read.
    async sourceReads(id: string) {
      if (!existsSync(logFile)) return null;
      const n = readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("Returning in ChunkedFile") && l.includes(id)).length;
      return n;
    },
  };
  return { target, stop, version: `glance-api ${version}` };
}

// ------------------------------------------------------------------------------------------ report
type Better = "lower" | "higher";
interface Row {
  label: string;
  unit: string;
  better: Better;
  values: Partial<Record<TargetName, number | null>>;
  ref: { name: string; value: number; kind: "reference" | "budget" | "ideal" } | null;
  target?: number;
}

function fmtVal(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  switch (unit) {
    case "s":
      return `${v < 10 ? v.toFixed(3) : v.toFixed(1)} s`;
    case "MB/s":
      return `${v.toFixed(0)} MB/s`;
    case "ms":
      return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
    case "MB":
      return `${v.toFixed(0)} MB`;
    default:
      return String(Math.round(v));
  }
}
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
const fmtRatio = (r: number | null) => (r === null ? "n/a" : r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`);
/** The reference as shown: a measured one with its value, a budget or an ideal by its name alone. */
const refText = (row: Row) => (row.ref!.kind === "reference" ? `${row.ref!.name}: ${fmtVal(row.ref!.value, row.unit)}` : row.ref!.name);
const meets = (r: number | null, row: Row) => (r === null || row.target === undefined ? null : row.better === "lower" ? r <= row.target : r >= row.target);

function buildRows(files: Record<string, FileRefs> | null, nginx: NginxRefs | null, res: Partial<Record<TargetName, TargetResult>>): Row[] {
  const val = (f: (r: TargetResult) => number | null) =>
    Object.fromEntries(TARGETS.map((n) => [n, res[n] ? f(res[n]!) : null])) as Partial<Record<TargetName, number | null>>;
  const medOrNull = (xs: (number | null)[] | undefined) => {
    const ok = (xs ?? []).filter((x): x is number => x !== null && Number.isFinite(x));
    return ok.length ? med(ok) : null;
  };
  const rows: Row[] = [];
  for (const size of SIZES) {
    const f = files?.[size];
    const md5 = f ? med(f.md5_s) : NaN;
    const sha = f ? med(f.sha512_s) : NaN;
    rows.push({
      label: `PUT→cached ${size}`,
      unit: "s",
      better: "lower",
      values: val((r) => medOrNull(r.put_to_cached_s[size])),
      ref: f ? { name: `openssl ${sha >= md5 ? "sha512" : "md5"} (slower hash)`, value: Math.max(md5, sha), kind: "reference" } : null,
      target: size === BIG ? 1.2 : undefined,
    });
  }
  const ngBig = nginx ? med(nginx.big_MBps) : null;
  const ngConc = nginx ? med(nginx.conc_MBps) : null;
  const ngRef = (v: number | null, what: string) => (v === null ? null : { name: `nginx ${what}`, value: v, kind: "reference" as const });
  rows.push({ label: `download ${BIG}, cached`, unit: "MB/s", better: "higher", values: val((r) => medOrNull(r.cached_MBps)), ref: ngRef(ngBig, BIG), target: 0.8 });
  rows.push({ label: `download ${BIG}, uncached`, unit: "MB/s", better: "higher", values: val((r) => medOrNull(r.uncached_MBps)), ref: ngRef(ngBig, BIG), target: 0.5 });
  rows.push({
    label: `${CONCURRENCY}× download ${CONC}, cached (aggregate)`,
    unit: "MB/s",
    better: "higher",
    values: val((r) => medOrNull(r.conc_cached_MBps)),
    ref: ngRef(ngConc, `${CONCURRENCY}× ${CONC}`),
  });
  rows.push({
    label: `${CONCURRENCY}× download ${CONC}, cold (aggregate)`,
    unit: "MB/s",
    better: "higher",
    values: val((r) => medOrNull(r.conc_cold_MBps)),
    ref: ngRef(ngConc, `${CONCURRENCY}× ${CONC}`),
  });
  rows.push({
    label: `source reads, ${CONCURRENCY}× cold ${CONC}`,
    unit: "reads",
    better: "lower",
    values: val((r) => medOrNull(r.conc_cold_source_reads)),
    ref: { name: "one read (single flight)", value: 1, kind: "ideal" },
    target: 1,
  });
  const budget50 = { name: "budget 50 ms", value: 50, kind: "budget" as const };
  rows.push({ label: `GET /v2/cache p50 during ${BIG} fill`, unit: "ms", better: "lower", values: val((r) => medOrNull(r.latency_ms.p50)), ref: budget50 });
  rows.push({ label: `GET /v2/cache p99 during ${BIG} fill`, unit: "ms", better: "lower", values: val((r) => medOrNull(r.latency_ms.p99)), ref: budget50, target: 1 });
  const phases = [...new Set(TARGETS.flatMap((n) => Object.keys(res[n]?.peak_rss_mb ?? {})))];
  for (const p of phases) {
    rows.push({
      label: `peak RSS, ${p}`,
      unit: "MB",
      better: "lower",
      values: val((r) => r.peak_rss_mb[p] ?? null),
      ref: { name: "budget 150 MB", value: 150, kind: "budget" },
      target: 1,
    });
  }
  return rows;
}

function markdown(
  rows: Row[],
  files: Record<string, FileRefs> | null,
  nginx: NginxRefs | null,
  res: Partial<Record<TargetName, TargetResult>>,
  meta: Record<string, unknown>,
): string {
  const L: string[] = [];
  const name = { node: "Node", deno: "Deno", glance: "Glance 25.1" } as const;
  const ours = TARGETS.filter((n) => n !== "glance");
  L.push(`# glance-cache-node: comparative benchmark`);
  L.push("");
  L.push(`${meta.date} · commit ${meta.commit}${meta.src_dirty ? " (src/ modified)" : ""} · ${meta.cpu} × ${meta.cores} · sizes ${SIZES.join(", ")} · median of ${RUNS} run(s) · ${meta.elapsed_s} s`);
  L.push("");
  L.push(`Servers: ${TARGETS.map((n) => `${name[n]} (${res[n]?.version ?? "not run"})`).join(", ")}; ${nginx?.version ?? "nginx not run"}, worker_processes 1, sendfile on. ` +
    `Each server runs alone; downloads are \`curl -o /dev/null\` processes, MB/s = bytes / 1e6 / wall-clock s. Inputs are warm in the page cache.`);
  L.push("");
  L.push(`Ratio = value ÷ reference. For rows where lower is better (↓) a ratio under 1 beats the reference; where higher is better (↑), over 1. ` +
    `Deno ÷ Node is flagged ⚠ when the two differ by more than 20 %.`);
  L.push("");
  const head = ["metric", "", ...TARGETS.map((n) => name[n]), "reference", ...TARGETS.map((n) => `${name[n]} ÷ ref`)];
  const withGlance = TARGETS.includes("glance");
  if (withGlance) head.push(...ours.map((n) => `${name[n]} ÷ Glance`));
  const bothOurs = ours.length === 2;
  if (bothOurs) head.push("Deno ÷ Node");
  head.push("target");
  L.push(`| ${head.join(" | ")} |`);
  L.push(`|${head.map((_, i) => (i === 0 ? "---" : i === 1 ? ":-:" : "--:")).join("|")}|`);
  for (const row of rows) {
    const cells = [row.label, row.better === "lower" ? "↓" : "↑"];
    for (const n of TARGETS) cells.push(fmtVal(row.values[n], row.unit));
    cells.push(row.ref ? refText(row) : "—");
    for (const n of TARGETS) cells.push(row.ref ? fmtRatio(ratio(row.values[n], row.ref.value)) : "—");
    if (withGlance) for (const n of ours) cells.push(fmtRatio(ratio(row.values[n], row.values.glance)));
    if (bothOurs) {
      const dn = ratio(row.values.deno, row.values.node);
      cells.push(dn === null ? "n/a" : `${dn.toFixed(2)}${Math.max(dn, 1 / dn) > 1.2 ? " ⚠" : ""}`);
    }
    if (row.target !== undefined && row.ref) {
      const marks = ours.map((n) => {
        const m = meets(ratio(row.values[n], row.ref!.value), row);
        return `${name[n]} ${m === null ? "?" : m ? "✓" : "✗"}`;
      });
      cells.push(`${row.better === "lower" ? "≤" : "≥"} ${row.target}× ref: ${marks.join(", ")}`);
    } else cells.push("—");
    L.push(`| ${cells.join(" | ")} |`);
  }
  L.push("");
  if (files) {
    L.push(`References (median of ${RUNS}; MB/s = size / time):`);
    L.push("");
    L.push(`| input | cat >/dev/null | cp (same fs) | cp + sync | openssl dgst -md5 | openssl dgst -sha512 |`);
    L.push(`|---|--:|--:|--:|--:|--:|`);
    for (const size of SIZES) {
      const f = files[size];
      const c = (xs: number[]) => `${fmtVal(med(xs), "s")} (${mbps(bytesOf(size), med(xs)).toFixed(0)} MB/s)`;
      L.push(`| ${size} | ${c(f.cat_s)} | ${c(f.cp_s)} | ${c(f.cp_sync_s)} | ${c(f.md5_s)} | ${c(f.sha512_s)} |`);
    }
    L.push("");
  }
  if (nginx) {
    L.push(`nginx: download ${BIG} ${fmtVal(med(nginx.big_MBps), "MB/s")} (runs ${nginx.big_MBps.map((v) => v.toFixed(0)).join(", ")}); ` +
      `${CONCURRENCY}× ${CONC} ${fmtVal(med(nginx.conc_MBps), "MB/s")} aggregate (runs ${nginx.conc_MBps.map((v) => v.toFixed(0)).join(", ")}).`);
    L.push("");
  }
  for (const n of TARGETS) {
    const r = res[n];
    if (!r) continue;
    const extra = [
      `upload ${Object.entries(r.upload_s).map(([s, v]) => `${s} ${v.toFixed(2)} s`).join(", ")}`,
      `GET /v2/cache polls during each ${BIG} fill: ${r.latency_ms.polls.join(", ")}, slowest ${r.latency_ms.max.map((v) => v.toFixed(0)).join(", ")} ms`,
      `source reads during the cached ${BIG} downloads: ${r.cached_source_reads ?? "n/a"}`,
    ];
    L.push(`${name[n]}: ${extra.join("; ")}.${r.errors.length ? ` **Errors:** ${r.errors.join("; ")}` : ""}`);
    L.push("");
  }
  const busy = (meta.machine as { at: string; busy_pct: number }[]).map((m) => `${m.busy_pct} % before ${m.at}`).join(", ");
  L.push(`Background CPU use while the bench idled for 1 s (other work on the machine distorts the numbers): ${busy}.`);
  L.push("");
  L.push(`Chart: bench/results/compare.png. Raw numbers (every run): bench/results/compare.json.`);
  return L.join("\n") + "\n";
}

function chart(rows: Row[], meta: Record<string, unknown>): string {
  const colors: Record<TargetName, string> = { node: "#3c873a", deno: "#2b2b2b", glance: "#c9302c" };
  const label = { node: "our node on Node", deno: "our node on Deno", glance: "Glance 25.1 (Debian)" } as const;
  return chartSvg({
    title: "glance-cache-node vs references",
    subtitle: `value ÷ reference, median of ${RUNS} run(s), sizes ${SIZES.join(", ")}, ${meta.date}, commit ${meta.commit}`,
    series: TARGETS.map((n) => ({ name: label[n], color: colors[n] })),
    groups: rows
      .filter((r) => r.ref)
      .map((r) => ({
        label: r.label,
        sub: `÷ ${refText(r)} · ${r.better} is better`,
        values: TARGETS.map((n) => ratio(r.values[n], r.ref!.value)),
        target: r.target,
      })),
  });
}

// -------------------------------------------------------------------------------------------- main
async function gitInfo(): Promise<{ commit: string; src_dirty: boolean }> {
  const rev = await run("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).catch(() => null);
  if (!rev || rev.code !== 0) return { commit: "unknown", src_dirty: false };
  const st = await run("git", ["status", "--porcelain", "--", "src", "mod.ts", "test"], { cwd: ROOT });
  return { commit: rev.stdout.trim(), src_dirty: st.stdout.trim() !== "" };
}

async function main(): Promise<void> {
  for (const cmd of ["curl", "openssl", "cp", "cat", "sync"]) if (!(await has(cmd))) throw new Error(`${cmd} is missing`);
  mkdirSync(INPUTS, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), "gcn-compare-"));
  onCleanup("work dir", () => rm(work, { recursive: true, force: true }));
  log(`sizes ${SIZES.join(",")}, runs ${RUNS}, targets ${TARGETS.join(",")}; inputs in ${INPUTS}, scratch in ${work}`);
  for (const size of SIZES) await ensureInput(size);

  await noteLoad("references");
  let files: Record<string, FileRefs> | null = null;
  let nginx: NginxRefs | null = null;
  const errors: string[] = [];
  try {
    files = await fileReferences(work);
  } catch (err) {
    errors.push(`references: ${err instanceof Error ? err.message : err}`);
    log(`references FAILED: ${errors.at(-1)}`);
  }
  await noteLoad("nginx");
  try {
    nginx = await nginxReferences(work);
  } catch (err) {
    errors.push(`nginx: ${err instanceof Error ? err.message : err}`);
    log(`nginx FAILED: ${errors.at(-1)}`);
  }
  const res: Partial<Record<TargetName, TargetResult>> = {};
  for (const name of TARGETS) {
    if (interrupted) return;
    await noteLoad(name);
    let started: Awaited<ReturnType<typeof startNodeTarget>> | undefined;
    try {
      log(`${name}: starting`);
      started = name === "glance" ? await startGlanceTarget(work) : await startNodeTarget(name, work);
      res[name] = await measure(started.target, started.version);
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : err}`);
      log(`${name} FAILED: ${errors.at(-1)}`);
    } finally {
      await started?.stop();
    }
  }
  if (interrupted) return;
  await noteLoad("the end");

  const git = await gitInfo();
  const meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    ...git,
    cpu: cpus()[0]?.model?.trim() ?? "unknown CPU",
    cores: cpus().length,
    node: process.version,
    openssl: (await run("openssl", ["version"])).stdout.trim(),
    sizes: SIZES,
    runs: RUNS,
    big: BIG,
    concurrent: { n: CONCURRENCY, size: CONC },
    inputs: INPUTS,
    machine,
    errors,
    elapsed_s: Math.round((performance.now() - T0) / 1000),
  };
  const rows = buildRows(files, nginx, res);
  const md = markdown(rows, files, nginx, res, meta) + (errors.length ? `\n**Errors:** ${errors.join("; ")}\n` : "");
  const outDir = join(BENCH, "results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "compare.json"), JSON.stringify({ meta, references: { files, nginx }, targets: res, rows }, null, 2) + "\n");
  writeFileSync(join(outDir, "compare.md"), md);
  const svg = chart(rows, meta);
  try {
    writeFileSync(join(outDir, "compare.png"), renderPng(svg));
  } catch (err) {
    log(`PNG not rendered (${err instanceof Error ? err.message : err}); the SVG is in bench/results/compare.svg`);
    writeFileSync(join(outDir, "compare.svg"), svg);
  }
  process.stdout.write("\n" + md);
  log(`wrote ${join(outDir, "compare.md")}, compare.json, compare.png in ${meta.elapsed_s} s`);
}

try {
  await main();
} catch (err) {
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  process.exitCode = 1;
} finally {
  if (!interrupted) await cleanupAll();
}
