// Measurement: curl downloads (speed_download), server CPU seconds and peak RSS from /proc, statistics.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * CPU seconds a process has used so far, all its threads (the file reads of Node and Deno run on
 * worker threads). From /proc/<pid>/task/<tid>/schedstat, in nanoseconds: /proc/<pid>/stat counts
 * 10 ms ticks, too coarse for nginx's sendfile of a few hundred MB.
 */
export function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

/** Peak resident set size since the last reset, in MB (VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resets VmHWM to the current RSS, so the next peak belongs to the row being measured. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

export interface Download {
  status: number;
  bytes: number;
  /** curl's speed_download, bytes per second over the transfer. */
  bytesPerSecond: number;
  /** Wall clock of the curl process. */
  seconds: number;
}

/** One download with curl into /dev/null. */
export function curl(url: string, headers: Record<string, string> = {}): Promise<Download> {
  const args = [
    "-sS",
    "-o",
    "/dev/null",
    "--max-time",
    "1200",
    "-w",
    "%{http_code} %{size_download} %{speed_download}",
  ];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("curl", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const [status, bytes, speed] = out.trim().split(" ").map(Number);
      if (code !== 0) reject(new Error(`curl ${url}: exit ${code}: ${err.trim()}`));
      else resolve({ status, bytes, bytesPerSecond: speed, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** A checked download: MB/s by curl's speed_download. */
export async function downloadMBps(url: string, headers: Record<string, string>, size: number): Promise<number> {
  const d = await curl(url, headers);
  if (d.status !== 200 || d.bytes !== size) {
    throw new Error(`GET ${url}: status ${d.status}, ${d.bytes} of ${size} bytes`);
  }
  return d.bytesPerSecond / 1e6;
}

/** n simultaneous downloads: aggregate MB/s over the wall clock from the first start to the last end. */
export async function downloadManyMBps(
  n: number,
  url: string,
  headers: Record<string, string>,
  size: number,
): Promise<number> {
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, () => curl(url, headers)));
  const s = (performance.now() - t0) / 1000;
  const bad = all.filter((d) => d.status !== 200 || d.bytes !== size);
  if (bad.length) {
    throw new Error(
      `${bad.length} of ${n} downloads of ${url} failed: ${bad.map((d) => `${d.status}/${d.bytes}`).join(", ")}`,
    );
  }
  return (n * size) / 1e6 / s;
}

/** What fn costs the processes `pids` in CPU seconds, with fn's own result. */
export async function withCpu<T>(pids: number[], fn: () => Promise<T>): Promise<{ value: T; cpu_s: number }> {
  const before = pids.map(cpuSeconds);
  const value = await fn();
  const cpu_s = pids.map(cpuSeconds).reduce((sum, v, i) => sum + v - before[i], 0);
  return { value, cpu_s };
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Spread of the runs: (max - min) / median, as a fraction. */
export function spread(xs: number[]): number {
  return xs.length < 2 ? 0 : (Math.max(...xs) - Math.min(...xs)) / median(xs);
}

/** How busy the machine is while the bench sits idle for a second: other work distorts the numbers. */
export async function backgroundBusyPct(ms = 1000): Promise<{ busy_pct: number; loadavg1: number }> {
  const read = () => readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const a = read();
  await sleep(ms);
  const d = read().map((v, i) => v - a[i]);
  const total = d.reduce((x, y) => x + y, 0);
  const idle = d[3] + (d[4] ?? 0);
  return {
    busy_pct: total > 0 ? Math.round((100 * (total - idle)) / total) : NaN,
    loadavg1: Number(loadavg()[0].toFixed(2)),
  };
}

/** Minor page faults of a process so far (fresh memory touched for the first time costs one per page). */
export function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]); // minflt (field 10)
}
