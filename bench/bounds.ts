// Floors measured in the same run as the table: what this machine and each runtime allow, for the rows that fall short.
import { join } from "node:path";
import { rm } from "node:fs/promises";
import { denoBinary, freePort, nodeBinary, runOk, waitForHttp } from "../support/processes.ts";
import { spawn } from "node:child_process";
import { onCleanup } from "./lib/cleanup.ts";
import { downloadManyMBps, downloadMBps, median, sleep, withCpu } from "./lib/measure.ts";
import type { Input } from "./rows.ts";

const HERE = new URL("./bounds/", import.meta.url).pathname;

export interface Bounds {
  /** dd of the image into a new file + fdatasync, seconds: pages the guest handed back (idle 3 s first) / pages just freed. */
  writeNewFile_s: number;
  writeRecycledPages_s: number;
  /** sha512 of the image in each runtime's node:crypto, seconds (hashing only). */
  sha512_s: { node: number; deno: number };
  /** Deno.serve serving a Deno.FsFile (no JavaScript per chunk): one download MB/s, CPU-s/GiB, and n at once MB/s. */
  denoServe: { mbps: number; cpuPerGiB: number; concurrentMbps: number };
}

async function ddSeconds(file: string, out: string): Promise<number> {
  const r = await runOk("dd", [`if=${file}`, `of=${out}`, "bs=8M", "conv=fdatasync"], { discardStdout: true });
  await rm(out, { force: true });
  return r.seconds;
}

/** Each floor measured `runs` times, medians. */
export async function measureBounds(
  work: string,
  big: Input,
  conc: Input,
  concurrency: number,
  runs: number,
): Promise<Bounds> {
  const out = join(work, "bound-write.bin");
  const cold: number[] = [];
  const recycled: number[] = [];
  for (let i = 0; i < runs; i++) {
    await sleep(3000); // the guest hands freed pages back to the host within ~2 s (measured)
    cold.push(await ddSeconds(big.file, out));
    recycled.push(await ddSeconds(big.file, out)); // reuses the pages the last one just freed
  }
  const hash = async (cmd: string, args: string[]) => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) xs.push(Number((await runOk(cmd, args)).stdout.trim()));
    return median(xs);
  };
  const sha512_s = {
    node: await hash(nodeBinary(), [join(HERE, "hash.mjs"), big.file]),
    deno: await hash(denoBinary(), ["run", "-A", join(HERE, "hash.mjs"), big.file]),
  };
  return {
    writeNewFile_s: median(cold),
    writeRecycledPages_s: median(recycled),
    sha512_s,
    denoServe: await denoServeFloor(big, conc, concurrency, runs),
  };
}

async function denoServeFloor(
  big: Input,
  conc: Input,
  concurrency: number,
  runs: number,
): Promise<Bounds["denoServe"]> {
  const port = await freePort();
  const serve = (file: string) =>
    spawn(denoBinary(), ["run", "-A", join(HERE, "deno_file_server.mjs"), file, String(port)], { stdio: "ignore" });
  const stopIt = (child: ReturnType<typeof serve>) =>
    new Promise((r) => (child.exitCode !== null ? r(null) : (child.once("exit", r), child.kill())));
  const url = `http://127.0.0.1:${port}/`;
  let child = serve(big.file);
  const stop = onCleanup("deno file server", async () => void (await stopIt(child)));
  try {
    await waitForHttp(url, child, "deno file server");
    const speed: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const m = await withCpu([child.pid!], () => downloadMBps(url, {}, big.bytes));
      speed.push(m.value);
      cpu.push(m.cpu_s / (big.bytes / 2 ** 30));
    }
    await stopIt(child);
    child = serve(conc.file);
    await waitForHttp(url, child, "deno file server");
    const many: number[] = [];
    for (let i = 0; i < runs; i++) many.push(await downloadManyMBps(concurrency, url, {}, conc.bytes));
    return { mbps: median(speed), cpuPerGiB: median(cpu), concurrentMbps: median(many) };
  } finally {
    await stop();
  }
}

export function boundsLines(b: Bounds, big: Input, conc: Input, concurrency: number): string[] {
  return [
    "",
    "Floors measured in this run (medians), for the rows that fall short:",
    `- Writing ${big.label} into a new file (\`dd bs=8M conv=fdatasync\`): ${
      b.writeNewFile_s.toFixed(2)
    } s after 3 s idle, ${b.writeRecycledPages_s.toFixed(2)} s right after a file of that size was deleted. ` +
    "This VM hands freed guest pages back to its host within ~2 s, and the first touch of such a page costs a host fault: every fill, uncached download and upload writes its bytes into such pages.",
    `- sha512 of ${big.label} in the runtime's node:crypto (hashing only): Node ${b.sha512_s.node.toFixed(2)} s, Deno ${
      b.sha512_s.deno.toFixed(2)
    } s.`,
    `- Deno.serve with a Deno.FsFile body (Rust copies file to socket, no JavaScript per chunk): ${
      b.denoServe.mbps.toFixed(0)
    } MB/s at ${b.denoServe.cpuPerGiB.toFixed(2)} CPU-s/GiB; ` +
    `${concurrency} × ${conc.label} at once: ${b.denoServe.concurrentMbps.toFixed(0)} MB/s.`,
  ];
}
