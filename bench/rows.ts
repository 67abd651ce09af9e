// The benchmark's rows (issue 9's table): each run measures the reference right before the value it anchors.
import type { Runtime } from "../support/processes.ts";
import {
  clearCache,
  createImage,
  deleteImage,
  ensureCached,
  fileUrl,
  putAndWait,
  type Target,
  uploadData,
  waitListed,
} from "./lib/api.ts";
import { downloadManyMBps, downloadMBps, median, peakRssMb, percentile, resetPeakRss, withCpu } from "./lib/measure.ts";
import type { Nginx } from "./targets/nginx.ts";
import { opensslSeconds, warm } from "./targets/references.ts";

/** One run of one of our runtimes: the value and its reference, measured back to back. */
export interface Sample {
  value: number;
  ref: number | null;
}

export interface Row {
  label: string;
  unit: "s" | "MB/s" | "CPU-s/GiB" | "ms" | "MB";
  better: "lower" | "higher";
  /** What the value is divided by: a measured reference or an absolute budget. */
  ref: { name: string; budget?: number };
  /** Ratio each runtime should reach (value ÷ reference), as in the issue. */
  targets: Record<Runtime, number>;
  samples: Partial<Record<Runtime, Sample[]>>;
  /** Peak RSS of the server during this row's runs (MB). */
  rssMb: Partial<Record<Runtime, number>>;
  errors: string[];
}

export interface Input {
  label: string;
  bytes: number;
  file: string;
  /** Name of the file under nginx's root. */
  name: string;
}

export interface Bench {
  runs: number;
  big: Input;
  conc: Input;
  concurrency: number;
  ours: Target[];
  nginx: Nginx | null;
  glance: Target | null;
  /** Image ids of each input on each server. */
  ids: Map<Target, Record<string, string>>;
  log(msg: string): void;
}

const GiB = 2 ** 30;

function row(
  label: string,
  unit: Row["unit"],
  better: Row["better"],
  ref: Row["ref"],
  targets: Record<Runtime, number>,
): Row {
  return { label, unit, better, ref, targets, samples: {}, rssMb: {}, errors: [] };
}

const add = (r: Row, t: Target, s: Sample) => (r.samples[t.name as Runtime] ??= []).push(s);

/** Runs `fn` for each run and each of our targets, weighing the target's peak RSS over the row. */
async function eachRun(b: Bench, rows: Row[], fn: (t: Target, run: number) => Promise<void>): Promise<void> {
  for (const t of b.ours) resetPeakRss(t.pid);
  for (let i = 0; i < b.runs; i++) {
    for (const t of b.ours) {
      try {
        await fn(t, i);
      } catch (err) {
        const msg = `${t.name}, run ${i + 1}: ${err instanceof Error ? err.message : err}`;
        b.log(`${rows[0].label}: FAILED ${msg}`);
        for (const r of rows) r.errors.push(msg);
      }
    }
  }
  for (const t of b.ours) for (const r of rows) r.rssMb[t.name as Runtime] = peakRssMb(t.pid);
}

/** PUT → cached ÷ the slower of openssl md5 / sha512; GET /v2/cache polled every 10 ms meanwhile: its p99. */
export async function putToCached(b: Bench): Promise<Row[]> {
  const put = row(`PUT → cached, ${b.big.label}`, "s", "lower", { name: "slower of openssl md5/sha512" }, {
    node: 1.1,
    deno: 1.4,
  });
  const p99 = row(
    `GET /v2/cache p99 during a ${b.big.label} fill`,
    "ms",
    "lower",
    { name: "budget 50 ms", budget: 50 },
    { node: 1, deno: 1 },
  );
  await warm(b.big.file);
  await eachRun(b, [put, p99], async (t) => {
    const ref = Math.max(await opensslSeconds("md5", b.big.file), await opensslSeconds("sha512", b.big.file));
    await clearCache(t);
    const latencies: number[] = [];
    add(put, t, { value: await putAndWait(t, b.ids.get(t)![b.big.label], 10, latencies), ref });
    add(p99, t, { value: percentile(latencies, 99), ref: 50 });
  });
  return [put, p99];
}

