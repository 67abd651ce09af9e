// Bench: time from PUT /v2/cache/{id} to the image listed in cached_images, and the server's peak RSS meanwhile.
// Usage: node --import tsx bench/put_to_cached.ts [--sizes 1M,1G] [--runs 3] [--runtimes node,deno]
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { randomFile, type Runtime, startServer, uploadImage } from "../support/processes.ts";
import { median, peakRssMb, resetPeakRss } from "./lib/measure.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1M,1G" },
    runs: { type: "string", default: "3" },
    runtimes: { type: "string", default: "node,deno" },
  },
});
const sizes = values.sizes!.split(",");
const runs = Number(values.runs);
const bytesOf = (s: string) =>
  Number(s.slice(0, -1)) * { K: 1 << 10, M: 1 << 20, G: 1 << 30 }[s.slice(-1) as "K" | "M" | "G"];

const inputs = join(tmpdir(), "gcn-bench-inputs");
await mkdir(inputs, { recursive: true });
const results: Record<string, unknown>[] = [];

for (const runtime of values.runtimes!.split(",") as Runtime[]) {
  const dataDir = await mkdtemp(join(tmpdir(), "gcn-bench-"));
  const server = await startServer(runtime, dataDir);
  try {
    for (const size of sizes) {
      const file = join(inputs, `random-${size}.bin`);
      await randomFile(file, bytesOf(size));
      const id = await uploadImage(server.url, file);
      const times: number[] = [];
      const peaks: number[] = [];
      for (let i = 0; i < runs; i++) {
        await fetch(`${server.url}/v2/cache`, { method: "DELETE" });
        resetPeakRss(server.pid);
        const t0 = performance.now();
        await fetch(`${server.url}/v2/cache/${id}`, { method: "PUT" });
        for (;;) {
          const l = (await (await fetch(`${server.url}/v2/cache`)).json()) as { cached_images: { image_id: string }[] };
          if (l.cached_images.some((c) => c.image_id === id)) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        times.push((performance.now() - t0) / 1000);
        peaks.push(peakRssMb(server.pid));
      }
      const row = {
        runtime,
        size,
        put_to_cached_s: median(times),
        runs_s: times,
        peak_rss_mb: median(peaks),
        peaks_mb: peaks,
      };
      results.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

console.log("\n| runtime | image | PUT→cached (median of %d) | peak RSS of the server |", runs);
console.log("|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.runtime} | ${r.size} | ${(r.put_to_cached_s as number).toFixed(3)} s | ${
      (r.peak_rss_mb as number).toFixed(0)
    } MB |`,
  );
}
