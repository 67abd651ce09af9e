// Cached downloads through the full node vs the bare file stream (bench/bare_server.ts): MB/s (curl speed_download),
// server CPU seconds per GiB and peak RSS; extra runtime flags (--cpu-prof, --trace-gc) go to the server.
//
//   node --import tsx bench/serve_profile.ts [--runtime node|deno] [--size 1G] [--runs 3] [--bare] [--flag=--trace-gc ...] [--keep: leave the server log in its work dir]
//   ... --upload: uploads into the embedded store instead (seconds and server CPU-s/GiB)
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { once } from "node:events";
import { parseArgs } from "node:util";
import {
  denoBinary,
  freePort,
  nodeBinary,
  randomFile,
  type Runtime,
  startServer,
  uploadImage,
} from "../support/processes.ts";
import { cpuSeconds, curl, median, minorFaults, peakRssMb, resetPeakRss, sleep } from "./lib/measure.ts";

const { values: opt } = parseArgs({
  options: {
    runtime: { type: "string", default: "node" },
    size: { type: "string", default: "1G" },
    runs: { type: "string", default: "3" },
    bare: { type: "boolean", default: false },
    flag: { type: "string", multiple: true, default: [] },
    keep: { type: "boolean", default: false },
    upload: { type: "boolean", default: false },
  },
});
const runtime = opt.runtime as Runtime;
const UNIT: Record<string, number> = { M: 2 ** 20, G: 2 ** 30 };
const size = Number(opt.size!.slice(0, -1)) * UNIT[opt.size!.slice(-1)];
const input = join(tmpdir(), "gcn-bench-inputs", `random-${opt.size}.bin`);
await mkdir(dirname(input), { recursive: true });
await randomFile(input, size);
const work = await mkdtemp(join(tmpdir(), "gcn-serve-profile-"));
let url: string;
let pid: number;
let stop: () => Promise<void>;
if (opt.upload) {
  // Uploads into the embedded store instead: seconds of the PUT and the server's CPU per GiB.
  const server = await startServer(runtime, join(work, "data"), [], undefined, opt.flag);
  const secs: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < Number(opt.runs); i++) {
    const c0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    await uploadImage(server.url, input);
    secs.push((performance.now() - t0) / 1000);
    cpu.push((cpuSeconds(server.pid) - c0) / (size / 2 ** 30));
  }
  await server.stop();
  await rm(work, { recursive: true, force: true });
  console.log(
    `${runtime} upload ${opt.size}: ${median(secs).toFixed(2)} s (${secs.map((v) => v.toFixed(2)).join(", ")}), ${
      median(cpu).toFixed(2)
    } CPU-s/GiB (${cpu.map((v) => v.toFixed(2)).join(", ")})`,
  );
  process.exit(0);
}
if (opt.bare) {
  const port = await freePort();
  const log = openSync(join(work, "bare.log"), "a");
  const cmd = runtime === "node" ? nodeBinary() : denoBinary();
  const args = runtime === "node"
    ? [...opt.flag!, "--import", "tsx", "bench/bare_server.ts"]
    : ["run", "-A", ...opt.flag!, "bench/bare_server.ts"];
  const child = spawn(cmd, args, {
    env: { ...process.env, BARE_FILE: input, BARE_PORT: String(port) },
    stdio: ["ignore", log, log],
  });
  url = `http://127.0.0.1:${port}/x`;
  for (let i = 0; (await curl(url.replace("/x", "/"), { Range: "bytes=0-0" }).catch(() => null)) === null; i++) {
    if (i > 200) throw new Error("bare server did not start");
    await sleep(50);
  }
  pid = child.pid!;
  stop = async () => {
    child.kill("SIGTERM");
    await once(child, "exit");
  };
} else {
  // Upload and cache without the flags, then restart with them: the profile and the GC trace hold the downloads alone.
  const prep = await startServer(runtime, join(work, "data"));
  const id = await uploadImage(prep.url, input);
  await (await fetch(`${prep.url}/v2/cache/${id}`, { method: "PUT" })).body?.cancel();
  for (;;) {
    const l = (await (await fetch(`${prep.url}/v2/cache`)).json()) as { cached_images: { image_id: string }[] };
    if (l.cached_images.some((c) => c.image_id === id)) break;
    await sleep(100);
  }
  await prep.stop();
  const server = await startServer(runtime, join(work, "data"), [], undefined, opt.flag);
  url = `${server.url}/v2/images/${id}/file`;
  pid = server.pid;
  stop = () => server.stop();
}
const mbps: number[] = [];
const cpuPerGiB: number[] = [];
const faultsPerGiB: number[] = [];
resetPeakRss(pid);
for (let i = 0; i < Number(opt.runs); i++) {
  const c0 = cpuSeconds(pid);
  const f0 = minorFaults(pid);
  const d = await curl(url);
  if (d.bytes !== size) throw new Error(`${d.bytes} of ${size} bytes`);
  mbps.push(d.bytesPerSecond / 1e6);
  cpuPerGiB.push((cpuSeconds(pid) - c0) / (size / 2 ** 30));
  faultsPerGiB.push((minorFaults(pid) - f0) / (size / 2 ** 30));
  if (opt.flag!.includes("--trace-gc")) {
    const log = readFileSync(opt.bare ? join(work, "bare.log") : join(work, "data.log"), "utf8");
    console.log(
      `run ${i + 1}: ${mbps.at(-1)!.toFixed(0)} MB/s, ${
        cpuPerGiB.at(-1)!.toFixed(2)
      } CPU-s/GiB; mark-compacts in the log so far: ${log.split("Mark-Compact").length - 1}`,
    );
  }
}
const rss = peakRssMb(pid);
await stop();
await sleep(500);
if (opt.keep) console.log(`server log and profiles kept in ${work}`);
else await rm(work, { recursive: true, force: true });
console.log(
  `${runtime}${opt.bare ? " bare" : " node"} ${opt.size}: ${median(mbps).toFixed(0)} MB/s (${
    mbps.map((v) => v.toFixed(0)).join(", ")
  }), ` +
    `${median(cpuPerGiB).toFixed(2)} CPU-s/GiB (${cpuPerGiB.map((v) => v.toFixed(2)).join(", ")}), peak RSS ${
      rss.toFixed(0)
    } MB, ` +
    `${median(faultsPerGiB).toFixed(0)} minor page faults/GiB`,
);