/** Cached download ÷ nginx's (curl speed_download), and the server's CPU seconds per GiB ÷ nginx worker's. */
export async function cachedDownload(b: Bench): Promise<Row[]> {
  const speed = row(`cached download, ${b.big.label}`, "MB/s", "higher", { name: "nginx sendfile" }, {
    node: 1.0,
    deno: 0.9,
  });
  const cpu = row(`server CPU per GiB served from cache`, "CPU-s/GiB", "lower", { name: "nginx worker" }, {
    node: 2,
    deno: 2.5,
  });
  const gib = b.big.bytes / GiB;
  for (const t of b.ours) await ensureCached(t, b.ids.get(t)![b.big.label]);
  // nginx's CPU for one download ranged 0.12-0.33 s per GiB from run to run: each side's figures are
  // the medians of three downloads, taken alternately.
  const ng = b.nginx;
  await eachRun(b, [speed, cpu], async (t) => {
    const refs: { value: number; cpu_s: number }[] = [];
    const ours: { value: number; cpu_s: number }[] = [];
    for (let i = 0; i < 3; i++) {
      if (ng) refs.push(await withCpu([ng.pid], () => downloadMBps(`${ng.url}/${b.big.name}`, {}, b.big.bytes)));
      ours.push(
        await withCpu([t.pid], () => downloadMBps(fileUrl(t, b.ids.get(t)![b.big.label]), t.headers, b.big.bytes)),
      );
    }
    const cpuOf = (xs: { cpu_s: number }[]) => median(xs.map((x) => x.cpu_s)) / gib;
    const speedOf = (xs: { value: number }[]) => median(xs.map((x) => x.value));
    add(speed, t, { value: speedOf(ours), ref: refs.length ? speedOf(refs) : null });
    add(cpu, t, { value: cpuOf(ours), ref: refs.length ? cpuOf(refs) : null });
  });
  return [speed, cpu];
}

/** Uncached download (a fill tailed by the client) ÷ Glance's uncached download (its cache filling as it serves). */
export async function uncachedDownload(b: Bench): Promise<Row[]> {
  const r = row(`uncached download, ${b.big.label}`, "MB/s", "higher", { name: "Glance 25.1, uncached" }, {
    node: 1.0,
    deno: 1.0,
  });
  await eachRun(b, [r], async (t) => {
    let ref: number | null = null;
    const g = b.glance;
    if (g) {
      const gid = b.ids.get(g)![b.big.label];
      await clearCache(g);
      ref = await downloadMBps(fileUrl(g, gid), g.headers, b.big.bytes);
      await waitListed(g, gid).catch(() => {}); // Glance caches what it served; a miss here only costs the next clear
    }
    const id = b.ids.get(t)![b.big.label];
    await clearCache(t);
    add(r, t, { value: await downloadMBps(fileUrl(t, id), t.headers, b.big.bytes), ref });
    await waitListed(t, id);
  });
  return [r];
}

/** Upload into the embedded store (md5 + sha512 computed) ÷ Glance's upload into its file store. */
export async function upload(b: Bench): Promise<Row[]> {
  const r = row(`upload into the store, ${b.big.label}`, "s", "lower", { name: "Glance 25.1 upload" }, {
    node: 1.0,
    deno: 1.2,
  });
  const once = async (t: Target) => {
    const id = await createImage(t, `bench-upload-${b.big.label}`);
    try {
      return await uploadData(t, id, b.big.file);
    } finally {
      await deleteImage(t, id);
    }
  };
  await eachRun(b, [r], async (t) => {
    const ref = b.glance ? await once(b.glance) : null;
    add(r, t, { value: await once(t), ref });
  });
  return [r];
}

/** n concurrent cached downloads, aggregate MB/s ÷ nginx's with the same n. */
export async function concurrentDownloads(b: Bench): Promise<Row[]> {
  const r = row(`${b.concurrency} concurrent cached downloads of ${b.conc.label}`, "MB/s", "higher", {
    name: "nginx sendfile, same n",
  }, { node: 0.9, deno: 0.8 });
  for (const t of b.ours) await ensureCached(t, b.ids.get(t)![b.conc.label]);
  await eachRun(b, [r], async (t) => {
    const ref = b.nginx
      ? await downloadManyMBps(b.concurrency, `${b.nginx.url}/${b.conc.name}`, {}, b.conc.bytes)
      : null;
    add(r, t, {
      value: await downloadManyMBps(b.concurrency, fileUrl(t, b.ids.get(t)![b.conc.label]), t.headers, b.conc.bytes),
      ref,
    });
  });
  return [r];
}

/** The highest peak RSS of each runtime over every row, against the 150 MB budget. */
export function peakRss(rows: Row[], ours: Target[]): Row {
  const r = row("peak RSS, any row", "MB", "lower", { name: "budget 150 MB", budget: 150 }, { node: 1, deno: 1 });
  for (const t of ours) {
    const peaks = rows.map((x) => x.rssMb[t.name as Runtime]).filter((v): v is number => v !== undefined);
    if (peaks.length) add(r, t, { value: Math.max(...peaks), ref: 150 });
  }
  return r;
}
