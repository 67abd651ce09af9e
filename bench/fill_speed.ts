// Bench: PUT /v2/cache/{id} → cached, and an upload into the embedded store, against openssl hashing the same file, interleaved in one run.
// Usage: node --import tsx bench/fill_speed.ts [--sizes 256M,1G] [--runs 3] [--runtimes node,deno] [--verify-hash os_hash_value|checksum]
//
// Each run times, one right after the other: `openssl dgst -sha512` and `-md5` of the file, then on each
// runtime's server an upload of the file (curl -T) and a PUT → cached of it. Ratios are taken within a run
// (the machine may be shared and noisy), then the median of the runs is reported, with the server's CPU
// seconds (from /proc) and its peak RSS.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createImageRecord, randomFile, type Runtime, type ServerProcess, uploadFile } from "../support/processes.ts";
import { median, peakRssMb, resetPeakRss } from "./lib/measure.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "256M,1G" },
    runs: { type: "string", default: "3" },
    runtimes: { type: "string", default: "node,deno" },
    "verify-hash": { type: "string", default: "os_hash_value" },
    /** Other checkouts to measure in the same run (e.g. the commit before a change), by directory. */
    against: { type: "string", default: "" },
  },
});
const runs = Number(values.runs);
const runtimes = values.runtimes!.split(",") as Runtime[];
const bytesOf = (s: string) =>
  Number(s.slice(0, -1)) * { K: 1 << 10, M: 1 << 20, G: 1 << 30 }[s.slice(-1) as "K" | "M" | "G"];

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function timeCommand(cmd: string, args: string[]): { s: number; cpu: number } {
  const t0 = performance.now();
  const r = spawnSync("bash", ["-c", `TIMEFORMAT='%U %S'; time ${cmd} ${args.join(" ")} >/dev/null`], {
    encoding: "utf8",
  });
  const s = (performance.now() - t0) / 1000;
  const [u, sys] = r.stderr.trim().split("\n").pop()!.split(" ").map(Number);
  return { s, cpu: u + sys };
}

interface Measure {
  s: number;
  cpu: number;
  rss: number;
}

async function measured(server: ServerProcess, work: () => Promise<void>): Promise<Measure> {
  resetPeakRss(server.pid);
  const c0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  await work();
  return { s: (performance.now() - t0) / 1000, cpu: cpuSeconds(server.pid) - c0, rss: peakRssMb(server.pid) };
}

async function upload(server: ServerProcess, file: string): Promise<{ id: string; m: Measure }> {
  const id = await createImageRecord(server.url, "fill-bench");
  const m = await measured(server, () => uploadFile(server.url, id, file));
  return { id, m };
}

async function putToCached(server: ServerProcess, id: string): Promise<Measure> {
  await fetch(`${server.url}/v2/cache`, { method: "DELETE" });
  return measured(server, async () => {
    await fetch(`${server.url}/v2/cache/${id}`, { method: "PUT" });
    for (;;) {
      const l = (await (await fetch(`${server.url}/v2/cache`)).json()) as { cached_images: { image_id: string }[] };
      if (l.cached_images.some((c) => c.image_id === id)) return;
      await new Promise((r) => setTimeout(r, Number(process.env.POLL_MS ?? 5)));
    }
  });
}

const inputs = join(tmpdir(), "gcn-bench-inputs");
await mkdir(inputs, { recursive: true });
// each checkout's own process helpers start that checkout's mod.ts
const trees = [new URL("..", import.meta.url).pathname, ...values.against!.split(",").filter(Boolean)];
const servers = new Map<string, { server: ServerProcess; dir: string }>();
for (const [i, tree] of trees.entries()) {
  const { startServer } =
    (await import(join(tree, "support/processes.ts"))) as typeof import("../support/processes.ts");
  for (const rt of runtimes) {
    const dir = await mkdtemp(join(tmpdir(), "gcn-fill-bench-"));
    const extra = values["verify-hash"] === "os_hash_value" ? [] : ["--verify-hash", values["verify-hash"]!];
    servers.set(i === 0 ? rt : `${rt}@${tree}`, { server: await startServer(rt, dir, extra), dir });
  }
}

type Row = Record<string, number[]>;
const table = new Map<string, Row>();
const push = (key: string, field: string, v: number) => {
  const row = table.get(key) ?? {};
  (row[field] ??= []).push(v);
  table.set(key, row);
};

try {
  for (const size of values.sizes!.split(",")) {
    const file = join(inputs, `random-${size}.bin`);
    await randomFile(file, bytesOf(size));
    for (let i = 0; i < runs; i++) {
      const sha = timeCommand("openssl", ["dgst", "-sha512", file]);
      const md5 = timeCommand("openssl", ["dgst", "-md5", file]);
      const slower = Math.max(sha.s, md5.s);
      push(`${size} openssl`, "sha512_s", sha.s);
      push(`${size} openssl`, "md5_s", md5.s);
      push(`${size} openssl`, "cpu_md5+sha512", sha.cpu + md5.cpu);
      // each run starts with another server: the first one after openssl runs slower on this machine
      const order = [...servers];
      const rotated = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
      for (const [rt, { server }] of rotated) {
        const up = await upload(server, file);
        const fill = await putToCached(server, up.id);
        push(`${size} ${rt} upload`, "s", up.m.s);
        push(`${size} ${rt} upload`, "cpu", up.m.cpu);
        push(`${size} ${rt} upload`, "rss", up.m.rss);
        push(`${size} ${rt} upload`, "ratio", up.m.s / (sha.s + md5.s));
        push(`${size} ${rt} fill`, "s", fill.s);
        push(`${size} ${rt} fill`, "cpu", fill.cpu);
        push(`${size} ${rt} fill`, "rss", fill.rss);
        push(`${size} ${rt} fill`, "ratio", fill.s / slower);
        await fetch(`${server.url}/v2/images/${up.id}`, { method: "DELETE" });
        console.error(
          `run ${i + 1} ${size} ${rt}: upload ${up.m.s.toFixed(2)} s, fill ${fill.s.toFixed(2)} s; openssl sha512 ${
            sha.s.toFixed(2)
          } s, md5 ${md5.s.toFixed(2)} s`,
        );
      }
    }
  }
} finally {
  for (const { server, dir } of servers.values()) {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (
  xs: number[] | undefined,
  d = 2,
) => (xs ? `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})` : "");
console.log(`\nverify_hash = ${values["verify-hash"]}; medians of ${runs} (min–max); ratios taken within each run`);
console.log(
  "fill ratio = PUT→cached ÷ the slower of openssl md5/sha512; upload ratio = upload ÷ (openssl md5 + openssl sha512), the work Glance does in one thread\n",
);
console.log("| row | seconds | ratio | server CPU s | peak RSS MB |");
console.log("|---|---|---|---|---|");
for (const [key, row] of table) {
  if (key.endsWith("openssl")) {
    console.log(
      `| ${key} sha512 / md5 | ${fmt(row.sha512_s)} / ${fmt(row.md5_s)} | | ${fmt(row["cpu_md5+sha512"])} (both) | |`,
    );
  } else {
    console.log(`| ${key} | ${fmt(row.s)} | ${fmt(row.ratio)} | ${fmt(row.cpu)} | ${fmt(row.rss, 0)} |`);
  }
}
