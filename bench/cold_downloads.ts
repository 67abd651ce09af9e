// Bench: N concurrent downloads of an uncached image (default 50 × 256 MiB): source reads, peak RSS, wall time.
// Usage: node --import tsx bench/cold_downloads.ts [--clients 50] [--size 256M] [--runtimes node,deno]
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { randomFile, type Runtime, startServer, uploadImage } from "../support/processes.ts";
import { peakRssMb, resetPeakRss } from "./lib/measure.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "50" },
    size: { type: "string", default: "256M" },
    runtimes: { type: "string", default: "node,deno" },
  },
});
const clients = Number(values.clients);
const size = Number(values.size!.slice(0, -1)) * { M: 1 << 20, G: 1 << 30 }[values.size!.slice(-1) as "M" | "G"];

const sourceReads = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^glance_cache_source_reads_total (\d+)/m.exec(text)?.[1]);
};

/** One curl per client, each hashing what it got: the bytes are checked, and the bench process holds none of them. */
function curlMd5(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", `set -o pipefail; curl -sSf '${url}' | md5sum`]);
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on(
      "exit",
      (code) => (code === 0 ? resolve(out.split(" ")[0]) : reject(new Error(`curl exit ${code}: ${err.trim()}`))),
    );
  });
}

const inputs = join(tmpdir(), "gcn-bench-inputs");
await mkdir(inputs, { recursive: true });
const file = join(inputs, `random-${values.size}.bin`);
await randomFile(file, size);
const expected = await new Promise<string>((resolve) => {
  const p = spawn("md5sum", [file]);
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  p.on("exit", () => resolve(out.split(" ")[0]));
});

console.log(`| runtime | clients × image | source reads | all bodies correct | wall time | peak RSS of the server |`);
console.log(`|---|---|---|---|---|---|`);
for (const runtime of values.runtimes!.split(",") as Runtime[]) {
  const dataDir = await mkdtemp(join(tmpdir(), "gcn-bench-"));
  const server = await startServer(runtime, dataDir);
  try {
    const id = await uploadImage(server.url, file);
    const readsBefore = await sourceReads(server.url);
    resetPeakRss(server.pid);
    const t0 = performance.now();
    const digests = await Promise.all(
      Array.from({ length: clients }, () => curlMd5(`${server.url}/v2/images/${id}/file`)),
    );
    const seconds = (performance.now() - t0) / 1000;
    const reads = (await sourceReads(server.url)) - readsBefore;
    const ok = digests.every((d) => d === expected);
    console.log(
      `| ${runtime} | ${clients} × ${values.size} | ${reads} | ${ok ? "yes" : "NO"} | ${seconds.toFixed(1)} s | ${
        peakRssMb(server.pid).toFixed(0)
      } MB |`,
    );
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
